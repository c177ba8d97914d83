"""A close through the daemon survives the death of its processes: the real `dagster-daemon`,
the code server it starts and the run worker that server starts, each killed with SIGKILL in the
middle of a close and restarted as a supervisor would restart it (the daemon; it starts a new code
server itself). Nothing is left for a person to do: the close completes, no session is launched
twice, no request slot stays held, every file reads back and the bars equal a fault-free close's.
"""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from market_assets.cli.close import close_index
from market_assets.defs.bars.keys import bars_asset_key
from market_assets.domain.exchange_sessions import calendar, latest_closed_session
from market_assets.lake.datasets import MONTHLY_BARS
from market_assets.settings import ALERT_WEBHOOK_URL, CATCH_UP_SESSIONS, CLOSE_DELAY
from market_assets_tests.daemon_processes import VICTIMS, kill, start_daemon
from market_assets_tests.lake_files import assert_same_bars, bars_frames
from market_assets_tests.platform import open_platform
from market_assets_tests.polling import wait_for
from market_assets_tests.webhook import webhook_receiver
from stooq_server import StooqServer


def _session() -> pd.Timestamp:
    return latest_closed_session("XHKG", pd.Timestamp.now(tz="UTC"))


@pytest.fixture(scope="module")
def hsi_reference(tmp_path_factory, synthetic_universe) -> dict[str, pd.DataFrame]:
    """The bars of a fault-free HSI close of the session the daemon will load."""
    with pytest.MonkeyPatch.context() as monkeypatch, StooqServer(synthetic_universe.data_dir) as server:
        with open_platform(tmp_path_factory.mktemp("hsi-reference"), monkeypatch, server) as platform:
            close_index(platform.instance, "HSI", f"{_session():%Y-%m-%d}")
            return bars_frames(platform.store)


@pytest.fixture
def receiver():
    """A webhook on loopback the platform's alerts go to."""
    with webhook_receiver() as receiver:
        yield receiver


@pytest.mark.timeout(900)
@pytest.mark.parametrize("victim", VICTIMS)
def test_a_close_through_the_daemon_completes_after_sigkill_of_its(
    victim, platform_factory, server_factory, synthetic_universe, hsi_reference, receiver, capsys
):
    now = pd.Timestamp.now(tz="UTC")
    session = _session()
    close = calendar("XHKG").session_close(session)
    delay = math.ceil((now + pd.Timedelta(seconds=75) - close) / pd.Timedelta(minutes=1))
    server = server_factory(latency=0.1)  # a close of some seconds, so that the kill lands in it
    platform = platform_factory(
        server=server,
        **{CLOSE_DELAY.env_var: str(delay), CATCH_UP_SESSIONS.env_var: "1", ALERT_WEBHOOK_URL.env_var: receiver.url},
    )
    day = f"{session:%Y-%m-%d}"
    members = synthetic_universe.members("HSI", session)
    monthly = bars_asset_key("XHKG", MONTHLY_BARS)
    daemon = start_daemon(platform.env)
    try:
        wait_for(lambda: server.stats()["by_route"].get("download", 0) >= 20, 300, "the close's first downloads", 0.2)
        daemon = kill(victim, daemon, platform.env)
        killed = time.time()

        def done() -> bool:
            stored = platform.instance.get_materialized_partitions(monthly)
            busy = platform.instance.get_runs(
                dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED])
            )
            return {f"{day}|{symbol}" for symbol in members} <= stored and not busy

        wait_for(done, 600, "the close to complete by itself", 1)
        slots = wait_for(
            lambda: not platform.instance.event_log_storage.get_concurrency_info("stooq").claimed_slots,
            90,
            "the killed run's request slots to be freed",
            1,
        )
        time.sleep(15)  # two ticks of the alerts sensor, had a failure been left to tell
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)

    lake = Path(platform.store.root)
    last_write = max(path.stat().st_mtime for path in lake.rglob("*.parquet"))
    with capsys.disabled():
        print(f"\n{victim} killed: {last_write - killed:.1f} s from the kill to the last file written")
    assert slots
    runs = platform.instance.get_runs(dg.RunsFilter(job_name="hsi_close"))
    failed = [run for run in runs if run.status == dg.DagsterRunStatus.FAILURE]
    if victim == "code server":  # its run worker outlives it and finishes
        assert failed == []
    else:  # failed (by the code server, or by `abandoned_runs` when that died too), then retried
        assert failed and all(run.tags.get("dagster/will_retry") == "true" for run in failed)
        retried = {run.tags.get("dagster/parent_run_id"): run.status for run in runs}
        assert all(retried.get(run.run_id) == dg.DagsterRunStatus.SUCCESS for run in failed)
    assert receiver.messages == []  # recovered without a person: nobody is called
    originals = [run for run in runs if "dagster/parent_run_id" not in run.tags]
    assert len({run.tags["dagster/run_key"] for run in originals}) == len(originals), "a run launched twice"
    compositions = platform.instance.get_runs(dg.RunsFilter(job_name="index_compositions"))
    assert len([run for run in compositions if "dagster/parent_run_id" not in run.tags]) == 1
    assert not list(lake.rglob("*.tmp"))
    for path in lake.rglob("*.parquet"):
        pq.read_table(path)
    assert_same_bars(bars_frames(platform.store, day), {k: v for k, v in hsi_reference.items() if f"session={day}" in k})
