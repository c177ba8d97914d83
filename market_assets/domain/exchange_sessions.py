"""Exchange sessions: which dates are trading days where, from `exchange_calendars`. Dates in this
platform are sessions, never plain weekdays (docs/design.md#daily-bars-are-a-snapshot-per-session).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from functools import cache

import exchange_calendars as xcals
import pandas as pd


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
        raise ValueError(f"{what}: {session.date()} is not a session of {code} (the exchange is closed that day)")
    return session


def closed_weekdays(first: str, codes: Iterable[str]) -> list[str]:
    """Weekdays from `first` on which every exchange of `codes` is closed."""
    codes = list(codes)
    weekdays = pd.bdate_range(first, min(calendar(code).last_session for code in codes))
    open_days = set()
    for code in codes:
        open_days.update(calendar(code).sessions_in_range(weekdays[0], weekdays[-1]))
    return [day.strftime("%Y-%m-%d") for day in weekdays if day not in open_days]


def next_session(code: str, session: pd.Timestamp) -> pd.Timestamp:
    return calendar(code).next_session(session)


def latest_closed_session(code: str, now: pd.Timestamp | None = None) -> pd.Timestamp:
    """The most recent session of `code` whose close has passed at `now` (default: now)."""
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    return calendar(code).minute_to_past_session(now.floor("min"))
