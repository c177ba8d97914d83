"""HTTP client for Stooq's composition pages and CSV downloads: one pooled `requests.Session` for
every thread of a run, transient failures retried per request.

Why: docs/design.md#the-sources.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import date
from typing import Literal, TypeVar
from urllib.parse import urlencode, urlsplit

import pandas as pd
import requests
from requests.adapters import HTTPAdapter

from market_assets.sources.errors import (
    StooqConnectionError,
    StooqError,
    StooqHttpError,
    StooqServerError,
    StooqTimeoutError,
)
from market_assets.sources.indices import get_index
from market_assets.sources.parsing import (
    combine_composition_pages,
    parse_composition_page,
    parse_history_csv,
)

Interval = Literal["d", "w", "m"]
INTERVALS: tuple[Interval, ...] = ("d", "w", "m")
DEFAULT_BASE_URL = "https://stooq.com"
USER_AGENT = "market_assets/0.1 (market-data platform; python-requests)"
_MASK = "***"
T = TypeVar("T")


def checked_base_url(url: str) -> str:
    """`url` without its trailing slash; raises `ValueError` when requests could not use it (not
    an http(s) URL)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"Stooq base URL {url!r} is not an http(s) URL such as {DEFAULT_BASE_URL}: "
            "check STOOQ_BASE_URL or the `base_url` of the stooq resource"
        )
    return url.rstrip("/")


def check_reachable(url: str, timeout: float = 5.0) -> None:
    """Open (and close) a TCP connection to `url`'s host, or raise `ValueError` naming the URL. No
    HTTP request is made, so Stooq counts no hit."""
    parts = urlsplit(checked_base_url(url))
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as error:
        raise ValueError(
            f"Stooq base URL {url} cannot be reached ({error.strerror or error}): check "
            "STOOQ_BASE_URL or the `base_url` of the stooq resource, and that the server is up"
        ) from None


class StooqClient:
    """Reads Stooq, raising a typed `StooqError` for every answer that is not the data asked for.
    Transient failures (5xx, timeouts, resets) are retried `retries` times per request, with
    exponential backoff and jitter."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.5,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        pool_size: int = 32,
    ) -> None:
        self.base_url = checked_base_url(base_url)
        self._api_key = api_key or None
        self._timeout = (connect_timeout, read_timeout)
        self._retries = retries
        self._backoff = backoff
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({"User-Agent": USER_AGENT, **(headers or {})})
        self._session.cookies.update(dict(cookies or {}))
        self._random = random.Random()
        self._random_lock = threading.Lock()

    def __enter__(self) -> StooqClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def composition(self, index: str) -> pd.DataFrame:
        """The constituents of `index` (DJI, NDX or HSI) as Stooq lists them today.

        Columns: `symbol` (as Stooq spells it for downloads, unique), `name`, then whatever other
        columns the page shows, all as strings. Every page of a paginated list is read.
        """
        stock_index = get_index(index)
        subject = f"index {stock_index.name}"
        first_url = self._url("/t/", {"i": stock_index.stooq_id})
        frame, pages = self._with_retries(
            lambda: parse_composition_page(self._get(first_url, subject), subject, self._shown(first_url))
        )
        frames = [frame]
        for page in pages:
            if page == 1:
                continue
            url = self._url("/t/", {"i": stock_index.stooq_id, "l": page})
            page_frame, _ = self._with_retries(
                lambda url=url: parse_composition_page(self._get(url, subject), subject, self._shown(url))
            )
            frames.append(page_frame)
        return combine_composition_pages(frames, subject, self._shown(first_url))

    def history(
        self,
        symbol: str,
        interval: Interval = "d",
        start: date | str | None = None,
        end: date | str | None = None,
    ) -> pd.DataFrame:
        """Bars of `symbol` (`date, open, high, low, close, volume`, `volume` nullable: index series
        have none) in the order Stooq publishes them, oldest first; `start`/`end` (inclusive)
        become Stooq's `d1`/`d2`."""
        if interval not in INTERVALS:
            raise ValueError(f"interval must be one of {INTERVALS}, not {interval!r}")
        params: dict[str, str] = {"s": symbol.strip().lower(), "i": interval}
        if start is not None:
            params["d1"] = pd.Timestamp(start).strftime("%Y%m%d")
        if end is not None:
            params["d2"] = pd.Timestamp(end).strftime("%Y%m%d")
        if self._api_key:
            params["apikey"] = self._api_key
        url = self._url("/q/d/l/", params)
        return self._with_retries(lambda: parse_history_csv(self._get(url, symbol), symbol, self._shown(url)))

    def _url(self, path: str, params: Mapping[str, object]) -> str:
        return f"{self.base_url}{path}?{urlencode(params, safe='^')}"

    def _shown(self, url: str) -> str:
        """The URL as users may see it: the API key is a secret."""
        if self._api_key:
            return url.replace(f"apikey={self._api_key}", f"apikey={_MASK}")
        return url

    def _get(self, url: str, subject: str) -> str:
        shown = self._shown(url)
        try:
            response = self._session.get(url, timeout=self._timeout)
        except requests.Timeout as error:
            kind = "connecting" if isinstance(error, requests.ConnectTimeout) else "reading"
            connect, read = self._timeout
            limit = connect if kind == "connecting" else read
            raise StooqTimeoutError(subject, shown, f"timed out {kind} after {limit:g} s") from None
        except requests.ConnectionError as error:
            raise StooqConnectionError(subject, shown, f"the connection failed ({_root_cause(error)})") from None
        if response.status_code >= 500:
            raise StooqServerError(subject, shown, f"Stooq answered HTTP {response.status_code} {response.reason}")
        if response.status_code >= 400:
            raise StooqHttpError(subject, shown, f"Stooq answered HTTP {response.status_code} {response.reason}")
        response.encoding = response.encoding or "utf-8"
        return response.text

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        retried = 0
        while True:
            try:
                return attempt()
            except StooqError as error:
                if not error.retryable or retried >= self._retries:
                    raise
            with self._random_lock:
                jitter = self._random.uniform(0.5, 1.5)
            time.sleep(self._backoff * (2**retried) * jitter)
            retried += 1


def _root_cause(error: BaseException) -> str:
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    text = str(error) or type(error).__name__
    return text.split(": ", 1)[-1] if "Errno" in text else text
