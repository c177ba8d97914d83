"""The indices the platform follows, where Stooq publishes them, and which exchange each symbol
trades on: read once per process from `MARKET_ASSETS_INDICES_FILE` (default: `indices.yaml` beside
this module), and refused whole, naming the file and the entry, when it is wrong.
Why: docs/design.md#the-followed-indices."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from market_assets import settings
from market_assets.sources.errors import UnknownIndexError

DEFAULT_FILE = Path(__file__).with_name("indices.yaml")
"""The indices shipped with the package."""

CALENDAR_SUFFIXES = {
    "XNYS": ".US",
    "XNAS": ".US",
    "XHKG": ".HK",
    "XLON": ".UK",
    "XETR": ".DE",
    "XTKS": ".JP",
    "XWAR": "",
}
"""The suffix Stooq gives the download symbols of stocks trading on each exchange (none in Poland)."""

_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
"""An index name: a partition key and, in lower case, part of a job's name (`dji_close`)."""


class IndicesFileError(settings.ConfigurationError):
    """The indices file cannot be used: names the file, the entry and what is wrong, in one line."""


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
    publication_delay: timedelta | None = None
    """How long after its exchange's close Stooq has its session; None: `MARKET_ASSETS_CLOSE_DELAY_MINUTES`."""


def followed_indices() -> dict[str, StockIndex]:
    """The followed indices by name, in the file's order (the index partitions' order)."""
    return load_indices(indices_file())


def indices_file() -> Path:
    """The file the followed indices come from: `MARKET_ASSETS_INDICES_FILE`, or the shipped one."""
    return Path(settings.INDICES_FILE.value() or DEFAULT_FILE)


@cache
def load_indices(path: Path) -> dict[str, StockIndex]:
    """The indices listed in the YAML file `path`, or an `IndicesFileError` saying what is wrong."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise IndicesFileError(
            f"{settings.INDICES_FILE.env_var}: cannot read {path} ({error.strerror}): set it to the YAML file "
            "of the followed indices, or unset it for the shipped DJI, NDX, HSI"
        ) from None
    except yaml.YAMLError as error:
        raise IndicesFileError(f"{path}: not YAML, {_yaml_problem(error)}") from None
    entries = document.get("indices") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise IndicesFileError(f"{path}: expected a list of indices under `indices:`")
    indices: dict[str, StockIndex] = {}
    for number, entry in enumerate(entries, 1):
        index = _index(path, number, entry)
        where = f"{path}: index {number} ({index.name})"
        if index.name in indices:
            raise IndicesFileError(f"{where}: the name {index.name} is listed twice")
        for other in indices.values():
            if other.stooq_id == index.stooq_id:
                raise IndicesFileError(f"{where}: stooq_id {index.stooq_id} is {other.name}'s too")
            if other.symbol_suffix == index.symbol_suffix and other.calendar != index.calendar:
                raise IndicesFileError(
                    f"{where}: symbol_suffix {index.symbol_suffix!r} is {other.name}'s too, on "
                    f"{other.calendar}: a symbol's suffix must tell its exchange"
                )
        indices[index.name] = index
    return indices


def _yaml_problem(error: yaml.YAMLError) -> str:
    """Where the YAML parser stopped and why, in one line (its own message spans several)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else problem


_FIELDS = {"name", "stooq_id", "calendar", "title", "symbol_suffix", "stooq_symbol", "publication_delay_minutes"}


def _index(path: Path, number: int, entry: Any) -> StockIndex:
    """One entry of the file as a `StockIndex`, or the error naming it and what is wrong."""
    where = f"{path}: index {number}"
    if not isinstance(entry, dict):
        raise IndicesFileError(f"{where}: expected name, stooq_id and calendar, found {entry!r}")
    if isinstance(entry.get("name"), str):
        where += f" ({entry['name']})"
    missing = [field for field in ("name", "stooq_id", "calendar") if field not in entry]
    if missing:
        raise IndicesFileError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise IndicesFileError(f"{where}: unknown field {', '.join(unknown)} (known: {', '.join(sorted(_FIELDS))})")
    name, stooq_id, calendar = str(entry["name"]), entry["stooq_id"], str(entry["calendar"])
    if not _NAME.match(name):
        raise IndicesFileError(
            f"{where}: name {name!r} is not a valid partition key here: capitals, digits and _, "
            "beginning with a capital (it names the index's partitions and its job)"
        )
    if not isinstance(stooq_id, int) or isinstance(stooq_id, bool) or stooq_id <= 0:
        raise IndicesFileError(f"{where}: stooq_id {stooq_id!r} is not the positive number of a page /t/?i=<id>")
    if calendar not in _calendar_codes():
        raise IndicesFileError(f"{where}: calendar {calendar!r} is not an exchange_calendars code (for example XNYS, XHKG, XWAR)")
    suffix = entry.get("symbol_suffix", CALENDAR_SUFFIXES.get(calendar))
    if suffix is None:
        raise IndicesFileError(
            f"{where}: no symbol_suffix known for {calendar}: give the suffix of its constituents' Stooq symbols"
        )
    delay = entry.get("publication_delay_minutes")
    if delay is not None and (not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0):
        raise IndicesFileError(f"{where}: publication_delay_minutes {delay!r} is not a number of minutes >= 0")
    return StockIndex(
        name=name,
        title=str(entry.get("title", name)),
        stooq_id=stooq_id,
        calendar=calendar,
        symbol_suffix=str(suffix).upper(),
        stooq_symbol=str(entry.get("stooq_symbol", f"^{name}")),
        publication_delay=None if delay is None else timedelta(minutes=delay),
    )


@cache
def _calendar_codes() -> frozenset[str]:
    import exchange_calendars as xcals

    return frozenset(xcals.get_calendar_names(include_aliases=False))


def get_index(name: str) -> StockIndex:
    """Look an index up by name (case-insensitive), naming the known ones when it is unknown."""
    indices = followed_indices()
    try:
        return indices[name.strip().upper()]
    except KeyError:
        known = ", ".join(indices)
        raise UnknownIndexError(f"Unknown index {name!r}: the known indices are {known}.") from None


def misplaced_members(index: StockIndex, symbols: list[str]) -> str | None:
    """Why `index` cannot list `symbols`, when some of them trade elsewhere, else None.

    A symbol's calendar (its checks', its sessions') is its index's exchange. A symbol listed by two
    indices on different exchanges would need two, so a composition whose members are not its
    exchange's is refused, naming the indices the symbol belongs to by its suffix.
    """
    problems = []
    for symbol in symbols:
        exchange = _exchange_by_suffix(symbol)
        if exchange == index.calendar:
            continue
        if exchange is None:
            problems.append(f"{symbol} (a suffix none of the followed exchanges has)")
        else:
            problems.append(f"{symbol} (by its suffix a symbol of {', '.join(indices_on(exchange))}, on {exchange})")
    if not problems:
        return None
    return (
        f"index {index.name} (on {index.calendar}) lists symbols of another exchange: {'; '.join(problems)}. "
        "A symbol takes its index's calendar, so a symbol in two indices on different exchanges is refused: "
        f"correct {index.name}'s calendar or symbol_suffix in {indices_file()}"
    )


def followed_exchanges() -> tuple[str, ...]:
    """The exchange_calendars codes of the followed exchanges."""
    return tuple(sorted({index.calendar for index in followed_indices().values()}))


def indices_on(exchange: str) -> list[str]:
    """The followed indices whose constituents trade on `exchange`."""
    return [name for name, index in followed_indices().items() if index.calendar == exchange]


def publication_delay(exchange: str) -> timedelta:
    """How long after `exchange`'s close its session is loaded: the longest delay of its indices,
    each its own `publication_delay_minutes` or else `MARKET_ASSETS_CLOSE_DELAY_MINUTES`.

    An exchange's indices share its schedule ticks and their constituents' bars runs (a symbol in
    two of them is fetched once), so they are loaded together, once the last of them is published.
    """
    delays = [index.publication_delay for index in followed_indices().values() if index.calendar == exchange]
    configured = [delay for delay in delays if delay is not None]
    if len(configured) < len(delays) or not delays:
        configured.append(settings.close_delay(exchange))
    return max(configured)


def exchange_of(symbol: str) -> str:
    """The exchange a Stooq download symbol trades on, from its suffix (`.US`, `.HK`; the longest
    that matches, so that an exchange whose symbols have none takes only the others').

    This is its index's exchange: a composition listing a symbol of another exchange is refused
    (`misplaced_members`), so the suffix and the index never disagree on a stored symbol."""
    exchange = _exchange_by_suffix(symbol)
    if exchange is None:
        known = ", ".join(dict.fromkeys(index.symbol_suffix for index in followed_indices().values()))
        raise ValueError(f"{symbol}: no exchange calendar for this symbol (known suffixes: {known})")
    return exchange


def _exchange_by_suffix(symbol: str) -> str | None:
    suffixes = {index.symbol_suffix: index.calendar for index in followed_indices().values()}
    return next((suffixes[s] for s in sorted(suffixes, key=len, reverse=True) if symbol.upper().endswith(s)), None)
