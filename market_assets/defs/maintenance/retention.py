"""`prune_instance`: once a day, the finished runs whose sessions have all left the retention window
are written to the lake's run history, then removed with everything stored for them.
Why: docs/design.md#the-instance-keeps-its-size."""

import re

import dagster as dg
import pandas as pd
from pydantic import Field

from market_assets import settings
from market_assets.defs.bars.planning import run_symbols
from market_assets.defs.partitions import FIRST_SESSION, window_start
from market_assets.defs.runs import (
    FINISHED,
    INDEX_TAG,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    PARTITION_TAG,
    SESSION_TAG,
    close_in_flight,
    step_error_message,
)
from market_assets.instance.retention import delete_run, reclaim_space
from market_assets.lake.resource import DataLakeResource
from market_assets.lake.run_history import RunHistoryRow, write_run_history

RETENTION_TIME = "45 3 * * *"
"""03:45 UTC, after the lake's compaction and before Hong Kong's close is loaded (08:00 UTC)."""

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class RetentionResource(dg.ConfigurableResource):
    """How long the instance keeps runs and their events."""

    days: int = Field(default=settings.RETENTION_DAYS.default, ge=0, description=settings.RETENTION_DAYS.meaning)

    def first_kept_session(self) -> str:
        """The first session whose runs are kept: never one inside this code location's partition window."""
        return min(window_start(days=max(self.days, settings.PARTITION_DAYS.value())), FIRST_SESSION)


def run_session(run: dg.DagsterRun) -> str | None:
    """The last session a run loaded (its partitions' latest date), or None for a run of no session."""
    keys = [
        run.tags[tag]
        for tag in (SESSION_TAG, PARTITION_TAG, PARTITION_RANGE_START_TAG, PARTITION_RANGE_END_TAG)
        if tag in run.tags
    ]
    dates = [match.group() for key in keys if (match := _DATE.match(key))]
    return max(dates) if dates else None


def expired_runs(instance: dg.DagsterInstance, first_kept: str) -> list[dg.RunRecord]:
    """The finished runs whose sessions all lie before `first_kept`, and those of no session that
    ended before it, oldest first. Queued and running runs are never among them."""
    before = pd.Timestamp(first_kept, tz="UTC").timestamp()
    expired = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=FINISHED), ascending=True):
        session = run_session(record.dagster_run)
        ended = record.end_time or record.create_timestamp.timestamp()
        if (session < first_kept) if session is not None else (ended < before):
            expired.append(record)
    return expired


def history_row(instance: dg.DagsterInstance, record: dg.RunRecord, orders: dict[str, list[str]]) -> RunHistoryRow:
    """What the run was, for the lake's run history."""
    run = record.dagster_run
    started = pd.Timestamp(record.start_time, unit="s", tz="UTC") if record.start_time else None
    ended = pd.Timestamp(record.end_time, unit="s", tz="UTC") if record.end_time else None
    day = started or pd.Timestamp(record.create_timestamp)
    return RunHistoryRow(
        run_id=run.run_id,
        job=run.job_name,
        index=run.tags.get(INDEX_TAG),
        session=run_session(run) or f"{day:%Y-%m-%d}",
        symbols=run_symbols(instance, run, orders) if SESSION_TAG in run.tags else [],
        status=run.status.value,
        started=started,
        ended=ended,
        failures=_failures(instance, run) if run.status == dg.DagsterRunStatus.FAILURE else "",
    )


def _failures(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """What went wrong: the errors of the run's failed steps (`step_error_message`), else the
    message of the run's failure."""
    steps = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    errors = [entry.dagster_event.step_failure_data.error for entry in steps if entry.dagster_event]
    messages = [step_error_message(error) for error in errors if error is not None]
    if messages:
        return "\n".join(messages)
    return "\n".join(entry.message for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE))


@dg.op(description="Write the history of the runs past the retention window to the lake, then remove them from the instance.")
def prune_runs(context: dg.OpExecutionContext, lake: DataLakeResource, retention: RetentionResource) -> dg.Output[None]:
    first_kept = retention.first_kept_session()
    expired = expired_runs(context.instance, first_kept)
    orders: dict[str, list[str]] = {}
    written = write_run_history(lake.store, [history_row(context.instance, record, orders) for record in expired])
    for record in expired:
        delete_run(context.instance, record.dagster_run.run_id)
    if expired and close_in_flight(context.instance):
        # Rewriting the databases holds their writers back longer than sqlite lets them wait.
        context.log.info("a close run is queued or running: the space is given back by the next prune")
    elif expired:
        reclaim_space(context.instance)
    context.log.info(f"{len(expired)} runs before {first_kept} removed, their history in {len(written)} files")
    return dg.Output(
        None,
        metadata={
            "first_kept_session": first_kept,
            "runs_removed": dg.MetadataValue.int(len(expired)),
            "history_files": dg.MetadataValue.int(len(written)),
        },
    )


@dg.job(
    description="Remove the runs whose sessions have all left the retention window, with their events, after writing their history to the lake."
)
def prune_instance() -> None:
    prune_runs()


retention_schedule = dg.ScheduleDefinition(
    name="prune_instance_daily",
    job=prune_instance,
    cron_schedule=RETENTION_TIME,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
