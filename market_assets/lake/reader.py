"""Reading the lake as its users ask: the bars of symbols or of an index, as known after a session.

Every session's close stores each symbol's whole history again (a snapshot), so "the bars of
AAPL.US" means the rows of one snapshot: by default each symbol's newest, with `as_of` the one
stored for that session or, if the symbol has none for it, its newest before it. That is what was
known after that close, with the splits and dividend adjustments known then, and what a backtest
run on that day would have seen. Symbols are found from the session folders alone (one listing
per session, newest first), so a read opens only the files it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pandas as pd
import pyarrow as pa

from market_assets import settings
from market_assets.lake.store import ParquetStore

KINDS = {"daily": "daily_bars", "weekly": "weekly_bars", "monthly": "monthly_bars"}
"""The kinds of bars a reader asks for, and their assets."""

COMPOSITIONS = "index_composition"


class LakeReadError(ValueError):
    """A read the lake cannot answer: an unknown kind, symbol, index, session or column. Its
    message names it and says what the lake does hold."""


def as_session(value: str | date | pd.Timestamp, what: str = "as_of") -> str:
    """`value` as a session key, `YYYY-MM-DD`."""
    try:
        return f"{pd.Timestamp(value):%Y-%m-%d}"
    except (ValueError, TypeError):
        raise LakeReadError(f"{what} {value!r} is not a date (YYYY-MM-DD)") from None


class LakeReader:
    """Reads bars, compositions and panels from the lake at `root` (a folder or an fsspec URL)."""

    def __init__(self, root: str | ParquetStore | None = None) -> None:
        if isinstance(root, ParquetStore):
            self.store = root
        else:
            self.store = ParquetStore(root or settings.DATA_ROOT.value())

    def snapshots(self, kind: str, symbols: Iterable[str] | None = None, as_of: str | None = None) -> dict[str, str]:
        """The session of each symbol's snapshot to read: its newest, at or before `as_of` if given.
        Every stored symbol when `symbols` is None."""
        asset = _asset(kind)
        sessions = self.store.stored_sessions(asset)
        if not sessions:
            raise LakeReadError(f"{asset}: nothing stored under {self.store.root}")
        if as_of is not None:
            as_of = as_session(as_of)
            if as_of < sessions[0]:
                raise LakeReadError(f"as_of {as_of} is before the first stored session of {asset}, {sessions[0]}")
        wanted = None if symbols is None else set(symbols)
        found: dict[str, str] = {}
        for session in reversed(sessions):
            if as_of is not None and session > as_of:
                continue
            for name in self.store.stored_names(asset, session):
                if name not in found and (wanted is None or name in wanted):
                    found[name] = session
            if wanted is not None and len(found) == len(wanted):
                break
        if wanted is not None and len(found) < len(wanted):
            self._refuse_missing(asset, sorted(wanted - set(found)), as_of)
        return dict(sorted(found.items()))

    def bars(
        self,
        kind: str,
        symbols: Sequence[str] | None = None,
        index: str | None = None,
        as_of: str | date | pd.Timestamp | None = None,
        start: str | date | pd.Timestamp | None = None,
        end: str | date | pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """One frame of the `kind` (daily, weekly, monthly) bars of `symbols`, or of the members of
        `index` on `as_of` (its newest composition when None), or of every stored symbol when
        neither is given, each from the snapshot `snapshots` picks, between `start` and `end`
        (inclusive). Columns: `symbol`, `date`, the prices and volume, the period columns of weekly
        and monthly bars, and `session`, the snapshot's."""
        as_of = None if as_of is None else as_session(as_of)
        names = list(symbols or [])
        if index is not None:
            names += [symbol for symbol in self.members(index, as_of) if symbol not in names]
        if not names and symbols is not None:
            raise LakeReadError("no symbols asked for")
        chosen = self.snapshots(kind, names or None, as_of)
        frame = self._read(_asset(kind), chosen)
        if start is not None:
            frame = frame[frame["date"] >= pd.Timestamp(as_session(start, "start"))]
        if end is not None:
            frame = frame[frame["date"] <= pd.Timestamp(as_session(end, "end"))]
        return frame.reset_index(drop=True)

    def members(self, index: str, as_of: str | date | pd.Timestamp | None = None) -> list[str]:
        """The symbols of `index` in its newest stored composition at or before `as_of`: who was
        a member after that close, including those that have left since."""
        store = self.store
        listed = {session: store.stored_names(COMPOSITIONS, session) for session in store.stored_sessions(COMPOSITIONS)}
        sessions = [session for session, indices in listed.items() if index in indices]
        if not sessions:
            stored = sorted({name for indices in listed.values() for name in indices})
            raise LakeReadError(f"index {index!r}: no composition stored (stored: {', '.join(stored) or 'none'})")
        if as_of is not None:
            as_of = as_session(as_of)
            earlier = [session for session in sessions if session <= as_of]
            if not earlier:
                raise LakeReadError(f"as_of {as_of} is before the first stored composition of {index}, {sessions[0]}")
            sessions = earlier
        return sorted(self.store.read(COMPOSITIONS, f"{sessions[-1]}|{index}")["symbol"])

    def panel(self, index: str, as_of: str | date | pd.Timestamp, field: str = "close") -> pd.DataFrame:
        """A wide frame (a row per date, a column per symbol) of `field` of the daily bars of the
        symbols that were members of `index` on `as_of`, each as known on `as_of`: free of
        survivorship bias, and of adjustments made after that day."""
        daily = self.bars("daily", index=index, as_of=as_of)
        if field not in daily.columns or field in ("symbol", "date", "session"):
            columns = [c for c in daily.columns if c not in ("symbol", "date", "session")]
            raise LakeReadError(f"field {field!r} is not a column of daily_bars (columns: {', '.join(columns)})")
        return daily.pivot(index="date", columns="symbol", values=field).rename_axis(columns=None)

    def _refuse_missing(self, asset: str, missing: list[str], as_of: str | None) -> None:
        """Raise naming the symbols without a snapshot: never stored, or only after `as_of`."""
        later = self.snapshots(asset.removesuffix("_bars"), None, None) if as_of is not None else {}
        unknown = [symbol for symbol in missing if symbol not in later]
        if unknown:
            raise LakeReadError(f"{asset}: no snapshot of {', '.join(unknown)} stored under {self.store.root}")
        first = {symbol: self._first_session(asset, symbol) for symbol in missing}
        raise LakeReadError(
            f"{asset}: no snapshot at or before {as_of} of "
            + ", ".join(f"{symbol} (its first is {session})" for symbol, session in first.items())
        )

    def _first_session(self, asset: str, symbol: str) -> str:
        return next(s for s in self.store.stored_sessions(asset) if symbol in self.store.stored_names(asset, s))

    def _read(self, asset: str, chosen: dict[str, str]) -> pd.DataFrame:
        """The chosen snapshots as one frame, read in threads (parquet decoding releases the GIL);
        a compacted snapshot is rebuilt from its source."""

        def read(item: tuple[str, str]) -> pa.Table:
            symbol, session = item
            table = self.store.table(asset, f"{session}|{symbol}")
            return table.append_column("session", pa.array([session] * table.num_rows, pa.string()))

        with ThreadPoolExecutor(max_workers=8) as pool:
            tables = list(pool.map(read, chosen.items()))
        frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
        frame["session"] = pd.to_datetime(frame["session"]).astype("datetime64[ns]")
        return frame


def _asset(kind: str) -> str:
    if kind in KINDS:
        return KINDS[kind]
    if kind in KINDS.values():
        return kind
    raise LakeReadError(f"unknown kind of bars {kind!r} (one of: {', '.join(KINDS)})")


def bars(
    kind: str,
    symbols: Sequence[str] | None = None,
    index: str | None = None,
    as_of: str | date | pd.Timestamp | None = None,
    start: str | date | pd.Timestamp | None = None,
    end: str | date | pd.Timestamp | None = None,
    root: str | None = None,
) -> pd.DataFrame:
    """`LakeReader(root).bars(...)`: the lake at `root`, by default `$MARKET_ASSETS_DATA_ROOT`."""
    return LakeReader(root).bars(kind, symbols, index, as_of, start, end)


def members(index: str, as_of: str | date | pd.Timestamp | None = None, root: str | None = None) -> list[str]:
    """`LakeReader(root).members(index, as_of)`."""
    return LakeReader(root).members(index, as_of)


def panel(index: str, as_of: str | date | pd.Timestamp, field: str = "close", root: str | None = None) -> pd.DataFrame:
    """`LakeReader(root).panel(index, as_of, field)`."""
    return LakeReader(root).panel(index, as_of, field)
