"""A synthetic market written in Stooq's file formats, so everything runs without the internet.

The data is made to exercise what a real Stooq pipeline meets: 20+ years of daily bars on real
exchange calendars, symbols that list late, splits that rewrite the adjusted past, index members
that come and go, symbols shared by two indices and one with a dash in its name. Generation is
deterministic (same arguments, byte-identical files) so tests can pin exact values.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import exchange_calendars as xc
import numpy as np
import pandas as pd

from market_assets.sources.indices import StockIndex, followed_indices, get_index

from .server import (
    DAILY_DIR,
    DIVIDENDS_FILE,
    MEMBERSHIP_DIR,
    SPLITS_FILE,
    SYNTHETIC_MARKER,
    csv_header,
    csv_lines,
    members_as_of,
)

DEFAULT_SIZES: dict[str, int] = {"DJI": 30, "NDX": 100, "HSI": 82}
OTHER_INDEX_SIZE = 20
"""Members of a followed index that `DEFAULT_SIZES` does not name (one added in the indices file)."""
SHARED_MEMBERS = 10
"""Members the first index on a calendar shares with each later one (DJI and NDX overlap)."""
CHANGING_INDICES = ("DJI", "NDX")
"""Indices that get one member removed and one added shortly before the last session."""
REMOVED_SESSIONS_AGO = 10
ADDED_SESSIONS_AGO = 5
RECENT_SPLIT_SESSIONS_AGO = 15
"""The first split on each calendar is this recent, so incremental updates meet one."""

_SECTORS = {"DJI": "Industrial", "NDX": "Technology", "HSI": "Hong Kong"}
_INDEX_LEVELS = {"DJI": 10_000.0, "NDX": 1_500.0, "HSI": 12_000.0}
_MIN_PRICE = 2.0
"""Prices reflect off this floor, so that no random walk rounds down to a zero price."""
_MIN_SESSIONS = 40


@dataclass(frozen=True)
class _Listing:
    symbol: str
    name: str


@dataclass(frozen=True)
class _Member:
    listing: _Listing
    added_ago: int | None = None
    removed_ago: int | None = None


@dataclass(frozen=True, eq=False)
class SyntheticUniverse:
    """What `generate_synthetic` wrote, so tests can state expectations without re-reading files."""

    data_dir: Path
    last_session: dict[str, pd.Timestamp]
    """Last generated session per exchange calendar code (`XNYS`, `XHKG`)."""
    symbols: dict[str, tuple[str, ...]]
    """Every generated stock symbol per calendar code, including former and late members."""
    compositions: dict[str, pd.DataFrame]
    """Membership per index name: `symbol, name, added, removed` (Timestamps or NaT)."""
    splits: pd.DataFrame
    """`symbol, date, ratio` of the generated splits."""
    dividends: pd.DataFrame
    """`symbol, date, factor` of the generated dividends (none unless asked for)."""

    def members(self, index_name: str, as_of: date | str | None = None) -> list[str]:
        """Members of an index on `as_of` (default: its calendar's last session), sorted."""
        index = get_index(index_name)
        day = self.last_session[index.calendar] if as_of is None else pd.Timestamp(as_of)
        return members_as_of(self.compositions[index.name], day)["symbol"].tolist()


def generate_synthetic(
    data_dir: str | Path,
    *,
    seed: int = 7,
    first_session: date | str = "2004-01-02",
    last_session: date | str | None = None,
    sizes: Mapping[str, int] | None = None,
    splits: bool = True,
    dividends: bool = False,
) -> SyntheticUniverse:
    """Write a synthetic universe into `data_dir` in the layout `StooqServer` serves.

    `last_session=None` ends each exchange at its latest session already closed now, like a real
    download would; a date ends each at its latest session on or before it. `sizes` gives the
    member count per index (missing indices keep their default). The indices are the followed
    ones (`MARKET_ASSETS_INDICES_FILE`), each with members on its own exchange's calendar.

    What is in it: US symbols `SYNU001.US`... (the second is `SYNU-B.US`) on XNYS sessions, HK
    symbols `9001.HK`... on XHKG sessions, and on another exchange `SYN<code>001<suffix>` (on
    XWAR, with no suffix, `SYNWAR001`...); DJI and NDX share 10 members. DJI and NDX each have
    their last member added 5 sessions before the last session and one extra member removed 10
    sessions before it. About one symbol in 60 per exchange splits (at least one; the first split
    15 sessions before the last session), about one in 40 lists late; neither happens to a member
    that is added or removed.
    """
    sizes = _check_sizes(sizes)
    data_dir = Path(data_dir)
    (data_dir / DAILY_DIR).mkdir(parents=True, exist_ok=True)
    (data_dir / MEMBERSHIP_DIR).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    listings, members = _plan(sizes)
    last_sessions: dict[str, pd.Timestamp] = {}
    sessions_of: dict[str, pd.DatetimeIndex] = {}
    split_rows: list[tuple[str, pd.Timestamp, float]] = []
    compositions: dict[str, pd.DataFrame] = {}
    for calendar, calendar_listings in listings.items():
        sessions = _sessions(calendar, first_session, last_session)
        sessions_of[calendar] = sessions
        last_sessions[calendar] = sessions[-1]
        indices = _indices_on(calendar)
        calendar_members = [member for index in indices for member in members[index.name]]
        split_at, first_rows = _events(rng, calendar_listings, calendar_members, len(sessions), splits)
        for listing in calendar_listings:
            split = split_at.get(listing)
            if split is not None:
                split_rows.append((listing.symbol, sessions[split[0]], split[1]))
            _write_stock(data_dir, seed, listing.symbol, sessions, first_rows.get(listing, 0), split)
        for index in indices:
            _write_index_series(data_dir, seed, index, sessions)
            compositions[index.name] = _composition(members[index.name], sessions)
            _write_composition(data_dir, index, compositions[index.name])
    dividend_table = (
        _dividends(rng, listings, sessions_of, last_sessions) if dividends else pd.DataFrame(columns=["symbol", "date", "factor"])
    )
    (data_dir / DIVIDENDS_FILE).unlink(missing_ok=True)
    if dividends:
        dividend_table.to_csv(data_dir / DIVIDENDS_FILE, index=False, date_format="%Y-%m-%d", lineterminator="\n")
    split_table = pd.DataFrame(split_rows, columns=["symbol", "date", "ratio"])
    split_table.sort_values(["symbol", "date"]).to_csv(
        data_dir / SPLITS_FILE, index=False, date_format="%Y-%m-%d", lineterminator="\n"
    )
    manifest = {
        "seed": seed,
        "first_session": str(pd.Timestamp(first_session).date()),
        "last_session": {code: str(day.date()) for code, day in last_sessions.items()},
        "sizes": sizes,
        "splits": splits,
        "dividends": dividends,
    }
    (data_dir / SYNTHETIC_MARKER).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return SyntheticUniverse(
        data_dir=data_dir,
        last_session=last_sessions,
        symbols={code: tuple(item.symbol for item in group) for code, group in listings.items()},
        compositions=compositions,
        splits=split_table.sort_values(["symbol", "date"]).reset_index(drop=True),
        dividends=dividend_table,
    )


def _check_sizes(sizes: Mapping[str, int] | None) -> dict[str, int]:
    defaults = {name: DEFAULT_SIZES.get(name, OTHER_INDEX_SIZE) for name in followed_indices()}
    merged = {**defaults, **{name.upper(): size for name, size in (sizes or {}).items()}}
    unknown = set(merged) - set(followed_indices())
    if unknown:
        raise ValueError(f"sizes name unknown indices {sorted(unknown)}; known: {list(followed_indices())}")
    small = {name: size for name, size in merged.items() if size < 1}
    if small:
        raise ValueError(f"every index needs at least one member, got {small}")
    return merged


def _indices_on(calendar: str) -> list[StockIndex]:
    return [index for index in followed_indices().values() if index.calendar == calendar]


def _symbol(calendar: str, suffix: str, position: int) -> str:
    """`SYNU001.US`-style US symbols (the second has a dash: `SYNU-B.US`), `9001.HK` in Hong Kong,
    `SYNWAR001` (the calendar's code without its X, then the suffix) elsewhere."""
    if suffix == ".US":
        return "SYNU-B.US" if position == 2 else f"SYNU{position:03d}.US"
    if suffix == ".HK":
        return f"{9000 + position}{suffix}"
    return f"SYN{calendar[1:]}{position:03d}{suffix}"


def _plan(sizes: Mapping[str, int]) -> tuple[dict[str, list[_Listing]], dict[str, list[_Member]]]:
    """Symbols per calendar and members per index, before any date is known."""
    listings: dict[str, list[_Listing]] = {}
    members: dict[str, list[_Member]] = {}
    for calendar in dict.fromkeys(index.calendar for index in followed_indices().values()):
        listed = listings.setdefault(calendar, [])

        def new(index: StockIndex, listed: list[_Listing] = listed, calendar: str = calendar) -> _Listing:
            position = len(listed) + 1
            name = f"Synthetic {_SECTORS.get(index.name, index.name)} {position:03d}"
            listed.append(_Listing(_symbol(calendar, index.symbol_suffix, position), name))
            return listed[-1]

        first: list[_Listing] | None = None
        for index in _indices_on(calendar):
            shared = [] if first is None else first[: min(SHARED_MEMBERS, sizes[index.name])]
            current = shared + [new(index) for _ in range(sizes[index.name] - len(shared))]
            first = first or current
            members[index.name] = [_Member(listing) for listing in current]
        for index in _indices_on(calendar):
            if index.name in CHANGING_INDICES:
                rows = members[index.name]
                rows[-1] = _Member(rows[-1].listing, added_ago=ADDED_SESSIONS_AGO)
                rows.append(_Member(new(index), removed_ago=REMOVED_SESSIONS_AGO))
    return listings, members


DIVIDEND_EVERY = 63
"""Sessions between two dividends of a payer: quarterly, as most US stocks pay."""
RECENT_DIVIDEND_SESSIONS_AGO = 1
"""The first payer's last dividend: the session before the last, so a short run of closes meets one."""


def _dividends(
    rng: np.random.Generator,
    listings: dict[str, list[_Listing]],
    sessions_of: dict[str, pd.DatetimeIndex],
    last_sessions: dict[str, pd.Timestamp],
) -> pd.DataFrame:
    """Quarterly dividends of a quarter of the stocks: each a factor of 1 - yield / 4 on the
    prices before it (a yield of 1 to 4 % a year), which Stooq applies to the adjusted past."""
    rows = []
    for calendar, group in listings.items():
        sessions = sessions_of[calendar]
        payers = sorted(group, key=lambda listing: listing.symbol)[::4]
        for number, listing in enumerate(payers):
            last = len(sessions) - 1 - RECENT_DIVIDEND_SESSIONS_AGO - (0 if number == 0 else int(rng.integers(0, 63)))
            factor = round(1 - float(rng.uniform(0.01, 0.04)) / 4, 6)
            rows += [(listing.symbol, sessions[row], factor) for row in range(last, 0, -DIVIDEND_EVERY)]
    table = pd.DataFrame(rows, columns=["symbol", "date", "factor"])
    return table.sort_values(["symbol", "date"]).reset_index(drop=True)


def _events(
    rng: np.random.Generator,
    listings: list[_Listing],
    members: list[_Member],
    sessions: int,
    splits: bool,
) -> tuple[dict[_Listing, tuple[int, float]], dict[_Listing, int]]:
    """Which symbols split (at which row, by which ratio) and which list late (from which row).

    Only symbols that stay in their indices are picked, so that a test of a membership change, a
    split or a late listing meets one effect at a time.
    """
    changing = {member.listing for member in members if member.added_ago is not None or member.removed_ago is not None}
    candidates = [listing for listing in listings if listing not in changing]
    order = rng.permutation(len(candidates))
    split_count = max(1, len(listings) // 60) if splits else 0
    late_count = max(1, len(listings) // 40)
    split_at = {}
    for k, i in enumerate(order[:split_count]):
        recent = sessions - 1 - RECENT_SPLIT_SESSIONS_AGO
        row = recent if k == 0 else int(rng.integers(sessions // 10, sessions - 30))
        split_at[candidates[i]] = (row, float(rng.choice([2, 3, 4])))
    first_rows = {
        candidates[i]: int(rng.integers(sessions // 5, sessions * 4 // 5)) for i in order[split_count : split_count + late_count]
    }
    return split_at, first_rows


def _sessions(calendar: str, first_session: date | str, last_session: date | str | None) -> pd.DatetimeIndex:
    """The exchange's sessions from `first_session` to `last_session` (default: the last closed)."""
    first = pd.Timestamp(first_session)
    if last_session is None:
        closes = xc.get_calendar(calendar, start=first).closes
        sessions = closes.index[closes <= pd.Timestamp.now(tz="UTC")]
    else:
        last = pd.Timestamp(last_session)
        sessions = xc.get_calendar(calendar, start=first, end=last).sessions
        sessions = sessions[sessions <= last]
    if len(sessions) < _MIN_SESSIONS:
        raise ValueError(f"{calendar} has {len(sessions)} sessions in range, {_MIN_SESSIONS} needed")
    return sessions


def _random_walk(rng: np.random.Generator, rows: int, start: float, sigma: float, drift: float) -> np.ndarray:
    """Daily open/high/low/close (shape (rows, 4)) of a geometric random walk, consistent per row."""
    log_close = np.log(start) + np.cumsum(rng.normal(drift, sigma, rows))
    floor = np.log(_MIN_PRICE)
    close = np.exp(floor + np.abs(log_close - floor))
    open_ = np.r_[start, close[:-1]] * np.exp(rng.normal(0.0, sigma / 3, rows))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, sigma / 2, rows)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, sigma / 2, rows)))
    return np.column_stack((open_, high, low, close))


def _symbol_rng(seed: int, symbol: str) -> np.random.Generator:
    # Seeded per symbol, so that a symbol's history does not depend on the universe's size.
    return np.random.default_rng([seed, zlib.crc32(symbol.encode())])


def _write_stock(
    data_dir: Path,
    seed: int,
    symbol: str,
    sessions: pd.DatetimeIndex,
    first_row: int,
    split: tuple[int, float] | None,
) -> None:
    """Write one stock's raw history; before a split, prices are `ratio` times the adjusted ones."""
    rng = _symbol_rng(seed, symbol)
    rows = len(sessions)
    start, sigma, drift = rng.uniform(15.0, 250.0), rng.uniform(0.01, 0.025), rng.uniform(-1e-4, 4e-4)
    prices = _random_walk(rng, rows, start, sigma, drift)
    typical_volume = 10 ** rng.uniform(5.0, 7.0)
    volume = np.maximum(1.0, np.rint(typical_volume * np.exp(rng.normal(0.0, 0.35, rows))))
    if split is not None:
        split_row, ratio = split
        prices[:split_row] *= ratio
        volume[:split_row] = np.maximum(1.0, np.rint(volume[:split_row] / ratio))
    _write_daily(data_dir, symbol, sessions[first_row:], prices[first_row:], volume[first_row:])


def _write_index_series(data_dir: Path, seed: int, index: StockIndex, sessions: pd.DatetimeIndex) -> None:
    rng = _symbol_rng(seed, index.stooq_symbol)
    prices = _random_walk(rng, len(sessions), _INDEX_LEVELS.get(index.name, 1_000.0), 0.011, 2e-4)
    _write_daily(data_dir, index.stooq_symbol, sessions, prices, None)


def _write_daily(
    data_dir: Path,
    symbol: str,
    sessions: pd.DatetimeIndex,
    prices: np.ndarray,
    volume: np.ndarray | None,
) -> None:
    dates = sessions.to_numpy().astype("datetime64[D]")
    lines = [csv_header(volume is not None), *csv_lines(dates, np.round(prices, 2), volume)]
    (data_dir / DAILY_DIR / f"{symbol.lower()}.csv").write_bytes(("\n".join(lines) + "\n").encode())


def _composition(members: list[_Member], sessions: pd.DatetimeIndex) -> pd.DataFrame:
    def session_ago(sessions_ago: int | None) -> pd.Timestamp:
        return pd.NaT if sessions_ago is None else sessions[-1 - sessions_ago]

    table = pd.DataFrame(
        {
            "symbol": [member.listing.symbol for member in members],
            "name": [member.listing.name for member in members],
            "added": pd.to_datetime([session_ago(member.added_ago) for member in members]),
            "removed": pd.to_datetime([session_ago(member.removed_ago) for member in members]),
        }
    )
    return table.sort_values("symbol", kind="stable").reset_index(drop=True)


def _write_composition(data_dir: Path, index: StockIndex, table: pd.DataFrame) -> None:
    table.to_csv(
        data_dir / MEMBERSHIP_DIR / f"{index.stooq_id}.csv",
        index=False,
        date_format="%Y-%m-%d",
        lineterminator="\n",
    )
