"""The runs of a close as the platform finds them again: the tags it puts on them, the tags of
Dagster's it reads, and which runs are still in flight."""

from __future__ import annotations

import os
import socket
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
"""`<host>:<pid>` of the process that executes a run, to recognise its runs once that process has
died (`fail_abandoned_runs`)."""

# Tags Dagster documents and reads itself.
PARTITION_TAG = "dagster/partition"
"""The partition of a run over one partition (`dagster job execute` takes it from the tag)."""

PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
"""The first and last partition key of a run over a range of partitions (a close run)."""

WILL_RETRY_TAG = "dagster/will_retry"
"""`true` on a failed run that the instance's run retries will run again."""

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

FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
"""Run states once a run has ended."""


def process_tags() -> dict[str, str]:
    """The tags naming this process as the one executing a run (`PROCESS_TAG`)."""
    return {PROCESS_TAG: f"{socket.gethostname()}:{os.getpid()}"}


def claim_run_process(context: dg.AssetExecutionContext) -> None:
    """Name this process on the run it executes, so that `fail_abandoned_runs` can tell once it has
    died. A run executed in process by `python -m market_assets close` is tagged so at launch; a
    retried run starts with the tags of the run it retries, the dead process's among them."""
    tags = process_tags()
    if context.run.tags.get(PROCESS_TAG) != tags[PROCESS_TAG]:
        context.instance.add_run_tags(context.run.run_id, tags)


def fail_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the started runs of this machine whose process (`PROCESS_TAG`) has died, and
    free their slots; returns the ids of the runs it failed. Why Dagster's run monitoring does not:
    docs/design.md#surviving-productions-faults."""
    host = socket.gethostname()
    failed = []
    for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        owner = run.tags.get(PROCESS_TAG, "")
        owner_host, _, pid = owner.rpartition(":")
        if owner_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        instance.report_run_failed(run, f"the process that ran it ({owner}) is gone")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        failed.append(run.run_id)
    return failed


def _alive(pid: int) -> bool:
    """Whether a process `pid` exists (one of another user's counts: PermissionError)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def close_in_flight(instance: dg.DagsterInstance) -> bool:
    """Whether a close run is queued or running: work nothing waits for is left until it ends."""
    return any(SESSION_TAG in record.dagster_run.tags for record in instance.get_run_records(dg.RunsFilter(statuses=IN_FLIGHT)))


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
