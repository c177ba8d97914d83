"""Closing indices from Python, `python -m market_assets close` and `dagster job execute`: what is
stored is not fetched again, and one failed run does not stop the others."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from market_assets.cli.close import CloseFailed, close_index
from market_assets.defs.bars.keys import bars_asset_key
from market_assets.domain.exchange_sessions import calendar
from market_assets.settings import MAX_SYMBOLS_PER_RUN
from market_assets_tests.universe import last_session
from stooq_server import Fault, FaultKind


def test_rerun_fetches_nothing_and_force_fetches_again(platform, synthetic_universe):
    instance, server = platform.instance, platform.server
    session = last_session(synthetic_universe, "XNYS")
    close_index(instance, "DJI", session)
    server.reset_stats()

    again = close_index(instance, "DJI", session)

    assert again.runs == [] and server.stats()["by_route"]["download"] == 0
    forced = close_index(instance, "DJI", session, force=True)
    assert len(forced.runs) == 1 and server.stats()["by_route"]["download"] == 30


def test_a_session_that_succeeded_is_not_fetched_again(platform, synthetic_universe):
    instance, server = platform.instance, platform.server
    session = last_session(synthetic_universe, "XHKG")
    close_index(instance, "HSI", session)
    runs_before = len(instance.get_runs())
    server.reset_stats()

    outcome = close_index(instance, "HSI", session)

    assert outcome.runs == [] and len(instance.get_runs()) == runs_before
    assert server.stats()["total"] == 0


def test_a_failed_run_does_not_stop_the_others_of_the_close(platform, synthetic_universe, monkeypatch):
    instance, store, server = platform.instance, platform.store, platform.server
    session = last_session(synthetic_universe, "XNYS")
    monkeypatch.setenv(MAX_SYMBOLS_PER_RUN.env_var, "10")
    members = synthetic_universe.members("DJI", session)
    server.inject(Fault(FaultKind.NO_DATA, symbols={members[0]}))

    with pytest.raises(CloseFailed, match=f"{members[0]}: Stooq answered 'No data'"):
        close_index(instance, "DJI", session)

    daily = {key.split("|")[1] for key in store.partition_keys("daily_bars")}
    monthly = {key.split("|")[1] for key in store.partition_keys("monthly_bars")}
    assert daily == set(members) - {members[0]} and server.stats()["by_route"]["download"] == 30
    assert monthly == daily  # the two other runs of 10, and the failed run's other 9 symbols


def _plan(platform, *args: str) -> dict:
    """`python -m market_assets plan ... --json`, as a script calls it."""
    planned = subprocess.run(
        [sys.executable, "-m", "market_assets", "plan", *args, "--json"],
        capture_output=True,
        text=True,
        env=platform.env,
        timeout=300,
    )
    assert planned.returncode == 0, planned.stderr[-3000:]
    return json.loads(planned.stdout)


def _execute(platform, command: dict) -> None:
    assert command["argv"][:3] == ["dagster", "job", "execute"]
    executed = platform.dagster(*command["argv"][1:])
    assert executed.returncode == 0, executed.stderr[-3000:]


@pytest.mark.parametrize("index, calendar", [("DJI", "XNYS"), ("NDX", "XNYS"), ("HSI", "XHKG")])
def test_the_plans_dagster_job_execute_commands_close_an_index(platform, synthetic_universe, index, calendar):
    """The CI path: the plan's composition command, then (planned again) its close runs."""
    instance, store = platform.instance, platform.store
    session = last_session(synthetic_universe, calendar)

    first = _plan(platform, index, "--session", session)
    assert [c["job"] for c in first["commands"]] == ["index_compositions"]
    assert first["commands"][0]["tags"] == {"dagster/partition": f"{session}|{index}"}
    assert first["pending"] == [f"{index} {session}"]
    _execute(platform, first["commands"][0])
    members = store.read("index_composition", f"{session}|{index}")["symbol"].tolist()
    order = [s for s in instance.get_dynamic_partitions(f"{calendar.lower()}_symbols") if s in members]

    second = _plan(platform, index, "--session", session)
    assert second["pending"] == []
    assert [c["job"] for c in second["commands"]] == [f"{index.lower()}_close"]
    tags = second["commands"][0]["tags"]
    assert tags["dagster/asset_partition_range_start"] == f"{session}|{order[0]}"
    assert tags["dagster/asset_partition_range_end"] == f"{session}|{order[-1]}"
    _execute(platform, second["commands"][0])

    assert sorted(members) == sorted(synthetic_universe.members(index, pd.Timestamp(session)))
    last = order[-1]
    daily = store.read("daily_bars", f"{session}|{last}")
    monthly = store.read("monthly_bars", f"{session}|{last}")
    assert daily["date"].max() == pd.Timestamp(session)
    assert monthly["close"].iloc[-1] == daily["close"].iloc[-1]
    assert (
        monthly["volume"].iloc[-1]
        == daily.loc[daily["date"].dt.to_period("M") == pd.Timestamp(session).to_period("M"), "volume"].sum()
    )
    materialized = instance.get_materialized_partitions(bars_asset_key(calendar, "weekly_bars"))
    assert {f"{session}|{s}" for s in members} <= materialized
    assert _plan(platform, index, "--session", session) == {"commands": [], "pending": []}


def test_the_plan_loads_the_members_two_indices_share_once(platform, synthetic_universe):
    session = last_session(synthetic_universe, "XNYS")
    for command in _plan(platform, "DJI", "NDX", "--session", session)["commands"]:
        _execute(platform, command)

    commands = _plan(platform, "DJI", "NDX", "--session", session)["commands"]

    order = platform.instance.get_dynamic_partitions("xnys_symbols")
    covered = []
    for command in commands:
        first, last = (command["tags"][f"dagster/asset_partition_range_{end}"].split("|")[1] for end in ("start", "end"))
        covered += order[order.index(first) : order.index(last) + 1]
    dji, ndx = (set(platform.store.read("index_composition", f"{session}|{i}")["symbol"]) for i in ("DJI", "NDX"))
    assert dji & ndx
    assert sorted(covered) == sorted(dji | ndx)
    assert [c["tags"]["market_assets/index"] for c in commands][:1] == ["DJI"]


def test_the_plans_script_closes_the_next_session_in_one_go(platform, synthetic_universe):
    """The steady state of CI: with the previous session stored, one plan holds one composition run
    for DJI and NDX and their bars runs by the previous session's lists, and its script runs them at
    once; a second plan has nothing left to run."""
    instance, store, server = platform.instance, platform.store, platform.server
    session = last_session(synthetic_universe, "XNYS")
    previous = f"{calendar('XNYS').previous_session(pd.Timestamp(session)):%Y-%m-%d}"
    for index in ("DJI", "NDX"):
        close_index(instance, index, previous)
    server.reset_stats()

    planned = _plan(platform, "DJI", "NDX", "--session", session)
    assert [c["job"] for c in planned["commands"]] == ["index_compositions", "dji_close", "ndx_close"]
    assert planned["commands"][0]["tags"] == {
        "dagster/asset_partition_range_start": f"{session}|DJI",
        "dagster/asset_partition_range_end": f"{session}|NDX",
    }
    assert [c["tags"]["market_assets/composition"] for c in planned["commands"][1:]] == [
        f"{previous}|DJI",
        f"{previous}|NDX",
    ]
    script = subprocess.run(
        [sys.executable, "-m", "market_assets", "plan", "DJI", "NDX", "--session", session],
        capture_output=True,
        text=True,
        env=platform.env,
        timeout=300,
        check=True,
    ).stdout
    path = f"{Path(sys.executable).parent}:{platform.env.get('PATH', '')}"
    executed = subprocess.run(
        ["sh"], input=script, capture_output=True, text=True, env={**platform.env, "PATH": path}, timeout=600
    )

    assert executed.returncode == 0, executed.stderr[-3000:]
    members = {s for i in ("DJI", "NDX") for s in synthetic_universe.members(i, pd.Timestamp(session))}
    assert all(store.exists("monthly_bars", f"{session}|{symbol}") for symbol in members)
    assert server.stats()["by_route"]["download"] == len(members)
    assert _plan(platform, "DJI", "NDX", "--session", session) == {"commands": [], "pending": []}


def test_a_close_job_launched_without_partitions_says_what_to_pass(platform):
    executed = platform.dagster("job", "execute", "-m", "market_assets", "-j", "dji_close")

    assert executed.returncode == 1
    output = executed.stdout + executed.stderr
    assert "dji_close was launched without partitions" in output
    assert "python -m market_assets plan DJI --session <session>" in output
    assert platform.server.stats()["total"] == 0


def test_the_plan_refuses_a_session_outside_the_partition_window(platform):
    planned = subprocess.run(
        [sys.executable, "-m", "market_assets", "plan", "DJI", "--session", "2023-03-17"],
        capture_output=True,
        text=True,
        env=platform.env,
        timeout=300,
    )

    assert planned.returncode == 2
    assert planned.stderr.startswith("plan: index DJI: 2023-03-17 is before the partition window")
    assert planned.stdout == ""


def test_dagsters_run_monitoring_cannot_see_the_worker_of_a_run_executed_in_process(platform):
    """Why each close fails the runs of a dead process itself (`fail_abandoned_runs`): Dagster's
    run monitoring checks a started run's worker only through a run launcher that can, and the
    project's instance launches with one that cannot. Should that change, this fails."""
    assert platform.instance.run_launcher.supports_check_run_worker_health is False
