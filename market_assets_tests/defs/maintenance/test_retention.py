"""`prune_instance`: the runs of sessions past the retention window leave the instance, with
everything stored for them; their history stays in the lake, and nothing a reader or the UI sees
inside the window changes, even when the job is killed halfway."""

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from market_assets.cli.close import CloseFailed, close_index
from market_assets.dagster_internals import AssetCheckExecutionsTable, RunTagsTable
from market_assets.defs.bars.keys import bars_asset_key
from market_assets.defs.maintenance.retention import RetentionResource, run_session
from market_assets.defs.partitions import bars_partitions, window_start
from market_assets.defs.runs import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from market_assets.domain.exchange_sessions import calendar
from market_assets.lake.datasets import BARS
from market_assets.lake.reader import LakeReader
from market_assets.lake.run_history import RunHistoryRow, history_frame, write_run_history
from market_assets.lake.sql import connect
from market_assets.lake.store import ParquetStore
from market_assets_tests.universe import last_session
from stooq_server import Fault, FaultKind

WINDOW_DAYS = "14"
"""The partition window the pruning runs with: the tests' 92 days narrowed, as the window moves
on by itself with the days."""


def _prune(platform) -> subprocess.Popen:
    """`dagster job execute -j prune_instance`, as CI runs jobs, with the window moved on."""
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster")), "job", "execute", "-m", "market_assets", "-j", "prune_instance"],
        env={**platform.env, "MARKET_ASSETS_PARTITION_DAYS": WINDOW_DAYS},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _state(platform, first_kept: str) -> dict[str, object]:
    """What the UI, the planning and the readers see inside the window, and every as-of read."""
    instance, grid = platform.instance, bars_partitions["XNYS"]
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        in_window = [key for key in grid.get_partition_keys() if key.split("|")[0] >= first_kept]
    statuses = {name: instance.get_status_by_partition(bars_asset_key("XNYS", name), in_window, grid) for name in BARS}
    reader = LakeReader(platform.store)
    sessions = sorted(session for session in platform.store.stored_sessions("daily_bars"))
    return {
        "statuses": statuses,
        "materialized": {
            name: {key for key in instance.get_materialized_partitions(bars_asset_key("XNYS", name)) if key >= first_kept}
            for name in BARS
        },
        "as_of": {session: reader.bars("monthly", index="DJI", as_of=session) for session in sessions},
    }


def _assert_same(before: dict[str, object], after: dict[str, object]) -> None:
    assert after["statuses"] == before["statuses"]
    assert after["materialized"] == before["materialized"]
    assert after["as_of"].keys() == before["as_of"].keys()
    for session, frame in before["as_of"].items():
        pd.testing.assert_frame_equal(after["as_of"][session], frame)


def _rows(platform, table: sa.Table, run_ids: set[str], database: str) -> int:
    engine = sa.create_engine(f"sqlite:///{Path(platform.env['DAGSTER_HOME']) / 'history' / database}")
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c.run_id.in_(run_ids))).scalar()
    engine.dispose()
    return count


@pytest.mark.timeout(900)
def test_a_prune_killed_halfway_loses_nothing_and_the_next_one_finishes(platform_factory, synthetic_universe):
    platform = platform_factory(MARKET_ASSETS_MAX_SYMBOLS_PER_RUN="3")
    instance = platform.instance
    latest = last_session(synthetic_universe, "XNYS")
    old = [f"{day:%Y-%m-%d}" for day in calendar("XNYS").sessions_window(latest, -45)[:3]]
    broken = synthetic_universe.members("DJI", pd.Timestamp(old[0]))[3]
    platform.server.inject(Fault(FaultKind.NO_DATA, symbols={broken}))
    with pytest.raises(CloseFailed):
        close_index(instance, "DJI", old[0])
    platform.server.clear_faults()
    for session in (*old, latest):
        close_index(instance, "DJI", session)
    first_kept = window_start(days=int(WINDOW_DAYS))
    assert old[-1] < first_kept <= latest
    runs = {record.dagster_run.run_id: record.dagster_run for record in instance.get_run_records()}
    expired = {run_id for run_id, run in runs.items() if run_session(run) < first_kept}
    kept = set(runs) - expired
    # ten bars runs of three symbols and a composition run a session, and the run of the failed symbol again
    assert len(expired) == 3 * (10 + 1) + 1 and kept
    old_range = {PARTITION_RANGE_START_TAG: f"{old[0]}|{broken}", PARTITION_RANGE_END_TAG: f"{old[0]}|{broken}"}
    running = instance.create_run_for_job(platform.job("dji_close"), tags=old_range, status=dg.DagsterRunStatus.STARTED)
    before = _state(platform, first_kept)

    pruning = _prune(platform)
    closes = dg.RunsFilter(job_name="dji_close")
    stored, deadline = instance.get_runs_count(closes), time.monotonic() + 300
    while stored - instance.get_runs_count(closes) < 3 and pruning.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    pruning.send_signal(signal.SIGKILL)
    output = pruning.communicate(timeout=60)[0]
    assert pruning.returncode == -signal.SIGKILL, f"the job finished before it could be killed:\n{output[-3000:]}"
    left = {record.dagster_run.run_id for record in instance.get_run_records()}
    assert expired & left and expired - left, "killed before or after its deletions"
    _assert_same(before, _state(platform, first_kept))

    pruning = _prune(platform)
    output = pruning.communicate(timeout=300)[0]
    assert pruning.returncode == 0, output[-3000:]

    left = {record.dagster_run.run_id for record in instance.get_run_records()}
    assert left == kept | {running.run_id, *_prune_runs(instance)}
    _assert_same(before, _state(platform, first_kept))
    assert _rows(platform, AssetCheckExecutionsTable, expired, "runs/index.db") == 0
    assert _rows(platform, RunTagsTable, expired, "runs.db") == 0
    assert _rows(platform, AssetCheckExecutionsTable, kept, "runs/index.db") > 0
    assert not [
        run_id for run_id in expired if (Path(platform.env["DAGSTER_HOME"]) / "history" / "runs" / f"{run_id}.db").exists()
    ]
    with sqlite3.connect(Path(platform.env["DAGSTER_HOME"]) / "history" / "runs" / "index.db") as index:
        assert index.execute("PRAGMA freelist_count").fetchone()[0] == 0  # the deleted events' pages given back
    for name in BARS:
        stored = instance.get_materialized_partitions(bars_asset_key("XNYS", name))
        assert {key.split("|")[0] for key in stored} == {latest}
    platform.server.reset_stats()  # what the planning reads is still there: a re-run of the window's session asks nothing
    assert close_index(instance, "DJI", latest).runs == []
    assert platform.server.stats()["total"] == 0

    history = (
        connect(platform.store.root)
        .execute(
            "SELECT run_id, session, job, index, status, len(symbols) AS symbols, failures FROM run_history ORDER BY session, started"
        )
        .df()
    )
    assert sorted(history["run_id"]) == sorted(expired)
    bars_runs = history[history["job"] == "dji_close"]
    assert bars_runs.groupby("session")["symbols"].sum().to_dict() == {
        pd.Timestamp(old[0]): 31,
        **{pd.Timestamp(day): 30 for day in old[1:]},
    }
    assert set(bars_runs["index"]) == {"DJI"}
    assert history.groupby("job").size().to_dict() == {"dji_close": 31, "index_compositions": 3}
    (failed,) = history[history["status"] == "FAILURE"].itertuples()
    assert failed.session == pd.Timestamp(old[0]) and f"{broken}: Stooq answered 'No data'" in failed.failures


def _prune_runs(instance: dg.DagsterInstance) -> list[str]:
    return [run.run_id for run in instance.get_runs(dg.RunsFilter(job_name="prune_instance"))]


def test_run_history_keeps_one_row_per_run_however_often_it_is_written(tmp_path):
    store = ParquetStore(str(tmp_path))
    started = pd.Timestamp("2026-10-01 20:31", tz="UTC")
    rows = [
        RunHistoryRow(
            f"run-{i}",
            "dji_close",
            "DJI",
            "2026-10-01",
            [f"S{i}.US"],
            "FAILURE" if i else "SUCCESS",
            started + pd.Timedelta(minutes=i),
            started + pd.Timedelta(minutes=i, seconds=30),
            "dji_bars: S1.US: no data" if i else "",
        )
        for i in range(2)
    ]

    write_run_history(store, rows[:1])
    paths = write_run_history(store, rows)

    assert paths == [f"{tmp_path}/run_history/session=2026-10-01/DJI.parquet"]
    stored = store.read("run_history", "2026-10-01|DJI")
    pd.testing.assert_frame_equal(stored, history_frame(rows))
    assert stored["duration_seconds"].tolist() == [30.0, 30.0]


def test_retention_never_reaches_into_the_partition_window():
    assert RetentionResource(days=0).first_kept_session() == window_start()
    assert RetentionResource(days=3).first_kept_session() == window_start()
    assert RetentionResource(days=400).first_kept_session() == window_start(days=400)


def test_the_daemon_purges_old_ticks_by_itself(platform):
    """Ticks are the daemon's own to purge, as the instance's `retention:` says (dagster.yaml)."""
    retention = platform.instance.get_settings("retention")

    assert retention["schedule"]["purge_after_days"] == 30
    assert retention["sensor"]["purge_after_days"] == {"skipped": 1, "started": 30, "success": 30, "failure": 30}
