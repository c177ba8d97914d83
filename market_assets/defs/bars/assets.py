"""`daily_bars`, `weekly_bars`, `monthly_bars`: one snapshot per (session, symbol), built in one step.

`daily_bars[date, symbol]` is the symbol's daily history as Stooq publishes it after the close of
`date`, up to and including `date`. Stooq adjusts past prices after splits and dividends, so each
snapshot is complete and self-consistent on its own; appending new rows to an old file could mix
adjusted and unadjusted prices. A backfilled past date holds no row after that date. `weekly_bars`
and `monthly_bars` of a partition are resampled from the `daily_bars` of the same partition.

Each followed exchange has these three assets, on its own grid (`xnys/daily_bars`, see `keys.py`),
and they are one multi-asset step, `<exchange>_bars`: each symbol's history is inspected, resampled
into weeks and months and checked as soon as it arrives, while the other requests are in flight
(`fetching.py`, `building.py`), so that once the last answer is in only the writing and the events
are left. (As three steps, the weekly and the monthly ones started after the last answer and read
every snapshot back: a third of the time from the publication to the end of the last run of a
close; see docs/performance.md.) The step materializes any subset of the three: `weekly_bars` or
`monthly_bars` alone, from the UI, resample the stored daily snapshots.

A single-run backfill policy makes a close run cover an index's constituents for one session in
this one step, fetching concurrently, instead of paying a Dagster run per symbol.
"""

from collections.abc import Iterator, Mapping

import dagster as dg
import pandas as pd

from market_assets.defs.bars.adjustments import previous_daily, record_adjustments
from market_assets.defs.bars.building import Built, PartitionBuilder
from market_assets.defs.bars.checks import (
    Findings,
    check_evaluations,
    check_outputs,
    check_specs,
    latest_materializations,
)
from market_assets.defs.bars.executor import bars_step_k8s_tags
from market_assets.defs.bars.failure import step_failure
from market_assets.defs.bars.fetching import fetch_all
from market_assets.defs.bars.integrity import file_intact_spec, read_back
from market_assets.defs.bars.keys import (
    ADJUSTMENT_EVENTS,
    BARS_ASSETS,
    DAILY,
    MONTHLY,
    PERIODS,
    WEEKLY,
    bars_asset_key,
    bars_step_name,
)
from market_assets.defs.bars.resources import DataQualityResource
from market_assets.defs.bars.targets import require_stored_daily, step_targets, stored_daily
from market_assets.defs.partitions import bars_partitions
from market_assets.defs.publication import wait_for_publication
from market_assets.defs.retry import STOOQ_RETRY
from market_assets.defs.runs import claim_run_process
from market_assets.lake.io_manager import write_failures
from market_assets.lake.resource import DataLakeResource
from market_assets.lake.store import ParquetStore
from market_assets.sources.resources import MarketDataSource


class BarsConfig(dg.Config):
    force: bool = False
    """Fetch again even when the partition is already stored (by default a re-run only fetches
    what is missing)."""
    full_history: bool = False
    """Download each symbol's whole history, even when its previous snapshot is stored (by default
    only the bars from a few before that snapshot's end are asked for and compared with it, see
    `market_assets.domain.incremental_history`)."""


_COMPACTED = (
    " An older partition whose snapshot can be rebuilt exactly from a newer one may be compacted: "
    "it stays materialized and reads back unchanged, but has no file of its own (the `compact_lake` "
    "job lists it in `<root>/_compacted/<asset>.parquet`)."
)


def build_bars(code: str) -> dg.AssetsDefinition:
    """The bars assets of exchange `code` and the step that builds them."""

    @dg.multi_asset(
        name=bars_step_name(code),
        outs={
            DAILY: _out(
                code,
                "Daily OHLCV history of each symbol as published after the close of the session. Each "
                "snapshot is compared with the symbol's previous one (rewritten past rows are recorded "
                "in its metadata and as `adjustment_events`) and checked, one result per partition." + _COMPACTED,
            ),
            WEEKLY: _out(
                code,
                "Weekly candles (Monday to Sunday) resampled from the same partition's daily snapshot." + _COMPACTED,
            ),
            MONTHLY: _out(code, "Monthly candles resampled from the same partition's daily snapshot." + _COMPACTED),
        },
        internal_asset_deps={
            DAILY: set(),
            WEEKLY: {bars_asset_key(code, DAILY)},
            MONTHLY: {bars_asset_key(code, DAILY)},
        },
        can_subset=True,
        partitions_def=bars_partitions[code],
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=STOOQ_RETRY,
        check_specs=[
            spec
            for name in BARS_ASSETS
            for spec in [
                *check_specs(bars_asset_key(code, name), bars_partitions[code]),
                file_intact_spec(bars_asset_key(code, name), bars_partitions[code]),
            ]
        ],
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
        build the selected assets of exchange `code` from it, store them and report their checks.

        Partitions that fail to fetch, or whose daily snapshot breaks a blocking rule, do not hold
        back the others: everything built is stored and recorded, then the step fails naming them.
        """
        claim_run_process(context)
        selected = {key.path[-1]: key for key in context.selected_asset_keys}
        events = bars_asset_key(code, ADJUSTMENT_EVENTS)
        store = lake.store
        targets = step_targets(context, store)
        build = PartitionBuilder(context, store, quality)

        if DAILY in selected:
            stored = set() if config.force else stored_daily(targets, store)
        else:
            stored = require_stored_daily(targets, store)
        built = {
            t.key: build(t, store.read(DAILY, t.key), previous_daily(store, t))
            for t in targets
            if t.key in stored
        }
        missing = [t for t in targets if t.key not in stored]
        if missing:
            wait_for_publication(context, {(t.exchange, t.session) for t in missing})
        fetched, failures = fetch_all(context, missing, stooq, store, build, whole=config.full_history)
        built.update(fetched)
        if DAILY in selected:
            context.log.info(
                f"{len(fetched)} fetched, {len(stored)} already stored, {len(failures)} failed "
                f"of {len(targets)} partitions"
            )
        assets = [asset for asset in BARS_ASSETS if asset in selected]
        frames = {a: {key: b.frames[a] for key, b in built.items() if a in b.frames} for a in assets}
        findings = {a: {key: b.findings[a] for key, b in built.items() if a in b.findings} for a in assets}
        adjustments = {t: fetched[t.key].adjustment for t in missing if t.key in fetched}
        resampling = selected.keys() & PERIODS.keys()
        blocked = {key: b.blocked for key, b in built.items() if b.blocked} if resampling else {}
        if failures or blocked:
            for asset in assets:
                written = frames[asset] if asset != DAILY else {key: frames[asset][key] for key in fetched}
                yield from _store_and_record(context, store, selected[asset], written, built, findings[asset])
            record_adjustments(context, store, events, adjustments)
            raise step_failure(targets, failures, blocked, [asset for asset in assets if asset in PERIODS])
        for asset in assets:
            yield dg.Output(frames[asset], output_name=asset)
        yield from check_outputs(context)
        for asset in assets:
            yield from _check_results(context, store, selected[asset], findings[asset])
        record_adjustments(context, store, events, adjustments)

    return bars


def _out(code: str, description: str) -> dg.AssetOut:
    return dg.AssetOut(
        key_prefix=[code.lower()], description=description, group_name="bars", kinds={"parquet"}, is_required=False
    )


def _store_and_record(
    context: dg.AssetExecutionContext,
    store: ParquetStore,
    asset: dg.AssetKey,
    frames: Mapping[str, pd.DataFrame],
    built: Mapping[str, Built],
    findings: Mapping[str, Findings],
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckEvaluation]:
    """Store the partitions of `asset` that a failing step did produce, and their materializations
    and checks' results, so that a re-run asks only for the rest.

    The step's output would cover all of its partitions, so these are written through the lake's
    own write path, as the IO manager writes, and reported here. Dagster stores a yielded event
    before the step goes on, so the checks' results can name the materializations they checked."""
    name = asset.path[-1]
    with write_failures():
        context.log.info(store.write_partitions(name, frames))
    for key in frames:
        yield dg.AssetMaterialization(asset_key=asset, partition=key, metadata=built[key].metadata[name])
    yield from _check_results(context, store, asset, {key: findings[key] for key in frames})


def _check_results(
    context: dg.AssetExecutionContext, store: ParquetStore, asset: dg.AssetKey, findings: Mapping[str, Findings]
) -> Iterator[dg.AssetCheckEvaluation]:
    """The results of the selected checks of `asset` on the partitions of `findings`, just stored:
    the rules' (`check_evaluations`), then the files read back (`read_back`), both pointing at the
    partitions' latest materializations, read in one query."""
    if not any(key.asset_key == asset for key in context.selected_asset_check_keys):
        return
    records = latest_materializations(context.instance, asset, list(findings))
    yield from check_evaluations(context, asset, findings, records)
    yield from read_back(context, store, asset, records)
