"""Schedules: after every session's close, in each exchange's own time zone.

One schedule per exchange (New York for DJI and NDX, Hong Kong for HSI). Its ticks are derived
from `exchange_calendars`: one cron per distinct closing time (regular and early close), shifted by
the publication delay, every day. A tick decides from the calendar alone, so a half-day is loaded
after its early close, and a holiday or weekend tick launches nothing and says why.

A tick launches the `index_compositions` run of every index on the exchange for each due session;
the `close_bars` sensor then launches the bars runs once the composition is stored (a run can only
target partitions that exist, and new constituents become partitions in the composition run).
Sessions are due when their close plus the delay has passed and their compositions are not stored
yet, looking back at most `catch_up` sessions, oldest first: a daemon that was down catches up when
it comes back. Run keys (`<index>|<session>`) make sure no session is launched twice.
"""

import math
import os
from datetime import datetime, timedelta

import dagster as dg
import pandas as pd

from market_assets.assets.bars import INDEX_TAG
from market_assets.assets.composition import index_composition
from market_assets.jobs import compositions_job
from market_assets.partitions import composition_key
from market_assets.sessions import CALENDARS, FIRST_SESSION, calendar, close_delay, head_start
from market_assets.stooq.indices import INDICES

CATCH_UP_ENV = "MARKET_ASSETS_CATCH_UP_SESSIONS"


def catch_up_sessions() -> int:
    """How many past sessions a tick looks back at for missed closes (default 5)."""
    return int(os.environ.get(CATCH_UP_ENV, "5"))


def indices_on(code: str) -> list[str]:
    return [name for name, index in INDICES.items() if index.calendar == code]


def lead() -> timedelta:
    """How long before a session's publication its schedule ticks: `head_start()` in whole
    minutes (a cron's resolution), rounded up."""
    return timedelta(minutes=math.ceil(head_start().total_seconds() / 60))


def tick_crons(code: str, delay: timedelta) -> list[str]:
    """Daily crons, in the exchange's time zone, at each distinct close time plus `delay`, `lead()`
    ahead: the composition runs wait for the publication in their step, started."""
    closes = calendar(code).closes.loc[FIRST_SESSION:].dt.tz_convert(calendar(code).tz)
    crons = set()
    for close in set(closes.dt.time):
        tick = datetime.combine(datetime(2000, 1, 1), close) + delay - lead()
        crons.add(f"{tick.minute} {tick.hour} * * *")
    return sorted(crons)


def due_sessions(
    code: str, now: pd.Timestamp, delay: timedelta, catch_up: int, loaded: set[str]
) -> list[pd.Timestamp]:
    """Sessions whose close + `delay` is past at `now` and whose compositions are not all
    `loaded`, among the last `catch_up` closed sessions, oldest first."""
    closes = calendar(code).closes
    closed = closes[closes + delay <= now.tz_convert("UTC")].index[-catch_up:]
    return [
        session
        for session in closed
        if not all(str(composition_key(f"{session:%Y-%m-%d}", i)) in loaded for i in indices_on(code))
    ]


def skip_reason(code: str, now: pd.Timestamp, delay: timedelta) -> str:
    cal = calendar(code)
    local = now.tz_convert(cal.tz)
    today = pd.Timestamp(local.date())
    if not cal.is_session(today):
        kind = "a weekend" if today.dayofweek >= 5 else "a holiday"
        return f"{today:%Y-%m-%d} is {kind} on {code}: no session to load"
    due_at = (cal.session_close(today) + delay).tz_convert(cal.tz)
    if local < due_at:
        return f"{code} session {today:%Y-%m-%d} is loaded after {due_at:%H:%M %Z} (close + delay)"
    return f"every {code} session up to {today:%Y-%m-%d} is already loaded or launched"


def build_close_schedule(code: str) -> dg.ScheduleDefinition:
    delay = close_delay(code)
    indices = indices_on(code)

    @dg.schedule(
        name=f"{code.lower()}_close",
        cron_schedule=tick_crons(code, delay),
        execution_timezone=str(calendar(code).tz),
        job=compositions_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"After each {code} close (+{delay}): compositions of {', '.join(indices)}.",
    )
    def close_schedule(context: dg.ScheduleEvaluationContext):
        now = pd.Timestamp(context.scheduled_execution_time) + lead()
        loaded = context.instance.get_materialized_partitions(index_composition.key)
        due = due_sessions(code, now, delay, catch_up_sessions(), loaded)
        if not due:
            return dg.SkipReason(skip_reason(code, now, delay))
        return [
            dg.RunRequest(
                run_key=key,
                partition_key=key,
                tags={INDEX_TAG: index},
            )
            for session in due
            for index in indices
            if (key := str(composition_key(f"{session:%Y-%m-%d}", index))) not in loaded
        ]

    return close_schedule


close_schedules = [build_close_schedule(code) for code in CALENDARS]
