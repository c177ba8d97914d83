"""Turn Stooq's answers (live, recorded or saved) into typed frames, or into the error that says
what Stooq really answered. Why apart from HTTP: docs/design.md#the-sources.
"""

from __future__ import annotations

import io
from urllib.parse import parse_qs, urlsplit

import lxml.html
import numpy as np
import pandas as pd

from market_assets.sources.errors import (
    StooqApiKeyRequired,
    StooqChallengeError,
    StooqError,
    StooqFormatError,
    StooqHitsLimitError,
    StooqNoDataError,
)

PRICE_COLUMNS = ["open", "high", "low", "close"]

# stooq.com answers in English, stooq.pl in Polish; both spellings mean the same columns.
_HEADER_NAMES = {
    "date": "date",
    "data": "date",
    "open": "open",
    "otwarcie": "open",
    "high": "high",
    "najwyzszy": "high",
    "low": "low",
    "najnizszy": "low",
    "close": "close",
    "zamkniecie": "close",
    "volume": "volume",
    "wolumen": "volume",
}
_EXPECTED_HEADER = "Date,Open,High,Low,Close[,Volume]"
_NUMBER_COLUMNS = [*PRICE_COLUMNS, "volume"]
BULK_HEADER = "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>"
"""The header of every file in Stooq's bulk (ASCII) archives."""
_BULK_COLUMNS = ["ticker", "period", "date", "time", *PRICE_COLUMNS, "volume", "open_interest"]
_HITS_LIMIT = "exceeded the daily hits limit"


def classify_non_data(text: str, subject: str, url: str) -> StooqError | None:
    """Recognise the answers Stooq sends with HTTP 200 instead of data.

    Returns the matching error, or None when the text may be data.
    """
    head = text[:4096].lstrip("\ufeff \t\r\n")
    lowered = head.lower()
    if not head:
        return StooqFormatError(subject, url, "Stooq answered with an empty body")
    if lowered.startswith(_HITS_LIMIT) or (_HITS_LIMIT in lowered and not lowered.startswith(("date,", "data,"))):
        return StooqHitsLimitError(subject, url, "Stooq answered 'Exceeded the daily hits limit' instead of data")
    if head.rstrip().lower() == "no data":
        return StooqNoDataError(subject, url, "Stooq answered 'No data'")
    if lowered.startswith("<") or "<html" in lowered:
        whole = text.lower()
        if "get_apikey" in whole or "api key" in whole or "apikey" in whole:
            return StooqApiKeyRequired(subject, url, "Stooq answered with a page asking for an API key instead of CSV")
        if "__verify" in whole or "proof-of-work" in whole or "checking your browser" in whole:
            return StooqChallengeError(subject, url, "Stooq answered with its browser check (a proof-of-work page)")
    return None


def parse_history_csv(text: str, subject: str, url: str) -> pd.DataFrame:
    """Parse a `/q/d/l/` CSV into `date, open, high, low, close, volume`, rows in the order given;
    raises a `StooqError` for anything that is not a complete CSV (refused, never repaired)."""
    problem = classify_non_data(text, subject, url)
    if problem is not None:
        raise problem
    body = text.lstrip("\ufeff")
    if body.lstrip().startswith("<"):
        raise StooqFormatError(subject, url, "Stooq answered with an HTML page instead of CSV")
    columns = _parse_header(body.split("\n", 1)[0], subject, url)
    if not body.endswith("\n"):
        last_line = body.rsplit("\n", 1)[-1]
        raise StooqFormatError(subject, url, f"the CSV is truncated: its last line {last_line!r} has no line end")
    frame = _read_rows(body, columns, subject, url)
    if frame.empty:
        raise StooqNoDataError(subject, url, "Stooq answered with a header and no rows")
    return _typed_bars(frame, subject, url, date_format="%Y-%m-%d", strict_dates=False)


def parse_bulk_file(text: str, subject: str, url: str) -> pd.DataFrame:
    """Parse one file of Stooq's bulk daily archives into the same frame as `parse_history_csv`.

    The bulk format is `<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>`
    with `DATE` as YYYYMMDD. Dates repeated or out of order are refused, not sorted.
    """
    body = text.lstrip("\ufeff")
    header = body.split("\n", 1)[0].strip()
    if header != BULK_HEADER:
        raise StooqFormatError(subject, url, f"unexpected header {header!r}; expected {BULK_HEADER}")
    frame = _read_rows(body, _BULK_COLUMNS, subject, url)
    if frame.empty:
        raise StooqNoDataError(subject, url, "the file has a header and no rows")
    period = frame["period"].astype(str).str.strip().str.upper()
    if (period != "D").any():
        position = int(np.flatnonzero((period != "D").to_numpy())[0])
        raise StooqFormatError(
            subject,
            url,
            f"line {position + 2} has the period {period.iloc[position]!r}, not D: not a file of the daily archives",
        )
    return _typed_bars(frame, subject, url, date_format="%Y%m%d", strict_dates=True)


def _read_rows(body: str, columns: list[str], subject: str, url: str) -> pd.DataFrame:
    try:
        try:
            return _read_csv(body, columns, numeric=True)
        except pd.errors.ParserError:
            raise
        except ValueError:
            # A cell that is not a number: read again as text to say which line holds it.
            return _read_csv(body, columns, numeric=False)
    except pd.errors.ParserError as error:
        detail = str(error).replace("Error tokenizing data. C error: ", "").strip()
        raise StooqFormatError(subject, url, f"the CSV is malformed: {detail}") from None


def _read_csv(body: str, columns: list[str], *, numeric: bool) -> pd.DataFrame:
    """Prices and volume as numbers when `numeric` (fast), every column as text otherwise."""
    numbers = set(_NUMBER_COLUMNS) if numeric else set()
    return pd.read_csv(
        io.StringIO(body),
        header=0,
        names=columns,
        dtype={column: "float64" if column in numbers else str for column in columns},
        skip_blank_lines=True,
        keep_default_na=False,
        na_values={"volume": [""]},
        engine="c",
    )


def _parse_header(line: str, subject: str, url: str) -> list[str]:
    names = [cell.strip().lower() for cell in line.strip().split(",")]
    columns = [_HEADER_NAMES.get(name) for name in names]
    required = ["date", *PRICE_COLUMNS]
    if None in columns or columns[:5] != required or len(columns) > 6 or len(set(columns)) != len(columns):
        raise StooqFormatError(
            subject,
            url,
            f"unexpected CSV header {line.strip()!r}; expected {_EXPECTED_HEADER}",
        )
    return [column for column in columns if column is not None]


def _typed_bars(frame: pd.DataFrame, subject: str, url: str, *, date_format: str, strict_dates: bool) -> pd.DataFrame:
    """Typed bars; a repeated or misordered date is an error when `strict_dates` (a saved bulk
    file), else kept as published for the checks (Stooq's answer of the day)."""
    dates = pd.to_datetime(frame["date"], format=date_format, errors="coerce")
    _reject_bad_cells(frame["date"], dates.isna(), "date", subject, url)
    out = {"date": dates.astype("datetime64[ns]")}
    for column in PRICE_COLUMNS:
        out[column] = _numbers(frame[column], column, subject, url, required=True)
    if "volume" in frame:
        out["volume"] = _numbers(frame["volume"], "volume", subject, url, required=False)
    else:
        out["volume"] = pd.Series(np.nan, index=frame.index)
    bars = pd.DataFrame(out)
    bars["volume"] = bars["volume"].astype("Float64")
    if strict_dates:
        _check_dates(bars["date"], subject, url)
    # Otherwise rows stay as published, repeated or misordered dates included: they are data to
    # be seen (the blocking check `dates_unique_and_increasing`), not a format error.
    return bars


def _check_dates(dates: pd.Series, subject: str, url: str) -> None:
    """Refuse a date given twice (which row is right?) or dates out of order."""
    duplicated = dates.duplicated(keep=False).to_numpy()
    if duplicated.any():
        first = dates.iloc[int(np.flatnonzero(duplicated)[0])]
        lines = np.flatnonzero((dates == first).to_numpy())[:2] + 2
        raise StooqFormatError(subject, url, f"the date {first.date()} is on more than one line ({lines[0]} and {lines[1]})")
    backwards = np.flatnonzero((dates.diff() < pd.Timedelta(0)).to_numpy())
    if len(backwards):
        position = int(backwards[0])
        raise StooqFormatError(
            subject,
            url,
            f"line {position + 2} has the date {dates.iloc[position].date()}, earlier than "
            f"{dates.iloc[position - 1].date()} on line {position + 1}: the dates are out of order",
        )


def _numbers(raw: pd.Series, column: str, subject: str, url: str, *, required: bool) -> pd.Series:
    if raw.dtype == "float64":
        values = raw
    else:
        text = raw.fillna("").str.strip()
        values = pd.to_numeric(text.where(text != ""), errors="coerce")
        _reject_bad_cells(text, values.isna() & (text != ""), column, subject, url)
    missing = values.isna()
    if required and missing.any():
        _reject_bad_cells(raw.astype(str), missing, column, subject, url)
    return values.astype("float64")


def _reject_bad_cells(raw: pd.Series, bad: pd.Series, column: str, subject: str, url: str) -> None:
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        cell = raw.iloc[position]
        what = f"no {column}" if cell in ("", "nan") else f"an unparsable {column} {cell!r}"
        # Line numbers count the header as line 1, as an editor shows the file.
        raise StooqFormatError(
            subject,
            url,
            f"line {position + 2} has {what}",
        )


def parse_composition_page(html: str, subject: str, url: str) -> tuple[pd.DataFrame, list[int]]:
    """Read the constituents table (`id="fth1"`) and the page numbers its pager links to.

    Columns are named after the page's headers in snake case (`Symbol` becomes `symbol`); the
    symbol is upper-cased and stripped, which is how Stooq spells download symbols.
    """
    problem = classify_non_data(html, subject, url)
    if problem is not None and not isinstance(problem, StooqApiKeyRequired):
        raise problem
    try:
        document = lxml.html.fromstring(html)
    except (lxml.etree.ParserError, ValueError) as error:
        raise StooqFormatError(subject, url, f"the composition page is not HTML: {error}") from None
    tables = document.xpath('//table[@id="fth1"]')
    if not tables:
        raise StooqFormatError(subject, url, 'the composition page has no table id="fth1"')
    table = tables[0]
    header_cells = table.xpath("./thead/tr[1]/*") or table.xpath(".//tr[1]/*")
    headers = [_snake(cell.text_content()) for cell in header_cells]
    if "symbol" not in headers:
        raise StooqFormatError(subject, url, f"the fth1 table has no Symbol column (columns: {headers})")
    rows = []
    for row in table.xpath("./tbody/tr | ./tr"):
        cells = [cell.text_content().strip() for cell in row.xpath("./td")]
        if len(cells) == len(headers):
            rows.append(cells)
    frame = pd.DataFrame(rows, columns=headers, dtype="string")
    frame["symbol"] = frame["symbol"].str.strip().str.upper()
    return frame, _pager_pages(document, url)


def combine_composition_pages(frames: list[pd.DataFrame], subject: str, url: str) -> pd.DataFrame:
    """The members listed over all pages of one composition, each symbol once."""
    members = pd.concat(frames, ignore_index=True)
    members = members[members["symbol"].str.len() > 0].drop_duplicates("symbol")
    if members.empty:
        raise StooqFormatError(subject, url, "the composition table lists no symbols")
    return members.reset_index(drop=True)


def _pager_pages(document: lxml.html.HtmlElement, url: str) -> list[int]:
    index_id = parse_qs(urlsplit(url).query).get("i", [""])[0]
    pages = set()
    for href in document.xpath("//a/@href"):
        parts = urlsplit(href)
        query = parse_qs(parts.query)
        # `/t/?i=..`, `t/?i=..` or `https://stooq.com/t/?i=..`: a saved page may have any of them.
        if parts.path.rstrip("/").split("/")[-1] == "t" and query.get("i", [""])[0] == index_id:
            page = query.get("l", [""])[0]
            if page.isdigit():
                pages.add(int(page))
    return sorted(pages)


def _snake(text: str) -> str:
    words = "".join(ch if ch.isalnum() else " " for ch in text.strip().lower()).split()
    return "_".join(words)
