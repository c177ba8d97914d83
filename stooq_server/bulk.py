"""Stooq's bulk daily archives (the "ASCII" ZIPs per market), written from histories.

stooq.com publishes every symbol of a market as one ZIP (`d_us_txt.zip`, `d_hk_txt.zip`) holding
`data/daily/<market>/<exchange>/.../<symbol>.txt` files in the format
`<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>`. Writing the server's data
set in that layout lets tests and benchmarks read exactly what the server serves, as the files
source of the platform would read a downloaded archive.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from market_assets.sources.parsing import BULK_HEADER

from .server import History, format_numbers

MARKET_FOLDERS = {".US": "data/daily/us/nyse stocks/1", ".HK": "data/daily/hk/hkex stocks"}
"""Where the archives of each market keep a symbol with this suffix (lower-case on stooq.com)."""


def bulk_member(symbol: str) -> str:
    """The path of `symbol`'s file inside its market's archive (`AAPL.US` is in
    `data/daily/us/nyse stocks/1/aapl.us.txt`)."""
    suffix = "." + symbol.rsplit(".", 1)[-1].upper()
    folder = MARKET_FOLDERS.get(suffix, "data/daily/world/indices")
    return f"{folder}/{symbol.lower()}.txt"


def bulk_lines(symbol: str, history: History) -> Iterable[str]:
    """The file of `symbol` in the bulk format, line by line (CRLF line ends, as Stooq writes)."""
    yield BULK_HEADER + "\r\n"
    days = np.datetime_as_string(history.dates, unit="D")
    prices = [format_numbers(history.prices[:, column]) for column in range(4)]
    volume = format_numbers(history.volume) if history.volume is not None else [""] * len(history)
    ticker = symbol.upper()
    for row, day in enumerate(days.tolist()):
        cells = [price[row] for price in prices]
        yield f"{ticker},D,{day.replace('-', '')},000000,{','.join(cells)},{volume[row]},0\r\n"


def write_bulk_archive(path: Path, histories: Mapping[str, History]) -> Path:
    """A ZIP of `histories` by symbol, in the layout of a downloaded archive."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for symbol, history in histories.items():
            archive.writestr(bulk_member(symbol), "".join(bulk_lines(symbol, history)))
    return path
