"""`adjustment_events[date, symbol]`: the rewrites of a symbol's past that a session's snapshot made,
found by comparing each `daily_bars` snapshot with the symbol's previous stored one; reported by
the bars step, only where one was found. Why: docs/design.md#adjustment-detection.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
import pandas as pd

from market_assets.defs.bars.keys import bars_asset_key, bars_group
from market_assets.defs.bars.targets import Target
from market_assets.defs.metadata import table_preview
from market_assets.defs.partitions import bars_key, bars_partitions
from market_assets.domain.adjustment_detection import Adjustment, adjustment_rows
from market_assets.domain.exchange_sessions import calendar
from market_assets.lake.datasets import ADJUSTMENT_EVENTS, DAILY_BARS
from market_assets.lake.store import ParquetStore
from market_assets.sources.indices import followed_exchanges

_LOOK_BACK = 5
"""Sessions searched backwards for the previous snapshot (a session may have failed or been skipped)."""

adjustment_events = [
    dg.AssetSpec(
        bars_asset_key(code, ADJUSTMENT_EVENTS),
        deps=[bars_asset_key(code, DAILY_BARS)],
        partitions_def=bars_partitions[code],
        group_name=bars_group(code),
        kinds={"parquet"},
        description="Past rows a session's snapshot changed (a split, a dividend adjustment), one row "
        "per event; materialized by daily_bars for the partitions where it found one.",
    )
    for code in followed_exchanges()
]
"""Each exchange's `adjustment_events`, on its bars grid."""


def previous_daily(store: ParquetStore, target: Target) -> pd.DataFrame | None:
    """The latest stored `daily_bars` snapshot of `target`'s symbol before its session, as stored:
    what a new snapshot is compared with, and what an incremental download extends."""
    exchange = calendar(target.exchange)
    day = target.session
    for _ in range(_LOOK_BACK):
        if day <= exchange.first_session:
            return None
        day = exchange.previous_session(day)
        previous = str(bars_key(f"{day:%Y-%m-%d}", target.symbol))
        if store.exists(DAILY_BARS, previous):
            return store.read(DAILY_BARS, previous)
    return None


def adjustment_metadata(adjustment: Adjustment | None) -> dict[str, dg.MetadataValue]:
    """What a `daily_bars` materialization says about rewritten history: nothing when the snapshot
    rewrote none (its `download` says how it was compared)."""
    if adjustment is None:
        return {}
    return {
        "adjusted_past": dg.MetadataValue.text(adjustment.describe()),
        "adjustment_ratio": dg.MetadataValue.float(adjustment.ratio),
        "adjustment_first_changed_date": dg.MetadataValue.text(f"{adjustment.first_changed_date:%Y-%m-%d}"),
    }


def record_adjustments(
    context: dg.AssetExecutionContext,
    store: ParquetStore,
    events_key: dg.AssetKey,
    adjustments: Mapping[Target, Adjustment | None],
) -> None:
    """Store the `adjustment_events` partitions of the adjusted snapshots, and report them as
    materializations of `events_key` (the step's exchange's)."""
    asset = ADJUSTMENT_EVENTS
    for target, adjustment in adjustments.items():
        if adjustment is None:
            continue
        events = adjustment_rows(target.symbol, adjustment)
        store.write(asset, target.key, events)
        context.log_event(
            dg.AssetMaterialization(
                asset_key=events_key,
                partition=target.key,
                description=adjustment.describe(),
                metadata={
                    "events": dg.MetadataValue.int(len(events)),
                    "ratio": dg.MetadataValue.float(adjustment.ratio),
                    "path": dg.MetadataValue.path(store.path(asset, target.key)),
                    "preview": table_preview(events),
                },
            )
        )
