"""`daily_bars`, `weekly_bars`, `monthly_bars` of each exchange: one snapshot per (session, symbol),
built by one multi-asset step per exchange, `<exchange>_bars`.
Why: docs/design.md#daily-bars-are-a-snapshot-per-session, #one-step-builds-the-three-bars-assets.
"""

import time
from collections.abc import Iterator, Mapping

import dagster as dg

from market_assets.dagster_internals import AssetCheckEvaluationTargetMaterializationData
from market_assets.defs.bars.adjustments import previous_daily, record_adjustments
from market_assets.defs.bars.building import Built, PartitionBuilder
from market_assets.defs.bars.checks import VALID_BARS, check_spec, evaluation
from market_assets.defs.bars.executor import bars_step_k8s_tags
from market_assets.defs.bars.failure import step_failure
from market_assets.defs.bars.fetching import fetch_all
from market_assets.defs.bars.keys import PERIODS, bars_asset_key, bars_group, bars_step_name
from market_assets.defs.bars.resources import DataQualityResource
from market_assets.defs.bars.targets import Target, require_stored_daily, step_targets, stored_daily
from market_assets.defs.partitions import bars_partitions, partition_tags
from market_assets.defs.publication import wait_for_publication
from market_assets.defs.retry import STOOQ_RETRY
from market_assets.defs.runs import claim_run_process
from market_assets.lake.datasets import ADJUSTMENT_EVENTS, BARS, DAILY_BARS, MONTHLY_BARS, WEEKLY_BARS
from market_assets.lake.resource import DataLakeResource
from market_assets.lake.store import ParquetStore
from market_assets.sources.indices import followed_exchanges
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
            DAILY_BARS: _out(
                code,
                "Daily OHLCV history of each symbol as published after the close of the session. Each "
                "snapshot is compared with the symbol's previous one (rewritten past rows are recorded "
                "in its metadata and as `adjustment_events`) and checked, one result per partition." + _COMPACTED,
            ),
            WEEKLY_BARS: _out(
                code,
                "Weekly candles (Monday to Sunday) resampled from the same partition's daily snapshot." + _COMPACTED,
            ),
            MONTHLY_BARS: _out(code, "Monthly candles resampled from the same partition's daily snapshot." + _COMPACTED),
        },
        internal_asset_deps={
            DAILY_BARS: set(),
            WEEKLY_BARS: {bars_asset_key(code, DAILY_BARS)},
            MONTHLY_BARS: {bars_asset_key(code, DAILY_BARS)},
        },
        can_subset=True,
        partitions_def=bars_partitions[code],
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=STOOQ_RETRY,
        check_specs=[check_spec(bars_asset_key(code, name), bars_partitions[code]) for name in BARS],
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
        build and write the selected assets of exchange `code` from it, then report their
        materializations and checks. Partitions that fail to fetch or break a blocking rule do not
        hold back the others: everything built is stored and reported, then the step fails naming
        them."""
        claim_run_process(context)
        keys = {name: bars_asset_key(code, name) for name in BARS}
        selected = {name: key for name, key in keys.items() if key in context.selected_asset_keys}
        store = lake.store
        targets = step_targets(context, store)
        remove_leftovers(context, store, targets)
        build = PartitionBuilder(selected, store, quality)

        if DAILY_BARS in selected:
            stored = set() if config.force else stored_daily(targets, store)
        else:
            stored = require_stored_daily(targets, store)
        built = {t.key: build(t, store.read(DAILY_BARS, t.key), previous_daily(store, t)) for t in targets if t.key in stored}
        missing = [t for t in targets if t.key not in stored]
        if missing:
            wait_for_publication(context, {(t.exchange, t.session) for t in missing})
        fetched, failures, write_error = fetch_all(context, missing, stooq, store, build, whole=config.full_history)
        built.update(fetched)
        if DAILY_BARS in selected:
            context.log.info(
                f"{len(fetched)} fetched, {len(stored)} already stored, {len(failures)} failed of {len(targets)} partitions"
            )
        yield from report_bars(context, store, selected, built)
        record_adjustments(
            context,
            store,
            bars_asset_key(code, ADJUSTMENT_EVENTS),
            {t: fetched[t.key].adjustment for t in missing if t.key in fetched},
        )
        blocked = {key: b.blocked for key, b in built.items() if b.blocked} if selected.keys() & PERIODS.keys() else {}
        if failures or blocked or write_error:
            raise step_failure(targets, failures, blocked, [name for name in selected if name in PERIODS], write_error)

    return bars


def remove_leftovers(context: dg.AssetExecutionContext, store: ParquetStore, targets: list[Target]) -> None:
    """Remove the temporary files that an earlier, killed write of these partitions left in the lake."""
    keys = [t.key for t in targets]
    removed = [path for name in (*BARS, ADJUSTMENT_EVENTS) for path in store.remove_leftovers(name, keys)]
    if removed:
        context.log.info(f"removed {len(removed)} temporary file(s) left by an interrupted write: {', '.join(removed)}")


def _out(code: str, description: str) -> dg.AssetOut:
    return dg.AssetOut(
        key_prefix=[code.lower()], description=description, group_name=bars_group(code), kinds={"parquet"}, is_required=False
    )


def report_bars(
    context: dg.AssetExecutionContext, store: ParquetStore, selected: Mapping[str, dg.AssetKey], built: Mapping[str, Built]
) -> Iterator[dg.Output | dg.AssetMaterialization | dg.AssetCheckEvaluation]:
    """The materializations of the partitions `built` (their files written), then their checks'
    results, each pointing at the materialization it checked: its storage id, read in one query
    per asset, this run and when it was reported."""
    written = {name: [key for key, b in built.items() if name in b.metadata] for name in selected}
    reported: dict[tuple[str, str], float] = {}
    for name, asset in selected.items():
        for key in written[name]:
            reported[name, key] = time.time()
            yield dg.AssetMaterialization(
                asset_key=asset, partition=key, metadata=built[key].metadata[name], tags=partition_tags(key)
            )
        if written[name]:
            folders = sorted({store.path(name, key).rsplit("/", 1)[0] for key in written[name]})
            context.log.info(f"{name}: {len(written[name])} partitions written under {', '.join(folders)}")
    yield from check_outputs(context)
    for name, asset in selected.items():
        if not written[name] or dg.AssetCheckKey(asset, VALID_BARS) not in context.selected_asset_check_keys:
            continue
        stored = context.instance.get_latest_storage_id_by_partition(
            asset, dg.DagsterEventType.ASSET_MATERIALIZATION, partitions=set(written[name])
        )
        for key in written[name]:
            target = AssetCheckEvaluationTargetMaterializationData(
                storage_id=stored[key], run_id=context.run.run_id, timestamp=reported[name, key]
            )
            yield evaluation(asset, key, built[key].findings[name], target, blocking=True)


bars_assets = {code: build_bars(code) for code in followed_exchanges()}
"""Each followed exchange's bars assets and their step."""


def check_outputs(context: dg.AssetExecutionContext) -> Iterator[dg.Output]:
    """The (empty) outputs Dagster expects of a step for each of its selected checks."""
    selected = context.selected_asset_check_keys
    for output_name, spec in context.assets_def.check_specs_by_output_name.items():
        if spec.key in selected:
            yield dg.Output(None, output_name=output_name)
