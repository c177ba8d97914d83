"""A Stooq-compatible HTTP server over a data directory in Stooq's own file formats.

Data directory layout (real saved Stooq files can be dropped in as they are):

- `d/<symbol lower-case>.csv`: raw (unadjusted) daily history, English or Polish header;
- `t/<stooq id>.csv`: index membership, `symbol,name,added,removed` (dates or empty);
- `splits.csv` (optional): `symbol,date,ratio`;
- `dividends.csv` (optional): `symbol,date,factor`: prices before `date` are multiplied by
  `factor` (1 - dividend / the close before), as Stooq adjusts them; volumes are left alone;
- `synthetic.json` (optional): written by the synthetic generator, marks generated data.

The server answers on stooq.com's URLs and in its formats, including its habits that clients
must cope with (HTTP 200 `No data`, pages without a table, split-adjusted history that changes
after a split), and can inject Stooq's failure modes on demand (see `faults`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

from market_assets.sources.indices import StockIndex, followed_indices

from . import pages
from .faults import (
    HITS_LIMIT_BODY,
    NO_DATA_BODY,
    ROUTES,
    Fault,
    FaultBook,
    FaultKind,
    garble_csv,
    rename_close_column,
    truncate_csv,
    truncate_html,
)

logger = logging.getLogger(__name__)

DAILY_DIR = "d"
MEMBERSHIP_DIR = "t"
SPLITS_FILE = "splits.csv"
DIVIDENDS_FILE = "dividends.csv"
SYNTHETIC_MARKER = "synthetic.json"

PRICE_COLUMNS = ("Open", "High", "Low", "Close")
_POLISH_COLUMNS = {
    "Data": "Date",
    "Otwarcie": "Open",
    "Najwyzszy": "High",
    "Najnizszy": "Low",
    "Zamkniecie": "Close",
    "Wolumen": "Volume",
}
_SYMBOL = re.compile(r"[a-z0-9^_-][a-z0-9^._-]*")
"""Symbols that can name a file under `d/`: no path separators, no leading dot."""
_ADJUSTED_DECIMALS = 4
_INTERVALS = ("d", "w", "m")
_SHORT_DOWNLOAD_ROWS = 300
"""Daily downloads up to this many rows (incremental updates) are rendered on the fly; longer
ones are sliced from a rendering of the whole history, made once and cached."""
_HTML = "text/html; charset=utf-8"


def _index_by_id(stooq_id: int) -> StockIndex | None:
    """The followed index whose composition page is `/t/?i=<stooq_id>`."""
    return next((index for index in followed_indices().values() if index.stooq_id == stooq_id), None)


T = TypeVar("T")
_Query = dict[str, list[str]]
"""A parsed query string."""
_Split = tuple[np.datetime64, float, float]
"""An adjustment of the past: its date, what earlier prices are divided by and what earlier volumes
are multiplied by (a split's ratio for both; 1 / factor and 1 for a dividend)."""


# --- Stooq's CSV format -------------------------------------------------------------------------


def format_numbers(values: np.ndarray) -> list[str]:
    """Numbers the way Stooq prints them: shortest exact form, no trailing zeros (`12.5`, `100`).

    A missing value (NaN) prints as an empty cell.
    """
    texts = []
    for value in values.tolist():
        text = repr(value)
        if text.endswith(".0"):
            text = text[:-2]
        elif text == "nan":
            text = ""
        elif "e" in text:
            text = np.format_float_positional(value, trim="-")
        texts.append(text)
    return texts


def csv_header(has_volume: bool) -> str:
    return "Date," + ",".join(PRICE_COLUMNS) + (",Volume" if has_volume else "")


def csv_lines(dates: np.ndarray, prices: np.ndarray, volume: np.ndarray | None) -> list[str]:
    """Data rows (no header, no line ends) of a daily history in Stooq's English CSV.

    Trailing missing values are left out rather than printed as empty cells: real Stooq files
    have rows like `2016-01-19,191700,191700,191700,191700` (no volume), served as they are.
    """
    columns = [np.datetime_as_string(dates, unit="D").tolist()]
    columns += [format_numbers(prices[:, i]) for i in range(len(PRICE_COLUMNS))]
    if volume is not None:
        columns.append(format_numbers(volume))
    return [",".join(row).rstrip(",") for row in zip(*columns)]


@dataclass(frozen=True)
class History:
    """A daily history as arrays: what is parsed once per file and reused for every request."""

    dates: np.ndarray
    """datetime64[D], ascending."""
    prices: np.ndarray
    """float64, shape (rows, 4): open, high, low, close."""
    volume: np.ndarray | None
    """float64; None for series without volume (indices)."""

    def __len__(self) -> int:
        return len(self.dates)

    def rows(self, start: int, stop: int) -> History:
        volume = None if self.volume is None else self.volume[start:stop]
        return History(self.dates[start:stop], self.prices[start:stop], volume)

    def end(self, as_of: np.datetime64 | None) -> int:
        """Number of rows dated on or before `as_of` (all rows when None)."""
        return len(self) if as_of is None else int(np.searchsorted(self.dates, as_of, side="right"))

    def span(self, as_of: np.datetime64 | None, d1: np.datetime64 | None, d2: np.datetime64 | None) -> tuple[int, int]:
        """Row range served up to `as_of` and between `d1` and `d2` (inclusive); may be empty."""
        start = 0 if d1 is None else int(np.searchsorted(self.dates, d1, side="left"))
        stop = self.end(as_of)
        if d2 is not None:
            stop = min(stop, int(np.searchsorted(self.dates, d2, side="right")))
        return start, stop

    def aggregate(self, interval: str) -> History:
        """Weekly (Monday..Sunday) or monthly bars dated as Stooq dates them: by the period's last
        calendar day (the Sunday, the month-end), even a weekend, a holiday or a day to come."""
        days = self.dates.astype("datetime64[D]")
        if interval == "w":
            # Day 0 (1970-01-01) was a Thursday: shifting by three days starts weeks on Mondays,
            # and week p ends on day 7p + 3, a Sunday.
            period = (days.astype(np.int64) + 3) // 7
            labels = (period * 7 + 3).astype("datetime64[D]")
        else:
            months = days.astype("datetime64[M]")
            period = months.astype(np.int64)
            labels = (months + 1).astype("datetime64[D]") - 1
        starts = np.flatnonzero(np.r_[True, period[1:] != period[:-1]])
        ends = np.r_[starts[1:], len(period)] - 1
        prices = np.column_stack(
            (
                self.prices[starts, 0],
                np.fmax.reduceat(self.prices[:, 1], starts),  # fmax/fmin skip missing values
                np.fmin.reduceat(self.prices[:, 2], starts),
                self.prices[ends, 3],
            )
        )
        volume = None if self.volume is None else np.add.reduceat(np.nan_to_num(self.volume), starts)
        return History(labels[ends].astype(self.dates.dtype), prices, volume)

    def to_csv(self) -> str:
        """The whole history as a download body (English header, CRLF line ends)."""
        rows = csv_lines(self.dates, self.prices, self.volume)
        return "\r\n".join([csv_header(self.volume is not None), *rows]) + "\r\n"


@dataclass(frozen=True)
class RenderedHistory:
    """The daily CSV rows of a history, rendered once and sliced for every download.

    Rendering numbers dominates the cost of a download, so it is done once per symbol and set of
    applied splits; a daily download is then the text between two `offsets`.
    """

    text: str
    offsets: np.ndarray

    @classmethod
    def of(cls, history: History) -> RenderedHistory:
        lines = [line + "\r\n" for line in csv_lines(history.dates, history.prices, history.volume)]
        offsets = np.zeros(len(lines) + 1, dtype=np.int64)
        np.cumsum([len(line) for line in lines], out=offsets[1:])
        return cls("".join(lines), offsets)

    def rows(self, start: int, stop: int) -> str:
        return self.text[self.offsets[start] : self.offsets[stop]]


def read_history(path: Path) -> History | None:
    """Parse a saved Stooq daily CSV (English or Polish header, LF or CRLF); None if not one."""
    try:
        frame = pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return None
    frame = frame.rename(columns=lambda column: _POLISH_COLUMNS.get(column.strip(), column.strip()))
    if not {"Date", *PRICE_COLUMNS} <= set(frame.columns):
        return None
    frame = frame.sort_values("Date", kind="stable")
    return History(
        dates=pd.to_datetime(frame["Date"], format="%Y-%m-%d").to_numpy("datetime64[D]"),
        prices=frame[list(PRICE_COLUMNS)].to_numpy(np.float64),
        volume=frame["Volume"].to_numpy(np.float64) if "Volume" in frame else None,
    )


def adjust_for_splits(history: History, splits: Iterable[_Split]) -> History:
    """Adjust a raw history the way Stooq does for splits (earlier prices divided, volumes
    multiplied) and dividends (earlier prices multiplied by the dividend's factor)."""
    factor, volume_factor = np.ones(len(history)), np.ones(len(history))
    for split_date, ratio, volume_ratio in splits:
        earlier = history.dates < split_date
        factor[earlier] *= ratio
        volume_factor[earlier] *= volume_ratio
    adjusted = factor != 1.0
    if not adjusted.any():
        return history
    prices = history.prices / factor[:, None]
    prices[adjusted] = np.round(prices[adjusted], _ADJUSTED_DECIMALS)
    volume = None if history.volume is None else history.volume * volume_factor
    return History(history.dates, prices, volume)


# --- Memberships and splits ---------------------------------------------------------------------


def read_membership(path: Path) -> pd.DataFrame | None:
    """An index membership file as `symbol, name, added, removed` (dates as Timestamps or NaT)."""
    if not path.is_file():
        return None
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table["symbol"] = table["symbol"].str.strip().str.upper()
    for column in ("added", "removed"):
        dates = table[column].str.strip()
        table[column] = pd.to_datetime(dates.where(dates != ""), format="%Y-%m-%d")
    return table


def members_as_of(table: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Members listed on `as_of`: added empty or on/before it, removed empty or after it."""
    listed = (table["added"].isna() | (table["added"] <= as_of)) & (table["removed"].isna() | (table["removed"] > as_of))
    return table[listed].sort_values("symbol", kind="stable").reset_index(drop=True)


def read_splits(path: Path, value: str = "ratio") -> pd.DataFrame:
    """The split table `symbol, date, ratio` (or the dividend table `symbol, date, factor`);
    empty when the optional file is absent."""
    if not path.is_file():
        return pd.DataFrame({"symbol": pd.Series([], dtype=str), "date": pd.to_datetime([]), value: []})
    splits = pd.read_csv(path, dtype={"symbol": str})
    splits["symbol"] = splits["symbol"].str.strip().str.upper()
    splits["date"] = pd.to_datetime(splits["date"], format="%Y-%m-%d")
    splits[value] = splits[value].astype(float)
    return splits.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)


def _day(value: pd.Timestamp | None) -> np.datetime64 | None:
    return None if value is None else np.datetime64(value.date(), "D")


class DataStore:
    """Reads the data directory lazily and keeps what it parsed, safely shared by request threads.

    Files are read once; after files in the directory change, `forget` makes the next requests
    read them again.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._cache: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def _cached(self, key: tuple[Any, ...], load: Callable[[], T]) -> T:
        # Loading happens outside the lock so that threads parse different files in parallel;
        # two threads racing for the same file both parse it and the first result is kept.
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = load()
        with self._lock:
            return self._cache.setdefault(key, value)

    def forget(self) -> None:
        """Drop everything parsed, so that edited, added or removed files are served as they are now."""
        with self._lock:
            self._cache.clear()

    def _splits(self) -> dict[str, tuple[_Split, ...]]:
        """Each symbol's splits and dividends, in date order."""

        def load() -> dict[str, tuple[_Split, ...]]:
            splits = read_splits(self.data_dir / SPLITS_FILE).assign(volume_ratio=lambda frame: frame["ratio"])
            dividends = read_splits(self.data_dir / DIVIDENDS_FILE, "factor")
            dividends = dividends.assign(ratio=1.0 / dividends["factor"], volume_ratio=1.0)
            events = pd.concat([splits, dividends[["symbol", "date", "ratio", "volume_ratio"]]], ignore_index=True)
            events = events.sort_values(["symbol", "date"], kind="stable")
            return {
                symbol: tuple(
                    zip(group["date"].to_numpy("datetime64[D]"), group["ratio"].tolist(), group["volume_ratio"].tolist())
                )
                for symbol, group in events.groupby("symbol")
            }

        return self._cached(("splits",), load)

    def _applied_splits(self, symbol: str, as_of: pd.Timestamp | None) -> tuple[_Split, ...]:
        day = _day(as_of)
        return tuple(event for event in self._splits().get(symbol.upper(), ()) if day is None or event[0] <= day)

    def history(self, symbol: str, as_of: pd.Timestamp | None) -> History | None:
        """A symbol's whole history, adjusted for its splits dated on or before `as_of` (or all).

        The rows after `as_of` are kept: cutting them is cheap and leaves one cached object per set
        of applied splits rather than one per serving date.
        """
        symbol = symbol.strip().lower()
        if not _SYMBOL.fullmatch(symbol):
            return None
        path = self.data_dir / DAILY_DIR / f"{symbol}.csv"
        raw = self._cached(("raw", symbol), lambda: read_history(path))
        if raw is None:
            return None
        applied = self._applied_splits(symbol, as_of)
        return self._cached(("adjusted", symbol, applied), lambda: adjust_for_splits(raw, applied))

    def rendered(self, symbol: str, as_of: pd.Timestamp | None) -> RenderedHistory | None:
        """The daily CSV rows of `history(symbol, as_of)`."""
        history = self.history(symbol, as_of)
        if history is None:
            return None
        key = ("rendered", symbol.strip().lower(), self._applied_splits(symbol, as_of))
        return self._cached(key, lambda: RenderedHistory.of(history))

    def membership(self, stooq_id: int) -> pd.DataFrame | None:
        path = self.data_dir / MEMBERSHIP_DIR / f"{stooq_id}.csv"
        return self._cached(("membership", stooq_id), lambda: read_membership(path))


# --- Serving --------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class _Stats:
    """Request and injection counters, for tests and benchmarks to see what a client really did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._total = 0
            self._by_route: Counter[str] = Counter(dict.fromkeys((*ROUTES, "apikey", "other"), 0))
            self._by_symbol: Counter[str] = Counter()
            self._by_index: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()
            self._bytes_by_route: Counter[str] = Counter()
            self._in_flight = 0
            self._peak_in_flight = 0

    def enter(self) -> None:
        """A request is being answered (latency and faults included)."""
        with self._lock:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def sent(self, route: str, size: int) -> None:
        """`size` bytes of body were answered on `route` (what a client downloaded)."""
        with self._lock:
            self._bytes_by_route[route] += size

    def count(self, route: str, key: str | None, fault: Fault | None) -> None:
        with self._lock:
            self._total += 1
            self._by_route[route] += 1
            if route == "download" and key:
                self._by_symbol[key] += 1
            elif route == "composition" and key:
                self._by_index[key] += 1
            if fault is not None:
                self._faults[fault.kind.value] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self._total,
                "by_route": dict(self._by_route),
                "by_symbol": dict(sorted(self._by_symbol.items())),
                "by_index": dict(sorted(self._by_index.items())),
                "faults": dict(sorted(self._faults.items())),
                "bytes_by_route": dict(sorted(self._bytes_by_route.items())),
                "peak_in_flight": self._peak_in_flight,
            }


def _param(query: _Query, name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _query_date(value: str | None) -> np.datetime64 | None:
    """A `d1`/`d2` parameter (`YYYYMMDD`); raises ValueError when malformed."""
    if value is None or value == "":
        return None
    if not re.fullmatch(r"\d{8}", value):
        raise ValueError(value)
    return np.datetime64(f"{value[:4]}-{value[4:6]}-{value[6:]}", "D")


class StooqServer:
    """Serves a data directory on stooq.com's URLs; a context manager that starts and stops it.

    `as_of` fixes the serving date (histories end there, memberships are taken then, later splits
    are not applied yet), so that a test can replay "what Stooq showed on day X". `latency` is added
    to every answer, in the request's own thread, so concurrency stays observable.
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        api_key: str | None = None,
        as_of: date | str | None = None,
        page_size: int = 50,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.latency = latency
        self.api_key = api_key
        self.as_of = as_of
        self.page_size = page_size
        self.synthetic = (self.data_dir / SYNTHETIC_MARKER).is_file()
        self.brand = "Synthetic Stooq" if self.synthetic else "Stooq-compatible server"
        self.store = DataStore(self.data_dir)
        self._faults = FaultBook()
        self._stats = _Stats()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Life cycle

    def start(self) -> StooqServer:
        if self._httpd is not None:
            raise RuntimeError("the server is already running")
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"stooq-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> StooqServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not running: start() it first")
        return f"http://{self.host}:{self.port}"

    # Runtime controls

    @property
    def as_of(self) -> pd.Timestamp | None:
        return self._as_of

    @as_of.setter
    def as_of(self, value: date | str | None) -> None:
        """Set the serving date (`YYYY-MM-DD`, a date or Timestamp), or None to serve everything."""
        self._as_of = None if value is None else pd.Timestamp(value).normalize()

    def inject(self, fault: Fault) -> None:
        """Add a fault after the active ones (tried in order, the first that fires wins)."""
        self._faults.add(fault)

    def set_faults(self, faults: Iterable[Fault]) -> None:
        """Replace the active faults, with fresh counts."""
        self._faults.replace(faults)

    def clear_faults(self) -> None:
        self._faults.replace(())

    def active_faults(self) -> list[Fault]:
        return self._faults.active()

    def reload(self) -> None:
        """Serve the data directory as it is now: after a test or a person edited its files
        (a history with a bad row, a new split in `splits.csv`), without restarting the server."""
        self.store.forget()

    def stats(self) -> dict[str, Any]:
        """Requests served (total, by route, by symbol, by index id) and faults injected by kind."""
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        self._stats.reset()

    # Answers

    def _handle(self, route: str, query: _Query) -> Response | None:
        """Answer one client request; None means: drop the connection without answering."""
        as_of = self.as_of
        if route == "download":
            key = (_param(query, "s") or "").strip().upper()
            keys = frozenset({key})
        elif route == "composition":
            key = (_param(query, "i") or "").strip()
            index = _index_by_id(int(key)) if key.isdigit() else None
            keys = frozenset({key} if index is None else {key, index.name})
        else:
            key, keys = None, frozenset()
        fault = self._faults.pick(route, keys) if route in ROUTES else None
        self._stats.count(route, key, fault)
        slow = fault is not None and fault.kind is FaultKind.SLOW
        time.sleep(self.latency + (fault.delay if slow else 0.0))
        if fault is None or slow:
            return self._answer(route, query, as_of)
        if fault.kind is FaultKind.RESET:
            return None
        return _FAULT_ANSWERS[fault.kind](self, route, query, as_of)

    def _answer(self, route: str, query: _Query, as_of: pd.Timestamp | None) -> Response:
        if route == "download":
            return self._download(query, as_of)
        if route == "composition":
            return self._composition(query, as_of)
        if route == "apikey":
            return Response(200, pages.api_key_page(self.brand, self.api_key), _HTML)
        return Response(404, HTTPStatus.NOT_FOUND.phrase)

    def _download(self, query: _Query, as_of: pd.Timestamp | None) -> Response:
        if self.api_key is not None and _param(query, "apikey") != self.api_key:
            return Response(200, pages.api_key_required_page(self.brand), _HTML)
        symbol = (_param(query, "s") or "").strip().lower()
        interval = _param(query, "i") or "d"
        try:
            d1, d2 = _query_date(_param(query, "d1")), _query_date(_param(query, "d2"))
        except ValueError:
            return Response(200, NO_DATA_BODY)
        history = self.store.history(symbol, as_of) if interval in _INTERVALS else None
        start, stop = (0, 0) if history is None else history.span(_day(as_of), d1, d2)
        if history is None or start >= stop:
            return Response(200, NO_DATA_BODY)
        if interval != "d":
            body = history.rows(start, stop).aggregate(interval).to_csv()
        elif stop - start <= _SHORT_DOWNLOAD_ROWS:
            body = history.rows(start, stop).to_csv()
        else:
            rendered = self.store.rendered(symbol, as_of)
            body = csv_header(history.volume is not None) + "\r\n" + rendered.rows(start, stop)
        filename = re.sub(r"[^a-z0-9]", "_", symbol.lstrip("^")) + f"_{interval}.csv"
        disposition = {"Content-Disposition": f"attachment; filename={filename}"}
        return Response(200, body, "text/csv; charset=utf-8", disposition)

    def _composition(self, query: _Query, as_of: pd.Timestamp | None) -> Response:
        raw_id = (_param(query, "i") or "").strip()
        table = self.store.membership(int(raw_id)) if raw_id.isdigit() else None
        if table is None:
            return Response(200, pages.unknown_index_page(self.brand, raw_id), _HTML)
        stooq_id = int(raw_id)
        members = members_as_of(table, pd.Timestamp.today().normalize() if as_of is None else as_of)
        page_count = max(1, math.ceil(len(members) / self.page_size))
        page_param = _param(query, "l") or "1"
        page = max(1, int(page_param)) if page_param.isdigit() else 1
        shown = members.iloc[(page - 1) * self.page_size : page * self.page_size]
        rows = [self._member_row(symbol, name, as_of) for symbol, name in shown[["symbol", "name"]].itertuples(index=False)]
        index = _index_by_id(stooq_id)
        body = pages.composition_page(
            brand=self.brand,
            stooq_id=stooq_id,
            title=index.title if index is not None else f"Index {stooq_id}",
            quote=self._quote(index, as_of),
            rows=rows,
            page=page,
            pages=page_count,
        )
        return Response(200, body, _HTML)

    def _last_rows(self, symbol: str, as_of: pd.Timestamp | None) -> History | None:
        """The last two rows served on the serving date: enough for a last price and a change."""
        history = self.store.history(symbol, as_of)
        end = 0 if history is None else history.end(_day(as_of))
        return history.rows(max(0, end - 2), end) if end else None

    def _member_row(self, symbol: str, name: str, as_of: pd.Timestamp | None) -> pages.MemberRow:
        last = self._last_rows(symbol, as_of)
        if last is None:
            return pages.MemberRow(symbol, name, "-", "-", "-")
        close = last.prices[:, 3]
        change = f"{(close[-1] / close[0] - 1.0) * 100:+.2f}%" if len(close) == 2 else "-"
        volume = "-" if last.volume is None else format_numbers(last.volume[-1:])[0]
        return pages.MemberRow(symbol, name, format_numbers(close[-1:])[0], change, volume)

    def _quote(self, index: StockIndex | None, as_of: pd.Timestamp | None) -> str:
        last = None if index is None else self._last_rows(index.stooq_symbol, as_of)
        if last is None:
            return "-"
        close = format_numbers(last.prices[-1:, 3])[0]
        return f"{index.stooq_symbol} {close} ({np.datetime_as_string(last.dates[-1])})"


_AsOf = pd.Timestamp | None
FaultAnswer = Callable[[StooqServer, str, _Query, _AsOf], Response]


def _fixed(status: int, body: str) -> FaultAnswer:
    """A fault that replaces the answer with a fixed one."""
    return lambda *_: Response(status, body)


def _damaged(transform: Callable[[str, str], str]) -> FaultAnswer:
    """A fault that damages the real answer; `transform` gets the route and the real body."""

    def answer(server: StooqServer, route: str, query: _Query, as_of: _AsOf) -> Response:
        real = server._answer(route, query, as_of)
        real.body = transform(route, real.body)
        return real

    return answer


def _challenge(server: StooqServer, route: str, query: _Query, as_of: _AsOf) -> Response:
    token = hashlib.sha256(f"{route}?{sorted(query.items())}".encode()).hexdigest()[:32]
    return Response(200, pages.challenge_page(token), _HTML)


_FAULT_ANSWERS: dict[FaultKind, FaultAnswer] = {
    FaultKind.HTTP_500: _fixed(500, HTTPStatus.INTERNAL_SERVER_ERROR.phrase),
    FaultKind.HTTP_503: _fixed(503, HTTPStatus.SERVICE_UNAVAILABLE.phrase),
    FaultKind.HTTP_404: _fixed(404, HTTPStatus.NOT_FOUND.phrase),
    FaultKind.HITS_LIMIT: _fixed(200, HITS_LIMIT_BODY),
    FaultKind.CHALLENGE: _challenge,
    FaultKind.NO_DATA: _fixed(200, NO_DATA_BODY),
    FaultKind.EMPTY: _fixed(200, ""),
    FaultKind.TRUNCATED: _damaged(lambda route, body: truncate_html(body) if route == "composition" else truncate_csv(body)),
    FaultKind.BAD_COLUMNS: _damaged(lambda _, body: rename_close_column(body)),
    FaultKind.GARBLED: _damaged(lambda _, body: garble_csv(body)),
}
"""How each fault kind answers, except `reset` (no answer) and `slow` (the normal answer, late)."""


_ROUTES_BY_PATH = {"/t": "composition", "/q/d/l": "download", "/q/d": "apikey"}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    """Many clients connect at once in tests and benchmarks; the default backlog of 5 would make
    the kernel drop connection attempts and clients stall for a second on the retransmit."""

    def __init__(self, address: tuple[str, int], app: StooqServer) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def close_connections(self) -> None:
        """End kept-alive connections, so a stopped server stops answering on them too."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "StooqCompatible/1.0"
    disable_nagle_algorithm = True
    """Headers and body go out in two writes; with Nagle's algorithm the second waits for the
    client's delayed ACK, adding 40 ms to every small answer on a kept-alive connection."""
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/")
        if path.startswith("/_admin/"):
            self._admin("GET", path)
            return
        query = parse_qs(url.query, keep_blank_values=True)
        route = _ROUTES_BY_PATH.get(path, "other")
        if route == "apikey" and "get_apikey" not in query:
            route = "other"
        stats = self.server.app._stats
        stats.enter()
        try:
            response = self.server.app._handle(route, query)
        except Exception:
            # A broken data file must not look like a dropped connection (that is the reset fault).
            logger.exception("failed to answer %s", self.path)
            response = Response(500, HTTPStatus.INTERNAL_SERVER_ERROR.phrase)
        finally:
            # Out of flight once the answer is ready: the client ends its transfer, and may send
            # its next request before this thread runs again, which must not count as two.
            stats.leave()
        if response is None:
            self._reset()
        else:
            self._send(response, lambda size: stats.sent(route, size))

    def do_POST(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path.startswith("/_admin/"):
            self._admin("POST", path)
        else:
            self._send(Response(404, HTTPStatus.NOT_FOUND.phrase))

    def _send(self, response: Response, sending: Callable[[int], None] | None = None) -> None:
        """Answer `response`, telling `sending` the size of its body first: the stats count what a
        client downloaded by the time it has it all."""
        body = response.body.encode("utf-8")
        if sending is not None:
            sending(len(body))
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except ConnectionError:
            # The client gave up (a timeout shorter than a slow answer): nothing left to tell it.
            self.close_connection = True

    def _reset(self) -> None:
        # A zero linger time makes close() send a TCP RST: the client sees "connection reset".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _admin(self, method: str, path: str) -> None:
        if not ipaddress.ip_address(self.client_address[0]).is_loopback:
            self._send_json(403, {"error": "admin endpoints answer loopback clients only"})
            return
        app = self.server.app
        try:
            if (method, path) == ("GET", "/_admin/stats"):
                self._send_json(200, app.stats())
            elif (method, path) == ("POST", "/_admin/faults"):
                payload = self._json_body()
                if not isinstance(payload, list):
                    raise ValueError("expected a JSON list of faults")
                app.set_faults([Fault.from_json(item) for item in payload])
                self._send_json(200, {"faults": [fault.to_json() for fault in app.active_faults()]})
            elif (method, path) == ("POST", "/_admin/reload"):
                app.reload()
                self._send_json(200, {"reloaded": str(app.data_dir)})
            elif (method, path) == ("POST", "/_admin/as_of"):
                payload = self._json_body()
                if not isinstance(payload, dict) or "as_of" not in payload:
                    raise ValueError('expected {"as_of": "YYYY-MM-DD"} or {"as_of": null}')
                app.as_of = payload["as_of"]
                as_of = app.as_of
                self._send_json(200, {"as_of": None if as_of is None else as_of.date().isoformat()})
            else:
                self._send_json(404, {"error": f"no admin endpoint {method} {path}"})
        except (ValueError, KeyError, TypeError) as error:
            self._send_json(400, {"error": str(error)})

    def _json_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(Response(status, json.dumps(payload), "application/json"))
