"""`python -m market_assets verify`: bars files damaged after a close are found, reported on their
partitions and, with `--repair`, loaded again, on a real instance, lake and server."""

from __future__ import annotations

import os
import shutil

import dagster as dg
import pandas as pd

from market_assets.cli import main as cli
from market_assets.cli.close import close_index
from market_assets.defs.bars.checks import FILE_INTACT, VALID_BARS
from market_assets.defs.bars.keys import bars_asset_key
from market_assets.lake.datasets import BARS
from market_assets_tests.lake_files import assert_same_bars, bars_frames
from market_assets_tests.universe import last_session


def _file_intact_results(instance: dg.DagsterInstance) -> dict[tuple[str, str], list[bool]]:
    """`{(asset, partition): [passed, ...]}` of every `valid_bars` result, oldest first (the bars
    step's and the `verify_bars` runs'), each failed only by `file_intact`."""
    results: dict[tuple[str, str], list[bool]] = {}
    for name in BARS:
        key = dg.AssetCheckKey(bars_asset_key("XNYS", name), VALID_BARS)
        for record in reversed(instance.event_log_storage.get_asset_check_execution_history(key, limit=1000)):
            evaluation = record.event.dagster_event.event_specific_data
            assert evaluation.metadata["failed_rules"].value in ("none", FILE_INTACT), evaluation.metadata
            results.setdefault((name, evaluation.partition), []).append(evaluation.passed)
    return results


def test_files_damaged_after_a_close_are_found_reported_and_repaired(platform, synthetic_universe, dji_reference, capsys):
    session = last_session(synthetic_universe, "XNYS")
    members = synthetic_universe.members("DJI", pd.Timestamp(session))
    close_index(platform.instance, "DJI", session)
    store = platform.store
    assert all(results == [True] for results in _file_intact_results(platform.instance).values())
    assert len(_file_intact_results(platform.instance)) == 3 * len(members)  # each written file read back

    truncated = store.file("daily_bars", f"{session}|{members[3]}")
    with open(truncated, "r+b") as handle:
        handle.truncate(os.path.getsize(truncated) // 2)
    overwritten = store.file("weekly_bars", f"{session}|{members[5]}")  # whole parquet, of another symbol
    shutil.copyfile(store.file("weekly_bars", f"{session}|{members[6]}"), overwritten)
    removed = store.file("monthly_bars", f"{session}|{members[7]}")
    store.filesystem.rm(removed)

    assert cli(["verify", "DJI"]) == 1

    out = capsys.readouterr().out
    assert f"DJI {session}: 90 files verified, 3 damaged (run " in out, out
    assert f"- xnys/daily_bars[{session}|{members[3]}]: {truncated} is not readable parquet" in out
    assert f"- xnys/weekly_bars[{session}|{members[5]}]: {overwritten} holds other rows than were written" in out
    assert f"- xnys/monthly_bars[{session}|{members[7]}]: {removed} is missing" in out
    results = _file_intact_results(platform.instance)
    damaged = {("daily_bars", members[3]), ("weekly_bars", members[5]), ("monthly_bars", members[7])}
    for (name, partition), passed in results.items():
        assert passed == [True, (name, partition.split("|")[1]) not in damaged], (name, partition)

    platform.server.reset_stats()
    assert cli(["verify", "DJI", "--repair"]) == 0

    out = capsys.readouterr().out
    assert f"DJI {session}: 3 symbols loaded again in 3 run(s)\nDJI {session}: 90 files verified, 0 damaged" in out, out
    assert platform.server.stats()["by_route"]["download"] == 3
    assert_same_bars(bars_frames(store), dji_reference)
    assert all(passed[-1] for passed in _file_intact_results(platform.instance).values())
    verify_runs = platform.instance.get_runs(dg.RunsFilter(job_name="verify_bars"))  # newest first
    assert [run.status for run in verify_runs] == [dg.DagsterRunStatus.SUCCESS, *[dg.DagsterRunStatus.FAILURE] * 2]
