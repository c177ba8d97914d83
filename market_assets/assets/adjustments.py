"""`adjustment_events[date, symbol]`: the rewrites of a symbol's past that a session's snapshot made.

Each `daily_bars` snapshot is compared with the symbol's previous stored snapshot (the latest of
the `_LOOK_BACK` sessions before it): past rows that changed, a split or a dividend adjustment,
become a row here (`symbol, session, first_changed_date, last_changed_date, effective_date, ratio,
rows_changed`) and metadata on the `daily_bars` materialization, instead of history being
replaced without a trace. A partition holds no row when nothing changed or there was nothing to
compare with. Read all of them with `pyarrow.dataset.dataset("<root>/adjustment_events")`.
"""

from collections.abc import Mapping

import dagster as dg
import pandas as pd

from market_assets.adjustments import Adjustment, adjustment_events as event_rows, detect_adjustment
from market_assets.executors import step_k8s_tags
from market_assets.metadata import add_partition_metadata, markdown_table
from market_assets.partitions import bars_key, bars_partitions, dimensions
from market_assets.resources import DataLakeResource
from market_assets.storage import ParquetStore
from market_assets.sessions import calendar, calendar_for_symbol

_LOOK_BACK = 5
"""Sessions searched backwards for the previous snapshot (a session may have failed or been skipped)."""


def previous_snapshot(store: ParquetStore, key: str) -> tuple[str, pd.DataFrame] | None:
    """The key and frame of the latest stored `daily_bars` snapshot before `key`'s session."""
    dims = dimensions(key, bars_partitions)
    exchange = calendar(calendar_for_symbol(dims["symbol"]))
    day = pd.Timestamp(dims["date"])
    for _ in range(_LOOK_BACK):
        if day <= exchange.first_session:
            return None
        day = exchange.previous_session(day)
        previous = str(bars_key(f"{day:%Y-%m-%d}", dims["symbol"]))
        if store.exists("daily_bars", previous):
            return previous, store.read("daily_bars", previous)
    return None


def detect_adjustments(
    store: ParquetStore, frames: Mapping[str, pd.DataFrame]
) -> dict[str, Adjustment | None]:
    """`{partition key: adjustment or None}` of each snapshot against its previous one."""
    found = {}
    for key, frame in frames.items():
        previous = previous_snapshot(store, key)
        found[key] = None if previous is None else detect_adjustment(previous[1], frame)
    return found


def adjustment_metadata(adjustment: Adjustment | None) -> dict[str, dg.MetadataValue]:
    """What a `daily_bars` materialization says about rewritten history."""
    if adjustment is None:
        return {"adjusted_past": dg.MetadataValue.text("no")}
    return {
        "adjusted_past": dg.MetadataValue.text(adjustment.describe()),
        "adjustment_ratio": dg.MetadataValue.float(adjustment.ratio),
        "adjustment_first_changed_date": dg.MetadataValue.text(f"{adjustment.first_changed_date:%Y-%m-%d}"),
    }


@dg.asset(
    partitions_def=bars_partitions,
    group_name="bars",
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"parquet"},
    op_tags=step_k8s_tags("adjustment_events"),
)
def adjustment_events(
    context: dg.AssetExecutionContext,
    lake: DataLakeResource,
    daily_bars: dict[str, pd.DataFrame],
) -> dict[str, pd.DataFrame]:
    """Past rows each session's snapshot changed (splits, dividend adjustments), one row per event."""
    adjustments = detect_adjustments(lake.store, daily_bars)
    out = {}
    for key, adjustment in adjustments.items():
        dims = dimensions(key, bars_partitions)
        out[key] = event_rows(dims["symbol"], pd.Timestamp(dims["date"]), adjustment)
    add_partition_metadata(
        context,
        {
            key: {
                "events": dg.MetadataValue.int(len(events)),
                "path": dg.MetadataValue.path(lake.store.path("adjustment_events", key)),
                "preview": dg.MetadataValue.md(markdown_table(events)),
            }
            for key, events in out.items()
        },
    )
    context.log.info(f"{sum(len(events) for events in out.values())} adjustments in {len(out)} snapshots")
    return out
