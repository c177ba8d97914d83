"""`python -m market_assets plan`: the `dagster job execute` commands that close indices for a
session, for CI and scripts.

A close job's partitions are a range from the first to the last (session, symbol) in the order the
symbols were registered on the instance, which nobody can write down by hand: `plan` reads that
order and the stored compositions, leaves out what is stored already, and prints one command per
run, in the order to run them, exactly as the schedules would launch them (the same tags).

An index whose composition of the session is not stored yet gets its composition command only:
its constituents, and so its bars runs, are known once that has run, and a second `plan` prints
them.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass

import dagster as dg

from market_assets import definitions
from market_assets.cli.close import close_session, close_settings
from market_assets.defs.bars.planning import plan_close_runs
from market_assets.defs.compositions.assets import index_composition
from market_assets.defs.compositions.jobs import compositions_job
from market_assets.defs.partitions import composition_key
from market_assets.sources.indices import get_index

PARTITION_TAG = "dagster/partition"
"""The tag `dagster job execute` takes a single partition from (a composition run)."""


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
    """Indices whose bars runs wait for their composition (a second `plan` prints them)."""


def plan_indices(instance: dg.DagsterInstance, indices: list[str], session: str | None) -> Plan:
    """The commands that close `indices` for `session` (default: each exchange's latest closed
    session) on `instance`, compositions first. Symbols shared by two indices are loaded once."""
    # The source is not asked anything here: whoever runs the commands needs it, not the plan.
    store, max_symbols = close_settings(definitions.defs(), instance, check=False)
    stored_compositions = instance.get_materialized_partitions(index_composition.key)
    plan, planned = Plan([], []), {}
    compositions, bars = [], []
    for name in indices:
        index = get_index(name)
        day_key = close_session(index, session)
        key = str(composition_key(day_key, index.name))
        if key not in stored_compositions:
            what = f"composition of {index.name} for {day_key}"
            compositions.append(Command(compositions_job.name, {PARTITION_TAG: key}, what))
            plan.pending.append(f"{index.name} {day_key}")
            continue
        members = list(store.read("index_composition", key)["symbol"])
        runs = plan_close_runs(
            instance, index.name, day_key, members, max_symbols=max_symbols, planned=planned.get(day_key, set())
        )
        for run in runs:
            planned.setdefault(day_key, set()).update(run.symbols)
            what = f"bars of {len(run.symbols)} {index.name} constituents for {day_key}"
            bars.append(Command(run.job_name, run.tags, what))
    plan.commands = compositions + bars
    return plan


def print_plan(indices: list[str], session: str | None, as_json: bool) -> int:
    """Print the plan for the instance at $DAGSTER_HOME: a shell line per command (with `#` lines
    saying what each does), or one JSON document; 2 when the input is refused."""
    try:
        plan = plan_indices(dg.DagsterInstance.get(), indices, session)
    except ValueError as error:
        print(f"plan: {error}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps({"commands": [c.as_dict() for c in plan.commands], "pending": plan.pending}, indent=2))
        return 0
    for command in plan.commands:
        print(f"# {command.what}\n{shlex.join(command.argv)}")
    if plan.pending:
        print(
            f"# then run plan again for the bars of {', '.join(plan.pending)}: they follow from the compositions"
        )
    elif not plan.commands:
        print("# nothing to run: every constituent of these sessions is stored")
    return 0
