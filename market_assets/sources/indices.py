"""The indices the platform follows, where Stooq publishes them, and which exchange each symbol trades on.

One table, so that the client, the Stooq-compatible server, partitions and schedules agree on the
same ids, exchanges and calendars.
"""

from __future__ import annotations

from dataclasses import dataclass

from market_assets.sources.errors import UnknownIndexError


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


EXCHANGES: tuple[str, ...] = tuple(sorted({index.calendar for index in INDICES.values()}))
"""The exchange_calendars codes of the followed exchanges."""

_SUFFIX_EXCHANGES = {index.symbol_suffix: index.calendar for index in INDICES.values()}


def indices_on(exchange: str) -> list[str]:
    """The followed indices whose constituents trade on `exchange`."""
    return [name for name, index in INDICES.items() if index.calendar == exchange]


def exchange_of(symbol: str) -> str:
    """The exchange a Stooq download symbol trades on, from its suffix (`.US`, `.HK`)."""
    for suffix, code in _SUFFIX_EXCHANGES.items():
        if symbol.upper().endswith(suffix):
            return code
    known = ", ".join(_SUFFIX_EXCHANGES)
    raise ValueError(f"{symbol}: no exchange calendar for this symbol (known suffixes: {known})")
