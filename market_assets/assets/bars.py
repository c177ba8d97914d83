"""`daily_bars`, `weekly_bars`, `monthly_bars`: one snapshot per (session, symbol), built in one step.

`daily_bars[date, symbol]` is the symbol's daily history as Stooq publishes it after the close of
`date`, up to and including `date`. Stooq adjusts past prices after splits, so each snapshot is
complete and self-consistent on its own; appending new rows to an old file could mix adjusted and
unadjusted prices. A backfilled past date holds no row after that date. `weekly_bars` and
`monthly_bars` of a partition are resampled from the `daily_bars` of the same partition.

The three assets are one multi-asset step, `bars`: the worker that fetched a symbol's history
inspects it, resamples it into weeks and months and checks all three while the other workers'
requests are in flight, so that once the last answer is in only the writing and the events are
left. (As three steps, the weekly and the monthly ones started after the last answer and read every
snapshot back: measured on the close of three indices, a third of the time from the publication to
the end of the last run; see README, "Performance".) The step materializes any subset of the three:
`weekly_bars` or `monthly_bars` alone, from the UI, resample the stored daily snapshots.

A single-run backfill policy makes a close run cover an index's constituents for one session in
this one step, fetching concurrently, instead of paying a Dagster run per symbol.
"""


import queue
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from market_assets.adjustments import Adjustment
from market_assets.assets.adjustments import adjustment_metadata, detect_adjustment_of, record_adjustments
from market_assets.assets.checks import (
    BLOCKING_RULES,
    Findings,
    blocking_failures,
    check_evaluations,
    check_outputs,
    check_specs,
    daily_findings,
    resampled_findings,
)
from market_assets.assets.publication import wait_for_publication
from market_assets.assets.retry import STOOQ_RETRY
from market_assets.bars import Period, resample, snapshot
from market_assets.executors import bars_step_k8s_tags
from market_assets.metadata import add_partition_metadata, bars_metadata
from market_assets.partitions import bars_partitions, composition_partitions, dimensions
from market_assets.resources import DataLakeResource, DataQualityResource, MarketDataSource
from market_assets.sessions import calendar_for_symbol, published_at, require_session
from market_assets.stooq import (
    StooqApiKeyRequired,
    StooqChallengeError,
    StooqError,
    StooqHitsLimitError,
)

INDEX_TAG = "market_assets/index"
"""Run tag naming the index a close run loads; its composition must list every symbol in the run."""

DAILY, WEEKLY, MONTHLY = dg.AssetKey("daily_bars"), dg.AssetKey("weekly_bars"), dg.AssetKey("monthly_bars")
BARS_ASSETS = (DAILY, WEEKLY, MONTHLY)

PERIODS: dict[dg.AssetKey, Period] = {WEEKLY: "week", MONTHLY: "month"}
"""The resampled assets and their candle period."""

_STOP_ASKING = (StooqApiKeyRequired, StooqChallengeError, StooqHitsLimitError)
"""Answers that concern every request, not one symbol: after one of them the run stops asking."""


class NotAsked(Exception):
    """A symbol left out after Stooq refused the source as a whole (see `_STOP_ASKING`)."""


class BarsConfig(dg.Config):
    force: bool = False
    """Fetch again even when the partition is already stored (by default a re-run only fetches
    what is missing)."""


@dataclass(frozen=True)
class _Built:
    """What one partition gives each selected asset before anything is stored: its frame,
    materialization metadata and checks' findings; for `daily_bars`, the comparison with the
    symbol's previous snapshot; and the blocking rules its daily snapshot breaks, which keep its
    weekly and monthly bars from being built."""

    frames: dict[dg.AssetKey, pd.DataFrame]
    metadata: dict[dg.AssetKey, dict[str, dg.MetadataValue]]
    findings: dict[dg.AssetKey, Findings]
    adjustment: Adjustment | None
    blocked: list[str]


@dataclass(frozen=True)
class _Target:
    key: str
    symbol: str
    session: pd.Timestamp


def _out(description: str) -> dg.AssetOut:
    return dg.AssetOut(description=description, group_name="bars", kinds={"parquet"}, is_required=False)


@dg.multi_asset(
    name="bars",
    outs={
        "daily_bars": _out(
            "Daily OHLCV history of each symbol as published after the close of the session. Each "
            "snapshot is compared with the symbol's previous one (rewritten past rows are recorded "
            "in its metadata and as `adjustment_events`) and checked, one result per partition."
        ),
        "weekly_bars": _out("Weekly candles (Monday to Sunday) resampled from the same partition's daily snapshot."),
        "monthly_bars": _out("Monthly candles resampled from the same partition's daily snapshot."),
    },
    internal_asset_deps={"daily_bars": set(), "weekly_bars": {DAILY}, "monthly_bars": {DAILY}},
    can_subset=True,
    partitions_def=bars_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=STOOQ_RETRY,
    check_specs=[spec for asset in BARS_ASSETS for spec in check_specs(asset.path[-1])],
    op_tags=bars_step_k8s_tags(),
)
def bars(
    context: dg.AssetExecutionContext,
    config: BarsConfig,
    stooq: MarketDataSource,
    lake: DataLakeResource,
    quality: DataQualityResource,
) -> Iterator[dg.Output | dg.AssetMaterialization | dg.AssetCheckEvaluation]:
    """Fetch (or, without `daily_bars` in the selection, read) each partition's daily snapshot,
    build the selected assets from it, store them and report their checks.

    Partitions that fail to fetch, or whose daily snapshot breaks a blocking rule, do not hold
    back the others: everything built is stored and recorded, then the step fails naming them.
    """
    selected = context.selected_asset_keys
    targets = _targets(context, lake)
    store = lake.store

    def build(key: str, daily: pd.DataFrame) -> _Built:
        dims = dimensions(key, bars_partitions)
        session, exchange = pd.Timestamp(dims["date"]), calendar_for_symbol(dims["symbol"])
        frames, metadata, findings, adjustment = {}, {}, {}, None
        if DAILY in selected:
            adjustment = detect_adjustment_of(store, key, daily)
            frames[DAILY] = daily
            metadata[DAILY] = {**bars_metadata(daily, store.path("daily_bars", key)), **adjustment_metadata(adjustment)}
            findings[DAILY] = daily_findings(key, daily, quality, adjustment)
        blocked = blocking_failures(
            findings[DAILY] if DAILY in findings else daily_findings(key, daily, None, None, BLOCKING_RULES)
        )
        for asset, period in PERIODS.items():
            if asset in selected and not blocked:
                frames[asset] = resample(daily, period, session, exchange)
                metadata[asset] = bars_metadata(frames[asset], store.path(asset.path[-1], key))
                findings[asset] = resampled_findings(daily, frames[asset], period, key)
        return _Built(frames, metadata, findings, adjustment, blocked)

    if DAILY in selected:
        stored = set() if config.force else {t.key for t in targets if store.exists("daily_bars", t.key)}
    else:
        stored = _stored_daily(targets, lake)
    built = {key: build(key, store.read("daily_bars", key)) for key in stored}
    missing = [t for t in targets if t.key not in stored]
    if missing:
        wait_for_publication(context, max(published_at(calendar_for_symbol(t.symbol), t.session) for t in missing))
    fetched, failures = _fetch_all(context, missing, stooq, build)
    built.update(fetched)
    if DAILY in selected:
        context.log.info(
            f"{len(fetched)} fetched, {len(stored)} already stored, {len(failures)} failed "
            f"of {len(targets)} partitions"
        )
    assets = [asset for asset in BARS_ASSETS if asset in selected]
    frames = {asset: {key: b.frames[asset] for key, b in built.items() if asset in b.frames} for asset in assets}
    metadata = {asset: {key: b.metadata[asset] for key, b in built.items() if asset in b.metadata} for asset in assets}
    findings = {asset: {key: b.findings[asset] for key, b in built.items() if asset in b.findings} for asset in assets}
    adjustments = {key: built[key].adjustment for key in fetched}
    blocked = {key: b.blocked for key, b in built.items() if b.blocked} if selected & PERIODS.keys() else {}
    if failures or blocked:
        for asset in assets:
            written = frames[asset] if asset != DAILY else {key: frames[asset][key] for key in fetched}
            yield from _stored_and_recorded(context, asset, written, metadata[asset], findings[asset], lake)
        record_adjustments(context, store, adjustments)
        raise _failure(targets, failures, blocked, [asset for asset in assets if asset in PERIODS])
    for asset in assets:
        add_partition_metadata(context, asset, metadata[asset])
        yield dg.Output(frames[asset], output_name=asset.path[-1])
    yield from check_outputs(context)
    for asset in assets:
        yield from check_evaluations(context, asset, findings[asset])
    record_adjustments(context, store, adjustments)


def _targets(context: dg.AssetExecutionContext, lake: DataLakeResource) -> list[_Target]:
    """The partitions of this step, refusing any that no schedule would ever ask for."""
    targets, problems = [], []
    for key in context.partition_keys:
        dims = dimensions(key, bars_partitions)
        symbol = dims["symbol"]
        try:
            session = require_session(calendar_for_symbol(symbol), dims["date"], symbol)
        except ValueError as error:
            problems.append(str(error))
            continue
        targets.append(_Target(str(key), symbol, session))
    index = context.run.tags.get(INDEX_TAG)
    if index and not problems:
        problems = _not_in_index(index, targets, lake)
    if problems:
        raise dg.Failure(
            "Asked for partitions that cannot be loaded:\n" + "\n".join(f"- {p}" for p in problems),
            allow_retries=False,
        )
    return targets


def _not_in_index(index: str, targets: list[_Target], lake: DataLakeResource) -> list[str]:
    """Symbols not listed by the index's latest composition stored at or before their session.

    At the close, the bars run starts alongside the session's own composition run (see
    `market_assets.sensors`), so the previous session's list may be the latest one there is.
    """
    stored = sorted(key for key in lake.store.partition_keys("index_composition") if key.endswith(f"|{index}"))
    problems = []
    for session in sorted({t.session for t in targets}):
        day = f"{session:%Y-%m-%d}"
        known = [key for key in stored if key <= f"{day}|{index}"]
        if not known:
            return [
                f"index {index} has no stored composition for {day} or before "
                f"(under {lake.store.root}/index_composition): materialize it first"
            ]
        members = set(lake.store.read("index_composition", known[-1])["symbol"])
        as_of = dimensions(known[-1], composition_partitions)["date"]
        problems += [
            f"{t.symbol} is not a constituent of {index} on {as_of}"
            for t in targets
            if t.session == session and t.symbol not in members
        ]
    return problems


def _stored_daily(targets: list[_Target], lake: DataLakeResource) -> set[str]:
    """The keys of `targets`, all of whose daily snapshots must be stored (weekly or monthly bars
    materialized without `daily_bars`)."""
    absent = [t.key for t in targets if not lake.store.exists("daily_bars", t.key)]
    if absent:
        listed = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise dg.Failure(
            f"daily_bars is not stored for {len(absent)} of {len(targets)} partitions ({listed}) under "
            f"{lake.store.root}/daily_bars: materialize daily_bars with the weekly or monthly bars",
            allow_retries=False,
        )
    return {t.key for t in targets}


def _fetch_all(
    context: dg.AssetExecutionContext,
    targets: list[_Target],
    stooq: MarketDataSource,
    build: Callable[[str, pd.DataFrame], _Built],
) -> tuple[dict[str, _Built], dict[str, Exception]]:
    """Fetch every target with at most `max_concurrency` workers, each holding a worker slot, and
    `build` each snapshot as it arrives.

    The building (pandas and numpy work that holds the interpreter) happens in a thread of its
    own, while the workers' requests are in flight: a worker hands each snapshot over and sends its
    next request at once, so the slot it holds is busy with requests, not with building, and only
    the last snapshots are left to build after the last answer.

    A worker takes the source's slot (for Stooq over HTTP, one of the instance-wide `stooq` pool,
    see `request_budget`) before its first request and keeps it until no target is left, so
    requests in flight across all runs never exceed the pool's limit. The steps with the most
    symbols get slots first: the runs of a close then finish fetching in order of the work they
    still have to do once fetched (writing and recording), the biggest first, so that this work
    overlaps the other runs' fetching rather than trailing after it. After an answer that concerns
    the whole source (API key, browser check, hits limit), the remaining symbols are not asked for:
    hammering would only prolong a ban.
    """
    pending: queue.SimpleQueue[_Target] = queue.SimpleQueue()
    for target in targets:
        pending.put(target)
    stop_reason: list[StooqError] = []
    building: dict[str, Future[_Built]] = {}
    failures: dict[str, Exception] = {}

    def fetch(target: _Target, builder: ThreadPoolExecutor) -> None:
        if stop_reason:
            failures[target.symbol] = NotAsked(
                f"{target.symbol}: not requested, because {stop_reason[0].problem}"
            )
            return
        try:
            history = stooq.daily_history(target.symbol, target.session)
        except _STOP_ASKING as error:
            stop_reason.append(error)
            failures[target.symbol] = error
        except StooqError as error:
            failures[target.symbol] = error
        else:
            building[target.key] = builder.submit(build, target.key, snapshot(history, target.session))

    def work(worker: int, builder: ThreadPoolExecutor) -> None:
        with stooq.worker_slot(context, worker, priority=len(targets)):
            while True:
                try:
                    fetch(pending.get_nowait(), builder)
                except queue.Empty:
                    return

    workers = max(1, min(stooq.max_concurrency, len(targets)))
    with ThreadPoolExecutor(max_workers=1) as builder, ThreadPoolExecutor(max_workers=workers) as pool:
        for outcome in [pool.submit(work, worker, builder) for worker in range(workers)]:
            outcome.result()
        fetched = {key: future.result() for key, future in building.items()}
    for error in failures.values():
        context.log.warning(str(error))
    return fetched, failures


def _failure(
    targets: list[_Target],
    failures: Mapping[str, Exception],
    blocked: Mapping[str, list[str]],
    resampled: list[dg.AssetKey],
) -> dg.Failure:
    """The step's failure: the symbols that could not be fetched, then the partitions whose weekly
    and monthly bars were not built. Retried only when every fetch failure may pass (a blocked
    snapshot stays blocked until the source changes)."""
    parts, metadata = [], {}
    if failures:
        lines = "\n".join(f"- {failures[symbol]}" for symbol in sorted(failures))
        parts.append(f"{len(failures)} of {len(targets)} symbols failed:\n{lines}")
        metadata["failed_symbols"] = dg.MetadataValue.text(", ".join(sorted(failures)))
    if blocked:
        names = " and ".join(asset.path[-1] for asset in resampled)
        lines = "\n".join(f"- {key}: " + "; ".join(blocked[key]) for key in sorted(blocked))
        parts.append(
            f"{names}: {len(blocked)} of {len(targets) - len(failures)} partitions not built, "
            f"their daily bars fail a blocking check:\n{lines}"
        )
        metadata["blocked_partitions"] = dg.MetadataValue.text(", ".join(sorted(blocked)))
    return dg.Failure(
        description="\n".join(parts),
        metadata=metadata,
        allow_retries=bool(failures) and all(getattr(error, "retryable", False) for error in failures.values()),
    )


def _stored_and_recorded(
    context: dg.AssetExecutionContext,
    asset: dg.AssetKey,
    frames: Mapping[str, pd.DataFrame],
    metadata: Mapping[str, Mapping[str, dg.MetadataValue]],
    findings: Mapping[str, Findings],
    lake: DataLakeResource,
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckEvaluation]:
    """Store the partitions of `asset` that a failing step did produce, and their materializations
    and checks' results, so that a re-run asks only for the rest.

    The step's output would cover all of its partitions, so each is written and reported here.
    Dagster stores a yielded event before the step goes on, so the checks' results can name the
    materializations they checked."""
    for key, frame in frames.items():
        lake.store.write(asset.path[-1], key, frame)
        yield dg.AssetMaterialization(asset_key=asset, partition=key, metadata=metadata[key])
    yield from check_evaluations(context, asset, {key: findings[key] for key in frames})
