"""Stooq data saved from a browser (bulk archives, per-symbol CSVs, composition pages):
`StooqFiles` answers what `StooqClient` answers, from one folder.

What the folder may hold: README.md#using-real-data; why: docs/design.md#the-sources.
"""

from __future__ import annotations

import os
import re
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from market_assets.sources.errors import StooqError, StooqFileError, StooqFileMissing, StooqStaleFile
from market_assets.sources.http_client import DEFAULT_BASE_URL
from market_assets.sources.indices import get_index
from market_assets.sources.parsing import (
    combine_composition_pages,
    parse_bulk_file,
    parse_composition_page,
    parse_history_csv,
)

_PAGE_NAME = re.compile(r"(?P<index>[a-z][a-z0-9_]*?)(?:_(?P<page>\d+))?\.html?", re.IGNORECASE)


def _symbol_key(name: str) -> str:
    """`AAPL.US`, `aapl.us.txt`, `aapl_us_d.csv` and `AAPL.US.csv` all become `aapl_us`."""
    stem = name.strip().lower()
    for suffix in (".txt", ".csv"):
        if stem.endswith(suffix):
            stem = stem.removesuffix(suffix)
            if suffix == ".csv":
                stem = stem.removesuffix("_d")
    return stem.replace(".", "_")


@dataclass(frozen=True)
class _SymbolFile:
    """Where a symbol's history is: a member of a bulk archive (a ZIP or the folder it unpacks
    to), or a CSV saved on its own (`archive` None)."""

    path: str
    """The member's path inside the archive, or the saved CSV's path."""
    archive: Path | None = None

    @property
    def bulk(self) -> bool:
        return self.archive is not None

    def __str__(self) -> str:
        return f"file {self.path}" if self.archive is None else f"archive {self.archive}, member {self.path}"


class StooqFiles:
    """Reads a folder of saved Stooq files; safe to share between threads. Close it when done."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).expanduser()
        self._lock = threading.Lock()
        if not self.folder.is_dir():
            raise NotADirectoryError(f"{self.folder}: no such folder of saved Stooq files")
        self._symbols: dict[str, list[_SymbolFile]] | None = None
        self._archives: list[Path] = []
        self._zips: dict[Path, zipfile.ZipFile] = {}
        self._zip_locks: dict[Path, threading.Lock] = {}

    def __enter__(self) -> StooqFiles:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            for archive in self._zips.values():
                archive.close()
            self._zips.clear()
            self._symbols = None

    def composition(self, index: str) -> pd.DataFrame:
        """The constituents listed by the saved composition pages of `index`, as `StooqClient`
        returns them from stooq.com. Every page the first one links to must be saved."""
        stock_index = get_index(index)
        subject = f"index {stock_index.name}"
        url = f"{DEFAULT_BASE_URL}/t/?i={stock_index.stooq_id}"
        pages = self._composition_pages(stock_index.name, subject)
        if 1 not in pages:
            raise StooqFileMissing(
                subject,
                f"folder {self.folder}",
                f"no saved composition page: save {url} as {stock_index.name}.html",
            )
        frames, linked = [], {1}
        for _, path in sorted(pages.items()):
            with _as_file_error(subject, f"file {path}"):
                frame, links = parse_composition_page(_text(path.read_bytes()), subject, url)
            frames.append(frame)
            linked.update(links)
        missing = sorted(linked - set(pages))
        if missing:
            saves = ", ".join(f"{url}&l={page} as {stock_index.name}_{page}.html" for page in missing)
            raise StooqFileMissing(subject, f"file {pages[1]}", f"the list goes on over pages not saved: save {saves}")
        with _as_file_error(subject, f"file {pages[1]}"):
            return combine_composition_pages(frames, subject, url)

    def daily_history(self, symbol: str, session: pd.Timestamp) -> pd.DataFrame:
        """The daily history of `symbol` through `session` and whatever the file holds after it
        (`date, open, high, low, close, volume`, the frame `StooqClient.history` gives). Raises
        `StooqStaleFile`, rather than cutting it short, when the file ends before `session`."""
        source = self._locate(symbol)
        with _as_file_error(symbol, str(source)):
            text = _text(self._read(source))
            parse = parse_bulk_file if source.bulk else parse_history_csv
            history = parse(text, symbol, str(source))
        last = history["date"].iloc[-1]
        if last < session:
            what = "the archive's last date" if source.bulk else "the file's last date"
            raise StooqStaleFile(
                symbol,
                str(source),
                f"the session {session:%Y-%m-%d} is later than {what} for it, {last:%Y-%m-%d}",
            )
        return history

    def _composition_pages(self, index: str, subject: str) -> dict[int, Path]:
        pages: dict[int, Path] = {}
        for path in _walk(self.folder):
            match = _PAGE_NAME.fullmatch(path.name)
            if not match or match["index"].upper() != index:
                continue
            page = int(match["page"] or 1)
            if page in pages:
                raise StooqFileError(subject, f"folder {self.folder}", f"page {page} is saved twice: {pages[page]} and {path}")
            pages[page] = path
        return pages

    def _locate(self, symbol: str) -> _SymbolFile:
        found = self._symbol_files().get(_symbol_key(symbol), [])
        if len(found) > 1:
            places = "; ".join(str(source) for source in found)
            raise StooqFileError(symbol, f"folder {self.folder}", f"more than one file holds it ({places}): keep one")
        if not found:
            stem = symbol.strip().lower()
            archives = ", ".join(str(path) for path in self._archives) or "none"
            raise StooqFileMissing(
                symbol,
                f"folder {self.folder}",
                f"no bulk file {stem}.txt in the archives (found: {archives}) and no saved CSV {stem.replace('.', '_')}_d.csv",
            )
        return found[0]

    def _symbol_files(self) -> dict[str, list[_SymbolFile]]:
        """Every file that may hold a symbol's history, by symbol key: built once, from names only
        (a ZIP's central directory), so no member is read before it is asked for."""
        with self._lock:
            if self._symbols is None:
                self._symbols = {}
                for path in _walk(self.folder):
                    for source in self._symbol_files_in(path):
                        self._symbols.setdefault(_symbol_key(Path(source.path).name), []).append(source)
                self._archives = sorted(
                    {source.archive for files in self._symbols.values() for source in files if source.archive}
                )
            return self._symbols

    def _symbol_files_in(self, path: Path) -> Iterator[_SymbolFile]:
        suffix = path.suffix.lower()
        if suffix == ".zip":
            try:
                archive = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as error:
                raise StooqFileError(path.name, f"archive {path}", f"not a readable ZIP archive ({error})") from None
            self._zips[path] = archive
            self._zip_locks[path] = threading.Lock()
            for member in archive.infolist():
                if not member.is_dir() and member.filename.lower().endswith(".txt"):
                    yield _SymbolFile(member.filename, path)
        elif suffix == ".txt":
            # A bulk file of an unpacked archive: its archive is the top folder it sits in.
            relative = path.relative_to(self.folder)
            top = self.folder / relative.parts[0] if len(relative.parts) > 1 else self.folder
            yield _SymbolFile(path.relative_to(top).as_posix(), top)
        elif suffix == ".csv":
            yield _SymbolFile(str(path))

    def _read(self, source: _SymbolFile) -> bytes:
        """The bytes of one file; a ZIP member is decompressed alone, under its archive's lock."""
        if source.archive is None:
            return Path(source.path).read_bytes()
        if source.archive in self._zips:
            with self._zip_locks[source.archive]:
                return self._zips[source.archive].read(source.path)
        return (source.archive / source.path).read_bytes()


def _walk(folder: Path) -> Iterator[Path]:
    """Every file under `folder` but hidden ones, in a stable order."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def _text(data: bytes) -> str:
    return data.decode("utf-8-sig", errors="replace")


@contextmanager
def _as_file_error(subject: str, where: str) -> Iterator[None]:
    """Report what parsing found wrong as the saved file's problem, naming the file."""
    try:
        yield
    except StooqFileError:
        raise
    except StooqError as error:
        raise StooqFileError(subject, where, error.problem) from None
    except (zipfile.BadZipFile, OSError) as error:
        raise StooqFileError(subject, where, f"the file cannot be read ({error})") from None
