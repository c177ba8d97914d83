"""`daily_bars`, `weekly_bars`, `monthly_bars`: one snapshot per (session, symbol).

`daily_bars[date, symbol]` is the symbol's daily history as Stooq publishes it after the close of
`date`, up to and including `date`. Stooq adjusts past prices after splits, so each snapshot is
complete and self-consistent on its own; appending new rows to an old file could mix adjusted and
unadjusted prices. A backfilled past date holds no row after that date. `weekly_bars` and
`monthly_bars` of a partition are resampled from the `daily_bars` of the same partition.

All three use a single-run backfill policy: a close run covers an index's constituents for one
session in one step per asset, fetching concurrently, instead of paying a Dagster run per symbol.
"""


import queue
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from market_assets.adjustments import Adjustment
from market_assets.assets.adjustments import adjustment_metadata, detect_adjustment_of, record_adjustments
from market_assets.assets.checks import (
    Findings,
    blocked_partitions,
    check_evaluations,
    check_outputs,
    check_specs,
    daily_findings,
    resampled_findings,
)
from market_assets.assets.publication import wait_for_publication
from market_assets.assets.retry import STOOQ_RETRY
from market_assets.bars import Period, resample, snapshot
from market_assets.executors import step_k8s_tags
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

_STOP_ASKING = (StooqApiKeyRequired, StooqChallengeError, StooqHitsLimitError)
"""Answers that concern every request, not one symbol: after one of them the run stops asking."""


_BARS_ASSET = dict(
    partitions_def=bars_partitions,
    group_name="bars",
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=STOOQ_RETRY,
    kinds={"parquet"},
)


class NotAsked(Exception):
    """A symbol left out after Stooq refused the source as a whole (see `_STOP_ASKING`)."""


class DailyBarsConfig(dg.Config):
    force: bool = False
    """Fetch again even when the partition is already stored (by default a re-run only fetches
    what is missing)."""


@dataclass(frozen=True)
class _Inspected:
    """A daily snapshot and what is known of it before it is stored: its comparison with the
    symbol's previous snapshot, its materialization metadata and its checks' findings."""

    frame: pd.DataFrame
    adjustment: Adjustment | None
    metadata: dict[str, dg.MetadataValue]
    findings: Findings


@dataclass(frozen=True)
class _Target:
    key: str
    symbol: str
    session: pd.Timestamp


@dg.asset(**_BARS_ASSET, op_tags=step_k8s_tags("daily_bars"), check_specs=check_specs("daily_bars"))
def daily_bars(
    context: dg.AssetExecutionContext,
    config: DailyBarsConfig,
    stooq: MarketDataSource,
    lake: DataLakeResource,
    quality: DataQualityResource,
) -> Iterator[dg.Output | dg.AssetCheckEvaluation]:
    """Daily OHLCV history of each symbol as published after the close of the session.

    Each snapshot is compared with the symbol's previous one (rewritten past rows are recorded in
    its metadata and as `adjustment_events`) and checked (`market_assets.assets.checks`), one
    result per partition.
    """
    targets = _targets(context, lake)
    store = lake.store
    asset = context.asset_key.path[-1]

    def inspect(key: str, frame: pd.DataFrame) -> _Inspected:
        adjustment = detect_adjustment_of(store, key, frame)
        return _Inspected(
            frame,
            adjustment,
            {**bars_metadata(frame, store.path(asset, key)), **adjustment_metadata(adjustment)},
            daily_findings(key, frame, quality, adjustment),
        )

    stored = set() if config.force else {t.key for t in targets if store.exists(asset, t.key)}
    inspected = {key: inspect(key, store.read(asset, key)) for key in stored}
    missing = [t for t in targets if t.key not in stored]
    if missing:
        wait_for_publication(context, max(published_at(calendar_for_symbol(t.symbol), t.session) for t in missing))
    fetched, failures = _fetch_all(context, missing, stooq, inspect)
    inspected.update(fetched)
    context.log.info(
        f"{len(fetched)} fetched, {len(stored)} already stored, {len(failures)} failed "
        f"of {len(targets)} partitions"
    )
    frames = {key: item.frame for key, item in inspected.items()}
    metadata = {key: item.metadata for key, item in inspected.items()}
    findings = {key: item.findings for key, item in inspected.items()}
    adjustments = {key: inspected[key].adjustment for key in fetched}
    if failures:
        _store_and_record(context, {key: frames[key] for key in fetched}, metadata, findings, lake)
        record_adjustments(context, store, adjustments)
        retryable = all(getattr(error, "retryable", False) for error in failures.values())
        lines = "\n".join(f"- {failures[symbol]}" for symbol in sorted(failures))
        raise dg.Failure(
            description=f"{len(failures)} of {len(targets)} symbols failed:\n{lines}",
            metadata={"failed_symbols": dg.MetadataValue.text(", ".join(sorted(failures)))},
            allow_retries=retryable,
        )
    yield from _materialized(context, frames, metadata, findings)
    record_adjustments(context, store, adjustments)


@dg.asset(
    **_BARS_ASSET, op_tags=step_k8s_tags("weekly_bars"), check_specs=check_specs("weekly_bars")
)
def weekly_bars(
    context: dg.AssetExecutionContext,
    lake: DataLakeResource,
    daily_bars: dict[str, pd.DataFrame],
) -> Iterator[dg.Output | dg.AssetCheckEvaluation]:
    """Weekly candles (Monday to Sunday) resampled from the same partition's daily snapshot."""
    yield from _resampled(context, lake, daily_bars, "week")


@dg.asset(
    **_BARS_ASSET, op_tags=step_k8s_tags("monthly_bars"), check_specs=check_specs("monthly_bars")
)
def monthly_bars(
    context: dg.AssetExecutionContext,
    lake: DataLakeResource,
    daily_bars: dict[str, pd.DataFrame],
) -> Iterator[dg.Output | dg.AssetCheckEvaluation]:
    """Monthly candles resampled from the same partition's daily snapshot."""
    yield from _resampled(context, lake, daily_bars, "month")


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


def _fetch_all(
    context: dg.AssetExecutionContext,
    targets: list[_Target],
    stooq: MarketDataSource,
    inspect: Callable[[str, pd.DataFrame], _Inspected],
) -> tuple[dict[str, _Inspected], dict[str, Exception]]:
    """Fetch and `inspect` every target with at most `max_concurrency` workers, each holding a
    worker slot.

    A worker inspects each snapshot as it arrives (pandas work that holds the interpreter) while
    the other workers' requests are in flight, instead of all of them after the last answer.

    A worker takes the source's slot (for Stooq over HTTP, one of the instance-wide `stooq` pool,
    see `request_budget`) before its first request and keeps it until no target is left, so
    requests in flight across all runs never exceed the pool's limit. The steps with the most
    symbols get slots first: the runs of a close then finish fetching in order of the work they
    still have to do once fetched (writing, checking, resampling), the biggest first, so that this
    work overlaps the other runs' fetching rather than trailing after it. After an answer that concerns
    the whole source (API key, browser check, hits limit), the remaining symbols are not asked for:
    hammering would only prolong a ban.
    """
    pending: queue.SimpleQueue[_Target] = queue.SimpleQueue()
    for target in targets:
        pending.put(target)
    stop_reason: list[StooqError] = []
    fetched: dict[str, _Inspected] = {}
    failures: dict[str, Exception] = {}

    def fetch(target: _Target) -> None:
        if stop_reason:
            failures[target.symbol] = NotAsked(
                f"{target.symbol}: not requested, because {stop_reason[0].problem}"
            )
            return
        try:
            history = stooq.daily_history(target.symbol, target.session)
            fetched[target.key] = inspect(target.key, snapshot(history, target.session))
        except _STOP_ASKING as error:
            stop_reason.append(error)
            failures[target.symbol] = error
        except StooqError as error:
            failures[target.symbol] = error

    def work(worker: int) -> None:
        with stooq.worker_slot(context, worker, priority=len(targets)):
            while True:
                try:
                    fetch(pending.get_nowait())
                except queue.Empty:
                    return

    workers = max(1, min(stooq.max_concurrency, len(targets)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for outcome in [pool.submit(work, worker) for worker in range(workers)]:
            outcome.result()
    for error in failures.values():
        context.log.warning(str(error))
    return fetched, failures


def _materialized(
    context: dg.AssetExecutionContext,
    frames: dict[str, pd.DataFrame],
    metadata: Mapping[str, Mapping[str, dg.MetadataValue]],
    findings: Mapping[str, Findings],
) -> Iterator[dg.Output | dg.AssetCheckEvaluation]:
    """The step's output (written by the IO manager), then its checks' results per partition."""
    add_partition_metadata(context, metadata)
    yield dg.Output(frames)
    yield from check_outputs(context)
    yield from check_evaluations(context, findings)


def _store_and_record(
    context: dg.AssetExecutionContext,
    frames: Mapping[str, pd.DataFrame],
    metadata: Mapping[str, Mapping[str, dg.MetadataValue]],
    findings: Mapping[str, Findings],
    lake: DataLakeResource,
) -> None:
    """Store and record the partitions a failing step did produce, with their checks' results, so
    a re-run asks only for the rest (what `daily_bars` fetched, the bars of the partitions that
    passed the blocking checks)."""
    for key, frame in frames.items():
        lake.store.write(context.asset_key.path[-1], key, frame)
        context.log_event(
            dg.AssetMaterialization(asset_key=context.asset_key, partition=key, metadata=metadata[key])
        )
    for evaluation in check_evaluations(context, {key: findings[key] for key in frames}, recorded=False):
        context.log_event(evaluation)


def _resampled(
    context: dg.AssetExecutionContext,
    lake: DataLakeResource,
    daily: dict[str, pd.DataFrame],
    period: Period,
) -> Iterator[dg.Output | dg.AssetCheckEvaluation]:
    """Resample each partition whose daily snapshot passes the blocking checks.

    When some do not, the bars of the others are stored and recorded, and the step fails naming
    the refused partitions and why: one bad symbol never holds back the rest of a close run.
    """
    asset = context.asset_key.path[-1]
    blocked = blocked_partitions(daily)
    out = {}
    for key in map(str, context.partition_keys):
        if key in blocked:
            continue
        dims = dimensions(key, bars_partitions)
        session = pd.Timestamp(dims["date"])
        out[key] = resample(daily[key], period, session, calendar_for_symbol(dims["symbol"]))
    metadata = {key: bars_metadata(bars, lake.store.path(asset, key)) for key, bars in out.items()}
    findings = {key: resampled_findings(daily[key], bars, period, key) for key, bars in out.items()}
    if blocked:
        _store_and_record(context, out, metadata, findings, lake)
        lines = "\n".join(f"- {key}: " + "; ".join(blocked[key]) for key in sorted(blocked))
        raise dg.Failure(
            description=f"{asset}: {len(blocked)} of {len(blocked) + len(out)} partitions not built, "
            f"their daily bars fail a blocking check:\n{lines}",
            metadata={"blocked_partitions": dg.MetadataValue.text(", ".join(sorted(blocked)))},
            allow_retries=False,
        )
    yield from _materialized(context, out, metadata, findings)
