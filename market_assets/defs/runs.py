"""The runs of a close as the platform finds them again: the tags it puts on them, the tags of
Dagster's it reads, and which runs are still in flight."""

from __future__ import annotations

import os
from typing import Protocol

import dagster as dg

INDEX_TAG = "market_assets/index"
"""The index a composition or close run loads; a close run's composition must list every symbol in it."""

SESSION_TAG = "market_assets/session"
"""The session a close run loads, to find the runs of a session in flight."""

COMPOSITION_TAG = "market_assets/composition"
"""The composition (`<date>|<index>`) a close run's symbols were planned by. A run planned by the
previous session's list may start after the session's own is stored: it is held to the list it was
planned by, not to a newer one that may have dropped a symbol."""

PROCESS_TAG = "market_assets/process"
"""`<host>:<pid>` of the process that executes a run in process (`python -m market_assets close`),
to recognise its runs once that process has died."""

# Tags Dagster documents and reads itself.
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
"""The first and last partition key of a run over a range of partitions (a close run)."""

RUN_KEY_TAG = "dagster/run_key"
"""The run key of a sensor's or schedule's run request: Dagster launches a key once."""

PRIORITY_TAG = "dagster/priority"
"""Higher runs leave the run queue first."""

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.SUSPENDED,
    dg.DagsterRunStatus.CANCELING,
]
"""Run states before a run has ended."""


def close_in_flight(instance: dg.DagsterInstance) -> bool:
    """Whether a close run is queued or running: work nothing waits for is left until it ends."""
    return any(
        SESSION_TAG in record.dagster_run.tags
        for record in instance.get_run_records(dg.RunsFilter(statuses=IN_FLIGHT))
    )


def close_in_flight_at_dagster_home() -> bool:
    """Whether a close run is queued or running on the instance at `$DAGSTER_HOME` (False when the
    variable is not set): what the lake's maintenance commands wait for."""
    if not os.environ.get("DAGSTER_HOME"):
        return False
    with dg.DagsterInstance.get() as instance:
        return close_in_flight(instance)


def launched(instance: dg.DagsterInstance, run_key: str) -> bool:
    """Whether a run with `run_key` exists."""
    return bool(instance.get_run_records(dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1))


class ErrorInfo(Protocol):
    """What a step failure's error says (Dagster's serializable error information)."""

    message: str
    cls_name: str | None
    cause: ErrorInfo | None


def step_error_message(error: ErrorInfo) -> str:
    """The message that says what went wrong in a failed step: after the step's retries ran out,
    Dagster's error is `Exceeded max_retries of N` and the cause is the last attempt's own error."""
    message = error.message.strip()
    if error.cls_name == "RetryRequestedFromPolicy" and error.cause is not None:
        cause = error.cause
        while cause.cls_name == "Failure" and cause.cause is not None:
            cause = cause.cause
        message = f"{message}; the last attempt: {cause.message.strip()}"
    return message
