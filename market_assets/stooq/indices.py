"""The indices the platform follows and where Stooq publishes them.

One table, so that the client, the demo server, partitions and schedules agree on the same ids,
exchanges and calendars.
"""

from __future__ import annotations

from dataclasses import dataclass

from market_assets.stooq.errors import UnknownIndexError


@dataclass(frozen=True)
class StockIndex:
    """An index whose constituents Stooq lists on its composition page `/t/?i=<stooq_id>`."""

    name: str
    title: str
    stooq_id: int
    calendar: str
    """exchange_calendars code of the exchange its constituents trade on."""
    symbol_suffix: str
    """Suffix Stooq gives the constituents' download symbols (`AAPL.US`, `0005.HK`)."""
    stooq_symbol: str
    """The index's own series on Stooq."""


INDICES: dict[str, StockIndex] = {
    index.name: index
    for index in (
        StockIndex("DJI", "Dow Jones Industrial Average", 578, "XNYS", ".US", "^DJI"),
        StockIndex("NDX", "Nasdaq-100", 580, "XNYS", ".US", "^NDX"),
        StockIndex("HSI", "Hang Seng Index", 616, "XHKG", ".HK", "^HSI"),
    )
}


def get_index(name: str) -> StockIndex:
    """Look an index up by name (case-insensitive), naming the known ones when it is unknown."""
    try:
        return INDICES[name.strip().upper()]
    except KeyError:
        known = ", ".join(INDICES)
        raise UnknownIndexError(f"Unknown index {name!r}: the known indices are {known}.") from None
