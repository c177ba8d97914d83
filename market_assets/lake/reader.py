"""Reading the lake as its users ask: the bars of symbols or of an index as known after a session
(`as_of`) or at an instant (`known_at`), with the prices as stored, as traded or adjusted as of a
day. Why: docs/design.md#daily-bars-are-a-snapshot-per-session and
#prices-as-traded-as-adjusted-as-known."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa

from market_assets import settings
from market_assets.domain.price_factors import adjusted_as_of, adjustment_factors, as_traded
from market_assets.lake.compositions import composition_for, constituents
from market_assets.lake.datasets import ADJUSTMENT_EVENTS, DAILY_BARS, INDEX_COMPOSITION, MONTHLY_BARS, WEEKLY_BARS
from market_assets.lake.fetch_record import FetchRecord
from market_assets.lake.store import ParquetStore

KINDS = {"daily": DAILY_BARS, "weekly": WEEKLY_BARS, "monthly": MONTHLY_BARS}
"""The kinds of bars a reader asks for, and their assets."""


AS_TRADED, ADJUSTED_AS_OF = "as_traded", "adjusted_as_of:"
"""The `prices` of a read besides the stored ones: as traded, or `adjusted_as_of:YYYY-MM-DD`."""

SNAPSHOT_COLUMNS = ("session", "fetched_at", "backfilled")
"""The columns a read adds to the stored bars: which snapshot each row is from, when it was
fetched, and whether it is a backfill."""
_NOT_FIELDS = ("symbol", "date", *SNAPSHOT_COLUMNS)


class LakeReadError(ValueError):
    """A read the lake cannot answer: an unknown kind, symbol, index, session or column. Its
    message names it and says what the lake does hold."""


def as_session(value: str | date | pd.Timestamp, what: str = "as_of") -> str:
    """`value` as a session key, `YYYY-MM-DD`."""
    if isinstance(value, str) and len(value) == 10 and value[4] == value[7] == "-":
        try:
            return date.fromisoformat(value).isoformat()  # a key already: a tenth of pandas' parsing
        except ValueError:
            pass
    try:
        return f"{pd.Timestamp(value):%Y-%m-%d}"
    except (ValueError, TypeError):
        raise LakeReadError(f"{what} {value!r} is not a date (YYYY-MM-DD)") from None


def as_instant(value: str | date | pd.Timestamp, what: str = "known_at") -> pd.Timestamp:
    """`value` as an instant in UTC (a value without a zone is UTC)."""
    try:
        instant = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise LakeReadError(f"{what} {value!r} is not an instant (YYYY-MM-DD[THH:MM[:SS]][+HH:MM])") from None
    return instant.tz_localize("UTC") if instant.tzinfo is None else instant.tz_convert("UTC")


class LakeReader:
    """Reads bars, compositions and panels from the lake at `root` (a folder or an fsspec URL)."""

    def __init__(self, root: str | ParquetStore | None = None) -> None:
        if isinstance(root, ParquetStore):
            self.store = root
        else:
            self.store = ParquetStore(root or settings.DATA_ROOT.value())

    def snapshots(
        self,
        kind: str,
        symbols: Iterable[str] | None = None,
        as_of: str | None = None,
        known_at: str | pd.Timestamp | None = None,
    ) -> dict[str, str]:
        """The session of each symbol's snapshot to read: its newest, at or before `as_of` if given,
        among those fetched at or before `known_at` if given. Every stored symbol when `symbols` is None."""
        asset = _asset(kind)
        catalog = self.store.catalog(asset)
        first = catalog.first_session
        if first is None:
            raise LakeReadError(f"{asset}: nothing stored under {self.store.root}")
        if as_of is not None:
            as_of = as_session(as_of)
            if as_of < first:
                raise LakeReadError(f"as_of {as_of} is before the first stored session of {asset}, {first}")
        instant = None if known_at is None else as_instant(known_at)
        # A snapshot is fetched after its session's close: no later session can have been known.
        last = min(as_of or "9999-12-31", "9999-12-31" if instant is None else f"{instant:%Y-%m-%d}")
        names = catalog.sessions_by_name if symbols is None else dict.fromkeys(symbols)
        found: dict[str, str] = {}
        for name in names:
            for session in catalog.at_or_before(name, last):
                if instant is None or self._fetched_by(asset, f"{session}|{name}", instant):
                    found[name] = session
                    break
        if len(found) < len(names):
            self._refuse_missing(asset, sorted(set(names) - set(found)), as_of, instant)
        return dict(sorted(found.items()))

    def _fetched_by(self, asset: str, key: str, instant: pd.Timestamp) -> bool:
        """Whether the snapshot `key` is known to have been fetched at or before `instant`."""
        record = self.store.fetch_record(asset, key)
        return record is not None and record.at <= instant

    def bars(
        self,
        kind: str,
        symbols: Sequence[str] | None = None,
        index: str | None = None,
        as_of: str | date | pd.Timestamp | None = None,
        start: str | date | pd.Timestamp | None = None,
        end: str | date | pd.Timestamp | None = None,
        known_at: str | pd.Timestamp | None = None,
        prices: str | None = None,
    ) -> pd.DataFrame:
        """One frame of the `kind` (daily, weekly, monthly) bars of `symbols`, or of the members of
        `index` on `as_of` (its newest composition when None), or of every stored symbol when
        neither is given, each from the snapshot `snapshots` picks (with `known_at`, among those
        fetched by then), between `start` and `end` (inclusive). Columns: `symbol`, `date`, the
        prices and volume, the period columns of weekly and monthly bars, and of the snapshot:
        `session`, `fetched_at` (missing when not recorded) and `backfilled` (True for a snapshot
        recorded as a backfill).

        `prices` (daily bars): `"as_traded"`, or `"adjusted_as_of:YYYY-MM-DD"`; the frame then has a
        `prices` column saying which prices each row holds (as-traded prices before a symbol's
        first live snapshot are not known, and missing)."""
        as_of = None if as_of is None else as_session(as_of)
        names = list(symbols or [])
        if index is not None:
            names += [symbol for symbol in self.members(index, as_of) if symbol not in names]
        if not names and symbols is not None:
            raise LakeReadError("no symbols asked for")
        wanted = _prices(kind, prices)
        chosen = self.snapshots(kind, names or None, as_of, known_at)
        frame = self._read(_asset(kind), chosen)
        if wanted is not None:
            frame = self._repriced(frame, wanted)
        if start is not None:
            frame = frame[frame["date"] >= pd.Timestamp(as_session(start, "start"))]
        if end is not None:
            frame = frame[frame["date"] <= pd.Timestamp(as_session(end, "end"))]
        return frame.reset_index(drop=True)

    def adjustment_events(self, symbols: Iterable[str]) -> pd.DataFrame:
        """The recorded adjustments of `symbols` (`adjustment_events` rows), each with the `session`
        whose snapshot first showed it, oldest first."""
        recorded = self.store.catalog(ADJUSTMENT_EVENTS).sessions_by_name
        frames = [
            self.store.read(ADJUSTMENT_EVENTS, f"{session}|{symbol}").assign(session=pd.Timestamp(session))
            for symbol in symbols
            for session in recorded.get(symbol, [])
        ]
        if not frames:
            return pd.DataFrame(
                {
                    "symbol": pd.Series([], dtype="string"),
                    "effective_date": pd.Series([], dtype="datetime64[ns]"),
                    "ratio": pd.Series([], dtype=float),
                    "volume_ratio": pd.Series([], dtype=float),
                    "session": pd.Series([], dtype="datetime64[ns]"),
                }
            )
        return pd.concat(frames, ignore_index=True).sort_values(["symbol", "session"], ignore_index=True)

    def adjustment_factors(self, symbols: Sequence[str]) -> pd.DataFrame:
        """The adjustment factors of `symbols` (`market_assets.domain.price_factors.adjustment_factors`)
        and, per symbol, from which date its as-traded prices are known (`as_traded_from`)."""
        self.snapshots("daily", symbols)  # names any symbol the lake does not hold
        factors = adjustment_factors(self.adjustment_events(symbols))
        return factors.assign(as_traded_from=factors["symbol"].map(self.first_live(symbols)))

    def first_live(self, symbols: Iterable[str]) -> dict[str, pd.Timestamp | None]:
        """The session of each symbol's first daily snapshot that is not a backfill (a snapshot
        written before fetch records were kept counts as live): as-traded prices are known from it
        on. None for a symbol that has none."""
        asset = KINDS["daily"]
        stored = self.store.catalog(asset).sessions_by_name
        return {
            symbol: next(
                (pd.Timestamp(session) for session in stored.get(symbol, []) if self._live(asset, session, symbol)), None
            )
            for symbol in symbols
        }

    def _live(self, asset: str, session: str, symbol: str) -> bool:
        """Whether the snapshot of `symbol` of `session` was not recorded as a backfill."""
        record = self.store.fetch_record(asset, f"{session}|{symbol}")
        return record is None or not record.backfill_of(session)

    def _repriced(self, frame: pd.DataFrame, prices: str) -> pd.DataFrame:
        """The daily bars of the chosen snapshots with the `prices` asked for (see `bars`); the
        adjustments and first live snapshots of their symbols read once."""
        symbols = list(frame["symbol"].unique())
        events, firsts = self.adjustment_events(symbols), self.first_live(symbols)
        own_events = {symbol: own.reset_index(drop=True) for symbol, own in events.groupby("symbol", sort=False)}
        return pd.concat(
            [
                self._symbol_repriced(own, own_events.get(symbol, events.iloc[:0]), firsts[symbol], prices)
                for symbol, own in frame.groupby("symbol", sort=False)
            ],
            ignore_index=True,
        )

    @staticmethod
    def _symbol_repriced(bars: pd.DataFrame, events: pd.DataFrame, first: pd.Timestamp | None, prices: str) -> pd.DataFrame:
        """One symbol's daily bars of one snapshot with the `prices` asked for, from its recorded
        `events` and its first live session `first`."""
        symbol, session = str(bars["symbol"].iat[0]), bars["session"].iat[0]
        if prices == AS_TRADED:
            known = events[events["session"] <= session]
            out = as_traded(bars, known, first)
            late = "" if first is None else f" before {first:%Y-%m-%d}"
            unknown = f"unknown{late}: adjustments before {symbol}'s first live snapshot were not seen"
            seen = out["date"] >= first if first is not None else np.zeros(len(out), dtype=bool)
            return out.assign(prices=np.where(seen, "as traded", unknown))
        day = pd.Timestamp(prices[len(ADJUSTED_AS_OF) :])
        if first is None or day < first:
            since = "it has no live snapshot" if first is None else f"its first live snapshot is of {first:%Y-%m-%d}"
            raise LakeReadError(
                f"prices adjusted as of {day:%Y-%m-%d} are not known for {symbol}: {since}, and the "
                "adjustments made before it were not seen"
            )
        return adjusted_as_of(bars, events, session, day).assign(prices=f"adjusted as of {day:%Y-%m-%d}")

    def members(self, index: str, as_of: str | date | pd.Timestamp | None = None) -> list[str]:
        """The symbols of `index` in its newest stored composition at or before `as_of`: who was
        a member after that close, including those that have left since."""
        stored = self.store.catalog(INDEX_COMPOSITION).sessions_by_name
        sessions = stored.get(index, [])
        if not sessions:
            raise LakeReadError(
                f"index {index!r}: no composition stored (stored: {', '.join(stored) or 'none'}) in the lake at {self.store.root}"
            )
        last = sessions[-1] if as_of is None else as_session(as_of)
        listed = composition_for(self.store, index, last)
        if listed is None:
            raise LakeReadError(f"as_of {last} is before the first stored composition of {index}, {sessions[0]}")
        return sorted(constituents(self.store, listed))

    def panel(self, index: str, as_of: str | date | pd.Timestamp, field: str = "close") -> pd.DataFrame:
        """A wide frame (a row per date, a column per symbol) of `field` of the daily bars of the
        symbols that were members of `index` on `as_of`, each as known on `as_of`: free of
        survivorship bias, and of adjustments made after that day."""
        daily = self.bars("daily", index=index, as_of=as_of)
        if field not in daily.columns or field in _NOT_FIELDS:
            columns = [c for c in daily.columns if c not in _NOT_FIELDS]
            raise LakeReadError(f"field {field!r} is not a column of daily_bars (columns: {', '.join(columns)})")
        return daily.pivot(index="date", columns="symbol", values=field).rename_axis(columns=None)

    def _refuse_missing(self, asset: str, missing: list[str], as_of: str | None, known_at: pd.Timestamp | None = None) -> None:
        """Raise naming the symbols without a snapshot: never stored, only after `as_of`, or none
        fetched by `known_at`."""
        stored = self.store.catalog(asset).sessions_by_name
        unknown = [symbol for symbol in missing if symbol not in stored]
        if unknown:
            raise LakeReadError(f"{asset}: no snapshot of {', '.join(unknown)} stored under {self.store.root}")
        if known_at is not None:
            before = f" of a session at or before {as_of}" if as_of else ""
            raise LakeReadError(
                f"{asset}: no snapshot{before} of {', '.join(missing)} fetched at or before "
                f"{known_at:%Y-%m-%d %H:%M:%S} UTC (a snapshot written before fetch times were kept has none)"
            )
        raise LakeReadError(
            f"{asset}: no snapshot at or before {as_of} of "
            + ", ".join(f"{symbol} (its first is {stored[symbol][0]})" for symbol in missing)
        )

    def _read(self, asset: str, chosen: dict[str, str]) -> pd.DataFrame:
        """The chosen snapshots as one frame with the snapshot columns, read in threads when there
        are several (parquet decoding releases the GIL); a compacted snapshot is rebuilt from its
        source."""
        keys = [f"{session}|{symbol}" for symbol, session in chosen.items()]
        if len(keys) > 1:
            tables = list(_pool().map(lambda key: self.store.table(asset, key), keys))
        else:
            tables = [self.store.table(asset, key) for key in keys]
        table = pa.concat_tables(tables, promote_options="permissive")
        rows = [part.num_rows for part in tables]
        records = [FetchRecord.from_footer(part.schema.metadata) for part in tables]
        sessions = list(chosen.values())
        # The snapshot columns of all rows at once: a column per snapshot costs more than its rows.
        known = np.array([record is not None for record in records])
        fetched_at = np.array([record.at.value if record else 0 for record in records], dtype="datetime64[ns]")
        backfilled = np.array([bool(record and record.backfill_of(s)) for record, s in zip(records, sessions)])
        table = (
            table.append_column("session", pa.array(np.repeat(np.array(sessions, dtype="datetime64[ns]"), rows)))
            .append_column("fetched_at", pa.array(np.repeat(fetched_at, rows), _FETCHED_AT, mask=np.repeat(~known, rows)))
            .append_column("backfilled", pa.array(np.repeat(backfilled, rows)))
        )
        # Unconsolidated blocks: the price columns are not copied into one array (a third of a
        # one-symbol read's conversion).
        return table.to_pandas(split_blocks=True)


_FETCHED_AT = pa.timestamp("ns", tz="UTC")


@cache
def _pool() -> ThreadPoolExecutor:
    """The threads that read a multi-symbol read's files, started once per process."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="lake-read")


def _prices(kind: str, prices: str | None) -> str | None:
    """`prices` checked against `kind`, with its day as a session key; None for the stored prices."""
    if prices is None or prices == "adjusted":
        return None
    if _asset(kind) != KINDS["daily"]:
        raise LakeReadError(f"prices {prices!r} are read from daily bars, not {kind}")
    if prices == AS_TRADED:
        return prices
    if prices.startswith(ADJUSTED_AS_OF):
        return ADJUSTED_AS_OF + as_session(prices[len(ADJUSTED_AS_OF) :], "prices adjusted as of")
    raise LakeReadError(f"unknown prices {prices!r} (adjusted, {AS_TRADED} or {ADJUSTED_AS_OF}YYYY-MM-DD)")


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
    known_at: str | pd.Timestamp | None = None,
    prices: str | None = None,
) -> pd.DataFrame:
    """`LakeReader(root).bars(...)`: the lake at `root`, by default `$MARKET_ASSETS_DATA_ROOT`."""
    return LakeReader(root).bars(kind, symbols, index, as_of, start, end, known_at, prices)


def members(index: str, as_of: str | date | pd.Timestamp | None = None, root: str | None = None) -> list[str]:
    """`LakeReader(root).members(index, as_of)`."""
    return LakeReader(root).members(index, as_of)


def panel(index: str, as_of: str | date | pd.Timestamp, field: str = "close", root: str | None = None) -> pd.DataFrame:
    """`LakeReader(root).panel(index, as_of, field)`."""
    return LakeReader(root).panel(index, as_of, field)
