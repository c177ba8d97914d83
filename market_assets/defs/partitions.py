"""The partition grids: (session date x index) for compositions, and for the bars of each exchange
(the exchange's session dates x the symbols listed on it)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import dagster as dg
import pandas as pd

from market_assets import settings
from market_assets.domain.exchange_sessions import closed_weekdays
from market_assets.sources.indices import followed_exchanges, followed_indices


def window_start(today: pd.Timestamp | None = None, days: int | None = None) -> str:
    """The first date partition: the Monday of the week `MARKET_ASSETS_PARTITION_DAYS` (14), or
    `days`, days back: the sessions a close may still load. Why so short, and a Monday:
    docs/design.md#the-partition-window-and-the-partition-status-cache.
    """
    today = today if today is not None else pd.Timestamp.now(tz="UTC").tz_localize(None)
    back = today.normalize() - pd.Timedelta(days=days if days is not None else settings.PARTITION_DAYS.value())
    return f"{back - pd.Timedelta(days=back.weekday()):%Y-%m-%d}"


FIRST_SESSION = window_start()
"""The first date partition of this code location (see `window_start`)."""


def sessions_of(exchanges: Iterable[str], first: str = FIRST_SESSION) -> dg.TimeWindowPartitionsDefinition:
    """Weekdays from `first` that are a session on at least one of `exchanges`, as date partitions."""
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule="0 0 * * 1-5",
        fmt="%Y-%m-%d",
        start=first,
        # Today's key exists from midnight UTC, so a session can be loaded minutes after its close.
        end_offset=1,
        exclusions=[datetime.strptime(day, "%Y-%m-%d") for day in closed_weekdays(first, exchanges)],
    )


session_partitions = sessions_of(followed_exchanges())
"""Days that are a session on at least one followed exchange (XNYS and XHKG by default)."""


def require_in_window(session: str, what: str) -> None:
    """Refuse a date outside the date partitions' window, before any run is created, naming the
    window and the setting that widens it: Dagster would refuse it only inside a run, with a stack
    trace. Whether its exchange trades that day is the exchange calendar's to say."""
    if FIRST_SESSION <= session <= session_partitions.get_last_partition_key():
        return
    if session < FIRST_SESSION:
        today = pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()
        setting = settings.PARTITION_DAYS
        raise ValueError(
            f"{what}: {session} is before the partition window, which starts on {FIRST_SESSION} "
            f"({setting.env_var}={setting.value()}); set {setting.env_var}={(today - pd.Timestamp(session)).days} "
            "or more to load it"
        )
    raise ValueError(
        f"{what}: {session} is after the partition window, which ends on "
        f"{session_partitions.get_last_partition_key()}: a session can be loaded once it has closed"
    )


index_partitions = dg.StaticPartitionsDefinition(list(followed_indices()))
"""The followed indices exchange by exchange (DJI, NDX, HSI), not alphabetically: a run over several
compositions is a range, a rectangle in this order, so the indices that share a session (those of one
exchange) must be neighbours for one run to cover them (see `composition_blocks`)."""

composition_partitions = dg.MultiPartitionsDefinition({"date": session_partitions, "index": index_partitions})


symbol_partitions = {code: dg.DynamicPartitionsDefinition(name=f"{code.lower()}_symbols") for code in followed_exchanges()}
"""The Stooq download symbols listed on each followed exchange (`xnys_symbols`), in the order the
compositions registered them. A symbol that leaves an index stays, so its past partitions keep
their history."""

bars_partitions = {
    code: dg.MultiPartitionsDefinition({"date": sessions_of([code]), "symbol": symbols})
    for code, symbols in symbol_partitions.items()
}
"""Each followed exchange's bars grid: its own sessions x its own symbols. A grid of its own per
exchange holds no cell that can never exist (a US symbol on a day only Hong Kong trades), which a
grid over the union of the exchanges' sessions and every symbol would show as missing."""


def bars_key(session: str, symbol: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": session, "symbol": symbol})


def composition_key(session: str, index: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": session, "index": index})


def composition_blocks(keys: Iterable[str]) -> list[list[str]]:
    """`keys` (`<date>|<index>`) in the fewest blocks that one run each can cover: per date, each
    run of neighbouring indices in the index dimension's order. A run's range is a rectangle (date
    range x index range), so a block may not span an index that is not wanted, nor two dates."""
    wanted = {(dims["date"], dims["index"]) for dims in (dimensions(key, composition_partitions) for key in keys)}
    blocks = []
    for day in sorted({day for day, _ in wanted}):
        block: list[str] = []
        for index in [*index_partitions.get_partition_keys(), None]:
            if index is not None and (day, index) in wanted:
                block.append(str(composition_key(day, index)))
            elif block:
                blocks.append(block)
                block = []
    return blocks


def dimensions(key: str, definition: dg.MultiPartitionsDefinition) -> dict[str, str]:
    """`{"date": ..., "index": ...}` of a composition key given as `MultiPartitionKey` or as text
    (runs launched from the CLI with a `dagster/partition` tag carry plain strings)."""
    if not isinstance(key, dg.MultiPartitionKey):
        key = definition.get_partition_key_from_str(key)
    return dict(key.keys_by_dimension)


def partition_tags(key: str) -> dict[str, str]:
    """The tags Dagster gives the materialization of a two-dimensional partition that it records
    for an output (`dagster/partition/date`, `dagster/partition/symbol`), for one the step reports."""
    return {f"dagster/partition/{name}": value for name, value in bars_dimensions(key).items()}


def bars_dimensions(key: str) -> dict[str, str]:
    """`{"date": ..., "symbol": ...}` of a bars key, whichever exchange's grid it belongs to."""
    if isinstance(key, dg.MultiPartitionKey):
        return dict(key.keys_by_dimension)
    date, _, symbol = key.partition("|")
    return {"date": date, "symbol": symbol}
