"""When a close starts: a session's publication (its close plus a delay), the head start, and which
sessions are due. Why: docs/design.md#runs-start-ahead-of-the-publication.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, time, timedelta

import pandas as pd

from market_assets.domain.exchange_sessions import calendar


def published_at(code: str, session: pd.Timestamp, delay: timedelta) -> pd.Timestamp:
    """When Stooq has a session's data: its close (early or regular) plus `delay`."""
    return calendar(code).session_close(session) + delay


def lead(head_start: timedelta) -> timedelta:
    """How long before a publication its schedule ticks: the head start in whole minutes, rounded up."""
    return timedelta(minutes=math.ceil(head_start.total_seconds() / 60))


def tick_crons(code: str, delay: timedelta, head_start: timedelta, first: str) -> list[str]:
    """Daily crons, in the exchange's time zone, at each distinct close time since `first` plus
    `delay`, `lead(head_start)` ahead."""
    closes = calendar(code).closes.loc[first:].dt.tz_convert(calendar(code).tz)
    crons = set()
    for close in set(closes.dt.time):
        tick = datetime.combine(datetime(2000, 1, 1), close) + delay - lead(head_start)
        crons.add(f"{tick.minute} {tick.hour} * * *")
    return sorted(crons)


def regular_close(code: str, first: str) -> time:
    """The closing time of most sessions of `code` since `first`, in the exchange's time zone: its
    regular close, which half-days and other early closes do not change."""
    cal = calendar(code)
    return cal.closes.loc[first:].dt.tz_convert(cal.tz).dt.time.mode().iloc[0]


def due_sessions(
    code: str, now: pd.Timestamp, delay: timedelta, catch_up: int, loaded: Callable[[pd.Timestamp], bool]
) -> list[pd.Timestamp]:
    """Sessions whose close + `delay` is past at `now` and that are not `loaded`, among the last
    `catch_up` closed sessions, oldest first: a daemon that was down catches up when it is back."""
    closes = calendar(code).closes
    closed = closes[closes + delay <= now.tz_convert("UTC")].index[-catch_up:]
    return [session for session in closed if not loaded(session)]


def nothing_due_reason(code: str, now: pd.Timestamp, delay: timedelta) -> str:
    """Why no session of `code` is due at `now`: a weekend, a holiday, a close still to come, or
    every session already loaded."""
    cal = calendar(code)
    local = now.tz_convert(cal.tz)
    today = pd.Timestamp(local.date())
    if not cal.is_session(today):
        kind = "a weekend" if today.day_of_week >= 5 else "a holiday"
        return f"{today:%Y-%m-%d} is {kind} on {code}: no session to load"
    due_at = (cal.session_close(today) + delay).tz_convert(cal.tz)
    if local < due_at:
        return f"{code} session {today:%Y-%m-%d} is loaded after {due_at:%H:%M %Z} (close + delay)"
    return f"every {code} session up to {today:%Y-%m-%d} is already loaded or launched"


def seconds_to_wait(due: pd.Timestamp, now: pd.Timestamp, head_start: timedelta) -> float:
    """How long a step started at `now` waits for the publication `due`: until it, when it is at
    most twice the head start away, else not at all (it fetches at once)."""
    wait = (due - now).total_seconds()
    return wait if 0 < wait <= 2 * head_start.total_seconds() else 0.0
