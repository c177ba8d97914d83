"""`python -m market_assets plan`: the `dagster job execute` commands that close indices for a
session, as a shell script or JSON, for CI and scripts; what is stored already is left out
(README.md#one-run-per-index-and-session)."""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass

import dagster as dg

from market_assets import definitions
from market_assets.cli.close import close_session, close_settings, stored_members
from market_assets.cli.configuration import REFUSED, configured_lake
from market_assets.cli.instance import open_instance
from market_assets.defs.bars.planning import plan_close_runs
from market_assets.defs.compositions.assets import index_composition
from market_assets.defs.compositions.jobs import compositions_job
from market_assets.defs.partitions import (
    composition_blocks,
    composition_key,
    composition_partitions,
    dimensions,
)
from market_assets.defs.runs import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG, PARTITION_TAG
from market_assets.lake.compositions import composition_for
from market_assets.settings import ConfigurationError
from market_assets.sources.indices import get_index


@dataclass(frozen=True)
class Command:
    """One `dagster job execute` of the plan."""

    job: str
    tags: dict[str, str]
    what: str

    @property
    def argv(self) -> list[str]:
        return ["dagster", "job", "execute", "-m", "market_assets", "-j", self.job, "--tags", json.dumps(self.tags)]

    def as_dict(self) -> dict[str, object]:
        return {"job": self.job, "tags": self.tags, "what": self.what, "argv": self.argv}


@dataclass
class Plan:
    commands: list[Command]
    pending: list[str]
    """`<index> <session>` of the compositions this plan fetches: a second `plan` prints the bars
    runs of what they add to the members the plan went by (all of them on a first close)."""


def plan_indices(instance: dg.DagsterInstance, indices: list[str], session: str | None) -> Plan:
    """The commands that close `indices` for `session` (default: each exchange's latest closed
    session) on `instance`, compositions first. Symbols shared by two indices are loaded once."""
    # The source is not asked anything here: whoever runs the commands needs it, not the plan.
    store, max_symbols = close_settings(definitions.defs(), instance, check=False)
    stored = instance.get_materialized_partitions(index_composition.key)
    plan, planned, missing = Plan([], []), {}, []
    for name in indices:
        index = get_index(name)
        day_key = close_session(index, session)
        key = str(composition_key(day_key, index.name))
        by = key
        if key not in stored:
            missing.append(key)
            plan.pending.append(f"{index.name} {day_key}")
            by = composition_for(store, index.name, day_key)
            if by is None:
                continue
        members = stored_members(store, by)
        runs = plan_close_runs(
            instance,
            index.name,
            day_key,
            members,
            max_symbols=max_symbols,
            planned=planned.get(day_key, set()),
            composition=by,
        )
        listed = "" if by == key else f" (as listed after {dimensions(by, composition_partitions)['date']})"
        for run in runs:
            planned.setdefault(day_key, set()).update(run.symbols)
            what = f"bars of {len(run.symbols)} {index.name} constituents for {day_key}{listed}"
            plan.commands.append(Command(run.job_name, run.tags, what))
    plan.commands[:0] = [_compositions(block) for block in composition_blocks(missing)]
    return plan


def _compositions(block: list[str]) -> Command:
    """The run of the compositions of `block` (neighbouring indices of one session)."""
    dims = [dimensions(key, composition_partitions) for key in block]
    what = f"composition of {', '.join(d['index'] for d in dims)} for {dims[0]['date']}"
    if len(block) == 1:
        return Command(compositions_job.name, {PARTITION_TAG: block[0]}, what)
    tags = {PARTITION_RANGE_START_TAG: block[0], PARTITION_RANGE_END_TAG: block[-1]}
    return Command(compositions_job.name, tags, what)


def print_script(commands: list[Command]) -> None:
    """A shell script of `commands` (with `#` lines saying what each does), all running at once when
    there are several; it exits 1 once they have all ended if any failed."""
    if len(commands) == 1:
        print(f"# {commands[0].what}\n{shlex.join(commands[0].argv)}")
        return
    for command in commands:
        print(f'# {command.what}\n{shlex.join(command.argv)} & pids="$pids $!"')
    if commands:
        print('status=0; for pid in $pids; do wait "$pid" || status=1; done; [ "$status" = 0 ]')


def print_plan(indices: list[str], session: str | None, as_json: bool) -> int:
    """Print the plan for the instance at $DAGSTER_HOME: a shell script (`print_script`), or one
    JSON document; 2, and nothing on stdout, when the input is refused or the lake lacks what the
    instance records. A `ConfigurationError` is left to the command line."""
    instance = open_instance(configured_lake())
    try:
        plan = plan_indices(instance, indices, session)
    except ConfigurationError:
        raise
    except ValueError as error:
        print(f"plan: {error}", file=sys.stderr)
        return REFUSED
    if as_json:
        print(json.dumps({"commands": [c.as_dict() for c in plan.commands], "pending": plan.pending}, indent=2))
        return 0
    print_script(plan.commands)
    if plan.pending:
        print(f"# then run plan again for what the compositions of {', '.join(plan.pending)} add")
    elif not plan.commands:
        print("# nothing to run: every constituent of these sessions is stored")
    return 0
