"""`python -m market_assets close`: an index's composition, then its planned bars runs, for one
session, executed in this process on the instance at `$DAGSTER_HOME` (README.md#one-run-per-index-and-session)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import dagster as dg

from market_assets import definitions, settings
from market_assets.cli.configuration import configured_lake
from market_assets.cli.instance import open_instance
from market_assets.defs.bars.keys import bars_step_name
from market_assets.defs.bars.planning import CloseRun, plan_close_runs
from market_assets.defs.compositions.assets import index_composition
from market_assets.defs.compositions.jobs import compositions_job
from market_assets.defs.partitions import composition_key, require_in_window
from market_assets.defs.runs import fail_abandoned_runs, process_tags, step_error_message
from market_assets.domain.exchange_sessions import latest_closed_session, require_session, to_session
from market_assets.lake.compositions import constituents
from market_assets.lake.store import ParquetStore
from market_assets.settings import ConfigurationError
from market_assets.sources.indices import StockIndex, get_index

# Runs in this process log to the instance (and the UI) in full; the terminal gets warnings only.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


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
    full_history: bool = False,
) -> CloseOutcome:
    """Load `index` for `session` (default: its exchange's latest closed session).

    What is already stored is not fetched again, the composition included, unless `force`: a
    re-run of a session that succeeded launches nothing and asks Stooq for nothing. With
    `full_history`, every symbol's whole history is downloaded, rather than the bars after its
    stored previous snapshot. The definitions are built for this call, from the environment as it
    is now.
    """
    stock_index = get_index(index)
    session_key = close_session(stock_index, session)
    key = str(composition_key(session_key, stock_index.name))
    defs = definitions.defs()
    store, max_symbols = close_settings(defs, instance)
    fail_abandoned_runs(instance)
    outcome = CloseOutcome(stock_index.name, session_key, members=[])
    if force or key not in instance.get_materialized_partitions(index_composition.key):
        result = defs.resolve_job_def(compositions_job.name).execute_in_process(
            instance=instance, partition_key=key, run_config=QUIET, raise_on_error=False, tags=process_tags()
        )
        outcome.run_ids.append(result.run_id)
        failure = run_failure(result, f"composition of {stock_index.name} for {session_key}")
        if failure:
            raise CloseFailed(failure)
    outcome.members = stored_members(store, key)
    outcome.runs = plan_close_runs(instance, stock_index.name, session_key, outcome.members, max_symbols=max_symbols, force=force)
    outcome.run_ids += execute_bars_runs(
        defs, instance, stock_index, session_key, outcome.runs, {"force": force, "full_history": full_history}
    )
    return outcome


def execute_bars_runs(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    index: StockIndex,
    session: str,
    runs: list[CloseRun],
    bars_config: dict[str, bool],
) -> list[str]:
    """Execute each planned bars run in this process, every one even after one failed (the
    others' symbols still load); their run ids, or `CloseFailed` with each failed run's errors."""
    run_ids, failures = [], []
    for run in runs:
        result = defs.resolve_job_def(run.job_name).execute_in_process(
            instance=instance,
            tags={**run.tags, **process_tags()},
            run_config={**QUIET, "ops": {bars_step_name(index.calendar): {"config": bars_config}}},
            raise_on_error=False,
        )
        run_ids.append(result.run_id)
        failure = run_failure(result, f"{run.job_name} for {session} ({len(run.symbols)} symbols)")
        if failure:
            failures.append(failure)
    if failures:
        raise CloseFailed("\n".join(failures))
    return run_ids


def close_session(index: StockIndex, session: str | None) -> str:
    """The session key a close of `index` loads: `session`, or its exchange's latest closed one,
    refused (before any run is created) when the date is outside the partition window or the
    exchange was closed. The window is asked first: the exchange's calendar covers fewer years."""
    what = f"index {index.name}"
    day = to_session(session) if session else latest_closed_session(index.calendar)
    session_key = f"{day:%Y-%m-%d}"
    require_in_window(session_key, what)
    if session:
        require_session(index.calendar, session_key, what)
    return session_key


def stored_members(store: ParquetStore, key: str) -> list[str]:
    """The symbols of the composition `key` (`<date>|<index>`) stored in the lake; a `ValueError`
    saying how to load it again when the instance records it but its file is gone."""
    try:
        return constituents(store, key)
    except FileNotFoundError as error:
        day, _, index = key.partition("|")
        raise ValueError(
            f"{error}, though the instance records it: load it again with "
            f"`python -m market_assets close {index} --session {day} --force`"
        ) from None


def close_settings(defs: dg.Definitions, instance: dg.DagsterInstance, *, check: bool = True) -> tuple[ParquetStore, int]:
    """The lake and the run size of a close. With `check`, settings that would fail every request
    or write (a source out of reach, a root that cannot be written) are refused first, before any
    work starts. A resource setting's bad value is a `ConfigurationError`, not Dagster's config error."""
    for setting in settings.RESOURCE_SETTINGS:
        setting.value()
    names = ("stooq", "lake", "planning") if check else ("lake", "planning")
    try:
        with dg.build_resources({name: defs.resources[name] for name in names}, instance=instance) as resources:
            if check:
                resources.stooq.check_ready()
                resources.lake.store.check_writable()
            return resources.lake.store, resources.planning.max_symbols_per_run
    except dg.DagsterResourceFunctionError as error:  # a setting its resource refused when set up
        raise ValueError(str(error.user_exception)) from None


def close_indices(
    indices: list[str],
    session: str | None,
    force: bool,
    full_history: bool = False,
    instance: dg.DagsterInstance | None = None,
) -> int:
    """Close each index for `session` on `instance`, or the instance at $DAGSTER_HOME, printing one
    line each; 1 when any failed. A `ConfigurationError` (a setting, an instance of another lake)
    ends the close at once: it would refuse every index."""
    instance = instance or open_instance(configured_lake())
    status = 0
    for index in indices:
        started = time.perf_counter()
        try:
            outcome = close_index(instance, index, session, force=force, full_history=full_history)
        except ConfigurationError:
            raise
        except (CloseFailed, ValueError) as error:
            print(f"{index}: FAILED\n{error}", file=sys.stderr)
            status = 1
            continue
        symbols = sum(len(run.symbols) for run in outcome.runs)
        print(
            f"{outcome.index} {outcome.session}: {len(outcome.members)} constituents, "
            f"{symbols} loaded in {len(outcome.runs)} run(s), "
            f"{len(outcome.members) - symbols} already stored ({time.perf_counter() - started:.1f} s)"
        )
    return status


def run_failure(result: dg.ExecuteInProcessResult, what: str) -> str | None:
    """What failed in `result` and why, with each failing step's error; None when it succeeded."""
    if result.success:
        return None
    errors = [
        step_error_message(event.step_failure_data.error)
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    ]
    return f"{what} failed (run {result.run_id}):\n" + "\n".join(errors)
