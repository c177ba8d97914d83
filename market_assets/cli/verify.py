"""`python -m market_assets verify`: a session's bars files read back and compared with what was
written (the `verify_bars` job, in this process), and with `--repair` loaded again
(README.md#data-quality, `market_assets/defs/bars/integrity.py`)."""

from __future__ import annotations

import sys

import dagster as dg

from market_assets import definitions
from market_assets.cli.close import QUIET, CloseFailed, close_session, close_settings, execute_bars_runs
from market_assets.cli.configuration import configured_lake, existing_lake
from market_assets.cli.instance import open_instance
from market_assets.defs.bars.jobs import verify_bars
from market_assets.defs.bars.planning import plan_close_runs
from market_assets.defs.partitions import bars_dimensions, composition_key
from market_assets.defs.runs import INDEX_TAG, SESSION_TAG, process_tags
from market_assets.lake.datasets import INDEX_COMPOSITION
from market_assets.settings import ConfigurationError
from market_assets.sources.indices import StockIndex, get_index


def verify_indices(indices: list[str], session: str | None, repair: bool) -> int:
    """Verify each index's bars for `session` (default: its exchange's latest closed session) on
    the instance at $DAGSTER_HOME, printing what was found; 1 when a damaged file remains. Refused
    (`ConfigurationError`) for an instance of another lake, or a data root that holds none."""
    instance = open_instance(configured_lake())  # first: an instance of another lake is named with both roots
    existing_lake()  # then a root without a lake, which an empty instance goes with
    status = 0
    for name in indices:
        try:
            _, remaining = verify_index(instance, name, session, repair)
        except ConfigurationError:
            raise
        except ValueError as error:
            print(f"{name}: {error}", file=sys.stderr)
            status = 1
            continue
        if remaining:
            status = 1
    return status


def verify_index(instance: dg.DagsterInstance, name: str, session: str | None, repair: bool) -> tuple[int, int]:
    """Verify (and with `repair`, repair) one index's bars for `session`, printing what was found;
    how many files were found damaged, and how many still are. `ValueError` for a bad index,
    session or setting."""
    defs = definitions.defs()
    index = get_index(name)
    session_key = close_session(index, session)
    store, max_symbols = close_settings(defs, instance, check=repair)
    if not store.exists(INDEX_COMPOSITION, str(composition_key(session_key, index.name))):
        print(f"{index.name} {session_key}: no composition stored, nothing to verify")
        return 0, 0
    _, damaged = _verify(defs, instance, index, session_key)
    found = len(damaged)
    if damaged and repair:
        symbols = sorted({bars_dimensions(item["partition"])["symbol"] for item in damaged})
        runs = plan_close_runs(instance, index.name, session_key, symbols, max_symbols=max_symbols, force=True)
        try:
            execute_bars_runs(defs, instance, index, session_key, runs, {"force": True, "full_history": False})
        except CloseFailed as error:
            print(f"{index.name} {session_key}: the repair failed\n{error}", file=sys.stderr)
        print(f"{index.name} {session_key}: {len(symbols)} symbols loaded again in {len(runs)} run(s)")
        _, damaged = _verify(defs, instance, index, session_key)
    return found, len(damaged)


def _verify(defs: dg.Definitions, instance: dg.DagsterInstance, index: StockIndex, session: str) -> tuple[int, list[dict]]:
    """Run `verify_bars` for the index and session; print and return how many files it verified
    and the damaged ones (asset, partition, problem)."""
    result = defs.resolve_job_def(verify_bars.name).execute_in_process(
        instance=instance,
        run_config={**QUIET, "ops": {"verify_bars_files": {"config": {"index": index.name, "session": session}}}},
        tags={INDEX_TAG: index.name, SESSION_TAG: session, **process_tags()},
        raise_on_error=False,
    )
    metadata = next(
        event.step_failure_data.user_failure_data.metadata if event.is_step_failure else event.event_specific_data.metadata
        for event in result.all_events
        if event.is_step_failure or event.is_successful_output
    )
    verified, damaged = metadata["verified"].value, metadata["damaged"].value
    print(f"{index.name} {session}: {verified} files verified, {len(damaged)} damaged (run {result.run_id})")
    for item in damaged:
        print(f"- {item['asset']}[{item['partition']}]: {item['problem']}")
    return verified, damaged
