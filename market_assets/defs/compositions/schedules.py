"""Schedules, one per exchange in its own time zone: after every session's close, a head start
before its publication, the `index_compositions` runs of the exchange's indices for each due
session. Why: docs/design.md#runs-start-ahead-of-the-publication.
"""

import dagster as dg
import pandas as pd

from market_assets import settings
from market_assets.defs.compositions.assets import index_composition
from market_assets.defs.compositions.jobs import compositions_job
from market_assets.defs.partitions import FIRST_SESSION, composition_key
from market_assets.defs.resources import ClosePlanningResource
from market_assets.defs.runs import INDEX_TAG
from market_assets.domain.close_timing import due_sessions, lead, nothing_due_reason, tick_crons
from market_assets.domain.exchange_sessions import calendar
from market_assets.sources.indices import followed_exchanges, indices_on, publication_delay


def due_closes(code: str, now: pd.Timestamp, catch_up: int, stored: set[str]) -> list[pd.Timestamp]:
    """Sessions of exchange `code` due at `now` whose compositions are not all `stored` (the keys
    of the stored `index_composition` partitions), oldest first: the schedule's and, at the close,
    the `close_bars` sensor's."""
    indices = indices_on(code)

    def loaded(session: pd.Timestamp) -> bool:
        return all(str(composition_key(f"{session:%Y-%m-%d}", index)) in stored for index in indices)

    return due_sessions(code, now, publication_delay(code), catch_up, loaded)


def build_close_schedule(code: str) -> dg.ScheduleDefinition:
    """The schedule of exchange `code`, its crons from the calendar, the delay and the head start."""
    delay = publication_delay(code)
    indices = indices_on(code)

    @dg.schedule(
        name=f"{code.lower()}_close",
        cron_schedule=tick_crons(code, delay, settings.head_start(), FIRST_SESSION),
        execution_timezone=str(calendar(code).tz),
        job=compositions_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"After each {code} close (+{delay}): compositions of {', '.join(indices)}.",
    )
    def close_schedule(
        context: dg.ScheduleEvaluationContext, planning: ClosePlanningResource
    ) -> list[dg.RunRequest] | dg.SkipReason:
        now = pd.Timestamp(context.scheduled_execution_time) + lead(settings.head_start())
        stored = context.instance.get_materialized_partitions(index_composition.key)

        def key(session: pd.Timestamp, index: str) -> str:
            return str(composition_key(f"{session:%Y-%m-%d}", index))

        due = due_closes(code, now, planning.catch_up_sessions, stored)
        if not due:
            return dg.SkipReason(nothing_due_reason(code, now, delay))
        return [
            dg.RunRequest(run_key=key(session, index), partition_key=key(session, index), tags={INDEX_TAG: index})
            for session in due
            for index in indices
            if key(session, index) not in stored
        ]

    return close_schedule


close_schedules = [build_close_schedule(code) for code in followed_exchanges()]
