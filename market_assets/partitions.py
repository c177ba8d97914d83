"""The partition grids: (session date x index) for compositions, (session date x symbol) for bars."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from market_assets.sessions import FIRST_SESSION, closed_weekdays
from market_assets.stooq.indices import INDICES

session_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 * * 1-5",
    fmt="%Y-%m-%d",
    start=FIRST_SESSION,
    # Today's key exists from midnight UTC, so a session can be loaded minutes after its close.
    end_offset=1,
    exclusions=[datetime.strptime(day, "%Y-%m-%d") for day in closed_weekdays()],
)
"""Days that are a session on at least one followed exchange (XNYS or XHKG)."""

index_partitions = dg.StaticPartitionsDefinition(sorted(INDICES))

symbol_partitions = dg.DynamicPartitionsDefinition(name="symbols")
"""Stooq download symbols, filled from the compositions. A symbol that leaves an index stays here,
so its past partitions keep their history."""

composition_partitions = dg.MultiPartitionsDefinition(
    {"date": session_partitions, "index": index_partitions}
)
bars_partitions = dg.MultiPartitionsDefinition({"date": session_partitions, "symbol": symbol_partitions})


def bars_key(session: str, symbol: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": session, "symbol": symbol})


def composition_key(session: str, index: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": session, "index": index})


def dimensions(key: str, definition: dg.MultiPartitionsDefinition) -> dict[str, str]:
    """`{"date": ..., "symbol" | "index": ...}` of a key given as `MultiPartitionKey` or as text
    (runs launched from the CLI with a `dagster/partition` tag carry plain strings)."""
    if not isinstance(key, dg.MultiPartitionKey):
        key = definition.get_partition_key_from_str(key)
    return dict(key.keys_by_dimension)
