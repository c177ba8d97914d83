"""Exchange sessions: which dates are trading days where, from `exchange_calendars`.

Dates in this platform are sessions, never plain weekdays: a holiday in New York can be a trading day
in Hong Kong and the reverse, and a half-day still closes a session.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from functools import cache

import exchange_calendars as xcals
import pandas as pd

from market_assets.stooq.indices import INDICES

PARTITION_DAYS_ENV = "MARKET_ASSETS_PARTITION_DAYS"
DELAY_ENV = "MARKET_ASSETS_CLOSE_DELAY_MINUTES"
HEAD_START_ENV = "MARKET_ASSETS_HEAD_START_SECONDS"


def first_session(today: pd.Timestamp | None = None) -> str:
    """Start of the date partitions: a rolling window of `MARKET_ASSETS_PARTITION_DAYS` (365).

    Every snapshot holds the symbol's whole history, so a snapshot older than the window adds no
    data a newer one lacks; leaving old sessions out of the grid keeps the UI's partition views
    quick (a year is about 53,000 keys for 210 symbols; see bench/partition_scale.py). Their files
    and events stay where they are. The start is the first day of a month, so the definition (and
    the partition-status cache Dagster keeps for it) changes once a month, not at every reload.
    """
    days = int(os.environ.get(PARTITION_DAYS_ENV, "365"))
    if days < 7:
        raise ValueError(f"{PARTITION_DAYS_ENV} must be at least 7 days, not {days}")
    today = today if today is not None else pd.Timestamp.now(tz="UTC").tz_localize(None)
    return f"{(today.normalize() - pd.Timedelta(days=days)).replace(day=1):%Y-%m-%d}"


FIRST_SESSION = first_session()
"""First date partition (see `first_session`)."""

CALENDARS: tuple[str, ...] = tuple(sorted({index.calendar for index in INDICES.values()}))
_SUFFIX_CALENDARS = {index.symbol_suffix: index.calendar for index in INDICES.values()}


@cache
def calendar(code: str) -> xcals.ExchangeCalendar:
    """An exchange calendar covering the platform's partitions (cached: building one costs ~0.1 s)."""
    return xcals.get_calendar(code, start="2000-01-03")


def to_session(value: str | date | pd.Timestamp) -> pd.Timestamp:
    """Parse a session date, naming the value when it is not a date."""
    try:
        return pd.Timestamp(value).normalize().tz_localize(None)
    except (ValueError, TypeError):
        raise ValueError(f"{value!r} is not a date; write sessions as YYYY-MM-DD") from None


def is_session(code: str, day: str | date | pd.Timestamp) -> bool:
    return calendar(code).is_session(to_session(day))


def require_session(code: str, day: str | date | pd.Timestamp, what: str) -> pd.Timestamp:
    """The session `day`, or a clear error saying the exchange was closed."""
    session = to_session(day)
    if not calendar(code).is_session(session):
        raise ValueError(
            f"{what}: {session.date()} is not a session of {code} (the exchange is closed that day)"
        )
    return session


def calendar_for_symbol(symbol: str) -> str:
    """The exchange a Stooq download symbol trades on, from its suffix (`.US`, `.HK`)."""
    for suffix, code in _SUFFIX_CALENDARS.items():
        if symbol.upper().endswith(suffix):
            return code
    known = ", ".join(_SUFFIX_CALENDARS)
    raise ValueError(f"{symbol}: no exchange calendar for this symbol (known suffixes: {known})")


def closed_weekdays(first: str = FIRST_SESSION) -> list[str]:
    """Weekdays on which every followed exchange is closed: they get no date partition."""
    weekdays = pd.bdate_range(first, min(calendar(code).last_session for code in CALENDARS))
    open_days = set()
    for code in CALENDARS:
        open_days.update(calendar(code).sessions_in_range(weekdays[0], weekdays[-1]))
    return [day.strftime("%Y-%m-%d") for day in weekdays if day not in open_days]


def close_delay(code: str) -> timedelta:
    """Time Stooq needs to publish a session's data after `code`'s close (default 30 minutes).

    `MARKET_ASSETS_CLOSE_DELAY_MINUTES` is either one number for every exchange or per exchange,
    `XNYS=30,XHKG=45` (an exchange left out keeps the default).
    """
    text = os.environ.get(DELAY_ENV, "30").strip()
    if "=" not in text:
        return timedelta(minutes=float(text))
    delays = dict(item.split("=", 1) for item in text.replace(" ", "").split(",") if item)
    return timedelta(minutes=float(delays.get(code, "30")))


def published_at(code: str, session: pd.Timestamp) -> pd.Timestamp:
    """When Stooq has a session's data: its close (early or regular) plus `close_delay`."""
    return calendar(code).session_close(session) + close_delay(code)


def head_start() -> timedelta:
    """How long before a session's publication its runs are launched (default 60 s).

    Starting a run takes seconds: it is created with an event per planned partition, queued, and
    its process loads Dagster and the code. A run launched ahead has done all that by the
    publication time, and waits in its step for it (`market_assets.assets.publication`), so its
    first request leaves when the data is there. `MARKET_ASSETS_HEAD_START_SECONDS=0` launches at the
    publication time.
    """
    seconds = float(os.environ.get(HEAD_START_ENV, "60"))
    if seconds < 0:
        raise ValueError(f"{HEAD_START_ENV} must be 0 or more seconds, not {seconds:g}")
    return timedelta(seconds=seconds)


def next_session(code: str, session: pd.Timestamp) -> pd.Timestamp:
    return calendar(code).next_session(session)


def latest_closed_session(code: str, now: pd.Timestamp | None = None) -> pd.Timestamp:
    """The most recent session of `code` whose close has passed at `now` (default: now)."""
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    return calendar(code).minute_to_past_session(now.floor("min"))
