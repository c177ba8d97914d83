"""Turn Stooq's answers into typed frames, or into the error that says what Stooq really answered.

Parsing is separate from HTTP so that recorded answers, saved files and live responses go through
exactly the same checks.
"""

from __future__ import annotations

import io
from urllib.parse import parse_qs, urlsplit

import lxml.html
import numpy as np
import pandas as pd

from market_assets.stooq.errors import (
    StooqApiKeyRequired,
    StooqChallengeError,
    StooqError,
    StooqFormatError,
    StooqHitsLimitError,
    StooqNoDataError,
)

PRICE_COLUMNS = ["open", "high", "low", "close"]
BAR_COLUMNS = ["date", *PRICE_COLUMNS, "volume"]

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
_HITS_LIMIT = "exceeded the daily hits limit"


def empty_bars() -> pd.DataFrame:
    """A bar frame with no rows and the same dtypes as a parsed one."""
    return pd.DataFrame(
        {
            "date": pd.Series([], dtype="datetime64[ns]"),
            **{column: pd.Series([], dtype="float64") for column in PRICE_COLUMNS},
            "volume": pd.Series([], dtype="Float64"),
        }
    )


def classify_non_data(text: str, subject: str, url: str) -> StooqError | None:
    """Recognise the answers Stooq sends with HTTP 200 instead of data.

    Returns the matching error, or None when the text may be data.
    """
    head = text[:4096].lstrip("\ufeff \t\r\n")
    lowered = head.lower()
    if not head:
        return StooqFormatError(subject, url, "Stooq answered with an empty body")
    if lowered.startswith(_HITS_LIMIT) or (
        _HITS_LIMIT in lowered and not lowered.startswith(("date,", "data,"))
    ):
        return StooqHitsLimitError(
            subject, url, "Stooq answered 'Exceeded the daily hits limit' instead of data"
        )
    if head.rstrip().lower() == "no data":
        return StooqNoDataError(subject, url, "Stooq answered 'No data'")
    if lowered.startswith("<") or "<html" in lowered:
        whole = text.lower()
        if "get_apikey" in whole or "api key" in whole or "apikey" in whole:
            return StooqApiKeyRequired(
                subject, url, "Stooq answered with a page asking for an API key instead of CSV"
            )
        if "__verify" in whole or "proof-of-work" in whole or "checking your browser" in whole:
            return StooqChallengeError(
                subject, url, "Stooq answered with its browser check (a proof-of-work page)"
            )
    return None


def parse_history_csv(text: str, subject: str, url: str) -> pd.DataFrame:
    """Parse a `/q/d/l/` CSV into `date, open, high, low, close, volume`, rows in the order given.

    Refuses, rather than repairs, anything that is not a complete CSV: a truncated download would
    otherwise become a plausible-looking history missing its last session.
    """
    problem = classify_non_data(text, subject, url)
    if problem is not None:
        raise problem
    body = text.lstrip("\ufeff")
    if body.lstrip().startswith("<"):
        raise StooqFormatError(subject, url, "Stooq answered with an HTML page instead of CSV")
    columns = _parse_header(body.split("\n", 1)[0], subject, url)
    if not body.endswith("\n"):
        last_line = body.rsplit("\n", 1)[-1]
        raise StooqFormatError(
            subject, url, f"the CSV is truncated: its last line {last_line!r} has no line end"
        )
    try:
        try:
            frame = _read_csv(body, columns, dtype={column: "float64" for column in columns[1:]})
        except pd.errors.ParserError:
            raise
        except ValueError:
            # A cell that is not a number: read again as text to say which line holds it.
            frame = _read_csv(body, columns, dtype=str)
    except pd.errors.ParserError as error:
        detail = str(error).replace("Error tokenizing data. C error: ", "").strip()
        raise StooqFormatError(subject, url, f"the CSV is malformed: {detail}") from None
    if frame.empty:
        raise StooqNoDataError(subject, url, "Stooq answered with a header and no rows")
    return _typed_bars(frame, subject, url)


def _read_csv(body: str, columns: list[str], dtype: object) -> pd.DataFrame:
    return pd.read_csv(
        io.StringIO(body),
        header=0,
        names=columns,
        dtype={"date": str} if dtype is str else {"date": str, **dtype},  # type: ignore[dict-item]
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


def _typed_bars(frame: pd.DataFrame, subject: str, url: str) -> pd.DataFrame:
    dates = pd.to_datetime(frame["date"], format="%Y-%m-%d", errors="coerce")
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
    # Rows stay as published, repeated or misordered dates included: they are data to be seen
    # (the blocking check `dates_unique_and_increasing`), not a format error.
    return bars


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


def _reject_bad_cells(
    raw: pd.Series, bad: pd.Series, column: str, subject: str, url: str
) -> None:
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
        raise StooqFormatError(
            subject, url, f"the fth1 table has no Symbol column (columns: {headers})"
        )
    rows = []
    for row in table.xpath("./tbody/tr | ./tr"):
        cells = [cell.text_content().strip() for cell in row.xpath("./td")]
        if len(cells) == len(headers):
            rows.append(cells)
    frame = pd.DataFrame(rows, columns=headers, dtype="string")
    frame["symbol"] = frame["symbol"].str.strip().str.upper()
    return frame, _pager_pages(document, url)


def _pager_pages(document: lxml.html.HtmlElement, url: str) -> list[int]:
    index_id = parse_qs(urlsplit(url).query).get("i", [""])[0]
    pages = set()
    for href in document.xpath("//a/@href"):
        parts = urlsplit(href)
        query = parse_qs(parts.query)
        if parts.path.rstrip("/").endswith("/t") and query.get("i", [""])[0] == index_id:
            page = query.get("l", [""])[0]
            if page.isdigit():
                pages.add(int(page))
    return sorted(pages)


def _snake(text: str) -> str:
    words = "".join(ch if ch.isalnum() else " " for ch in text.strip().lower()).split()
    return "_".join(words)
