"""Closing an index for a session from Python or the command line, on the current Dagster instance.

The same two steps the schedules take: materialize the index's composition (which registers new
symbols), then launch the planned bars runs. Runs execute in this process, are recorded in the
instance like any other, and show in the UI.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

import dagster as dg
from dagster._utils.error import SerializableErrorInfo

from market_assets.assets.composition import index_composition
from market_assets.close import CloseRun, plan_close_runs
from market_assets.definitions import defs
from market_assets.jobs import compositions_job
from market_assets.partitions import composition_key
from market_assets.sessions import latest_closed_session, require_session
from market_assets.storage import ParquetStore, default_data_root
from market_assets.stooq import get_index


# Runs in this process log to the instance (and the UI) in full; the terminal gets warnings only.
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

PROCESS_TAG = "market_assets/process"
"""Run tag `<host>:<pid>` of the process that executes a run in process, to recognise its runs
once that process has died."""


class CloseFailed(RuntimeError):
    """A run of the close failed; the message carries the failing step's error."""


@dataclass
class CloseOutcome:
    index: str
    session: str
    members: list[str]
    runs: list[CloseRun] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)


def close_index(
    instance: dg.DagsterInstance,
    index: str,
    session: str | None = None,
    *,
    force: bool = False,
) -> CloseOutcome:
    """Load `index` for `session` (default: its exchange's latest closed session).

    What is already stored is not fetched again, the composition included, unless `force`: a
    re-run of a session that succeeded launches nothing and asks Stooq for nothing.
    """
    stock_index = get_index(index)
    day = (
        require_session(stock_index.calendar, session, f"index {stock_index.name}")
        if session
        else latest_closed_session(stock_index.calendar)
    )
    session_key = f"{day:%Y-%m-%d}"
    key = str(composition_key(session_key, stock_index.name))
    store = ParquetStore(default_data_root())
    # Settings that would fail every request or write are refused before any work starts.
    defs.resources["stooq"].check_ready()
    store.check_writable()
    fail_abandoned_runs(instance)
    outcome = CloseOutcome(stock_index.name, session_key, members=[])
    tags = {PROCESS_TAG: f"{socket.gethostname()}:{os.getpid()}"}
    if force or key not in instance.get_materialized_partitions(index_composition.key):
        result = defs.resolve_job_def(compositions_job.name).execute_in_process(
            instance=instance, partition_key=key, run_config=_QUIET, raise_on_error=False, tags=tags
        )
        outcome.run_ids.append(result.run_id)
        failure = _failure(result, f"composition of {stock_index.name} for {session_key}")
        if failure:
            raise CloseFailed(failure)
    outcome.members = list(store.read("index_composition", key)["symbol"])
    outcome.runs = plan_close_runs(
        instance, stock_index.name, session_key, outcome.members, force=force
    )
    failures = []
    for run in outcome.runs:  # every run, even after one failed: the others' symbols still load
        result = defs.resolve_job_def(run.job_name).execute_in_process(
            instance=instance,
            tags={**run.tags, **tags},
            run_config={**_QUIET, "ops": {"bars": {"config": {"force": force}}}},
            raise_on_error=False,
        )
        outcome.run_ids.append(result.run_id)
        failure = _failure(result, f"{run.job_name} for {session_key} ({len(run.symbols)} symbols)")
        if failure:
            failures.append(failure)
    if failures:
        raise CloseFailed("\n".join(failures))
    return outcome


def fail_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the in-process runs of this machine whose process has died, and free their slots.

    A close killed mid-run (SIGKILL, a crash, a reboot) leaves its run `STARTED` and its workers'
    slots of the `stooq` pool claimed, so the next close would wait for slots nobody will free.
    Dagster's run monitoring does this for runs the daemon launched; this covers runs executed in
    process by `python -m market_assets close`. Returns the ids of the runs it failed.
    """
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


def _failure(result: dg.ExecuteInProcessResult, what: str) -> str | None:
    """What failed in `result` and why, with each failing step's error; None when it succeeded."""
    if result.success:
        return None
    errors = [
        _root_message(event.step_failure_data.error)
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    ]
    return f"{what} failed (run {result.run_id}):\n" + "\n".join(errors)


def _root_message(error: SerializableErrorInfo) -> str:
    """The message that says what went wrong: after the step's retries ran out, Dagster's error
    is `Exceeded max_retries of N` and the cause is the last attempt's own error."""
    message = error.message.strip()
    if error.cls_name == "RetryRequestedFromPolicy" and error.cause is not None:
        cause = error.cause
        while cause.cls_name == "Failure" and cause.cause is not None:
            cause = cause.cause
        message = f"{message}; the last attempt: {cause.message.strip()}"
    return message
