"""Nothing lost under faults: real closes through Dagster while the project's server misbehaves.

Every test runs real close runs (a real instance in a temporary `DAGSTER_HOME`, real HTTP to the
project's Stooq-compatible server on loopback, real parquet) and then inspects the instance and the
data root. Bars are compared with a fault-free close of the same session.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from market_assets.cli import main as cli
from market_assets.cli.close import CloseFailed, close_index
from market_assets.defs.bars.keys import bars_asset_key
from market_assets.defs.bars.planning import plan_close_runs
from market_assets.defs.partitions import FIRST_SESSION, composition_key
from market_assets.domain.exchange_sessions import calendar
from market_assets.lake.store import ParquetStore
from market_assets_tests.lake_files import BARS, assert_same_bars, bars_frames
from market_assets_tests.small_volume import fill, small_volume
from market_assets_tests.universe import last_session
from stooq_server import Fault, FaultKind


def _assert_no_partial_parquet(store: ParquetStore) -> int:
    """Every `.parquet` under the root is whole: non-empty and readable to its last row group."""
    files = list(Path(store.root).rglob("*.parquet"))
    for path in files:
        assert path.stat().st_size > 0, f"zero-byte {path}"
        pq.read_table(path)  # raises on a truncated or corrupt file
    return len(files)


def test_transient_errors_and_resets_on_30_percent_of_requests_change_no_bar(platform, synthetic_universe, dji_reference):
    routes = ("download", "composition")
    platform.server.set_faults(
        [Fault(FaultKind.HTTP_503, rate=0.3, routes=routes), Fault(FaultKind.RESET, rate=0.3, routes=routes)]
    )

    close_index(platform.instance, "DJI", last_session(synthetic_universe, "XNYS"))

    stats = platform.server.stats()
    assert stats["faults"]["http_503"] > 0 and stats["faults"]["reset"] > 0
    assert sum(stats["faults"].values()) >= 0.3 * stats["total"], stats
    assert_same_bars(bars_frames(platform.store), dji_reference)
    assert not list(Path(platform.store.root).rglob("*.tmp"))


def test_answers_slower_than_the_read_timeout_are_retried_then_named(platform, synthetic_universe):
    session = last_session(synthetic_universe, "XNYS")
    members = synthetic_universe.members("DJI", pd.Timestamp(session))
    slow = members[4]
    platform.server.inject(Fault(FaultKind.SLOW, symbols={slow}, delay=1.5))
    platform.job("index_compositions").execute_in_process(
        instance=platform.instance, partition_key=str(composition_key(session, "DJI"))
    )
    (run,) = plan_close_runs(platform.instance, "DJI", session, members, max_symbols=200)

    result = platform.job(run.job_name).execute_in_process(
        instance=platform.instance,
        tags=run.tags,
        # Run config replaces the resource's configured fields (dagster-io/dagster#12898): all of them.
        run_config={"resources": {"stooq": {"config": {"base_url": platform.server.url, "read_timeout": 0.3, "retries": 1}}}},
        raise_on_error=False,
    )

    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    text = str(failure.step_failure_data.error.to_string())
    assert f"{slow}: timed out reading after 0.3 s" in text and "retrying may help" in text
    # Two tries per attempt (the client's retry), four attempts (the asset's retry policy).
    assert platform.server.stats()["by_symbol"][slow.upper()] == 2 * 4
    assert not platform.store.exists("daily_bars", f"{session}|{slow}")
    assert all(platform.store.exists("daily_bars", f"{session}|{s}") for s in members if s != slow)


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        (FaultKind.HITS_LIMIT, "Stooq answered 'Exceeded the daily hits limit' instead of data"),
        (FaultKind.CHALLENGE, "Stooq answered with its browser check (a proof-of-work page)"),
    ],
)
def test_a_source_wide_refusal_mid_run_stops_the_asking_and_keeps_what_was_fetched(platform, synthetic_universe, kind, says):
    session = last_session(synthetic_universe, "XNYS")
    members = synthetic_universe.members("DJI", pd.Timestamp(session))
    # Symbols are fetched in the composition's order: the refusals start at the 13th.
    refusing = members[12]
    platform.server.inject(Fault(kind, symbols=set(members[12:])))

    with pytest.raises(CloseFailed) as caught:
        close_index(platform.instance, "DJI", session)

    downloads = platform.server.stats()["by_route"]["download"]
    message = str(caught.value)
    assert says in message and "Retrying now will not help" in message
    assert "not requested, because" in message
    # No hammering: after the first refusal only the requests already in flight complete.
    assert downloads <= 12 + 6, downloads
    fetched = [s for s in members if platform.store.exists("daily_bars", f"{session}|{s}")]
    assert fetched and refusing not in fetched and len(fetched) >= 12 - 6
    assert {f"{session}|{s}" for s in fetched} <= platform.instance.get_materialized_partitions(
        bars_asset_key("XNYS", "daily_bars")
    )
    _assert_no_partial_parquet(platform.store)

    platform.server.clear_faults()
    platform.server.reset_stats()
    close_index(platform.instance, "DJI", session)
    assert platform.server.stats()["by_route"]["download"] == 30 - len(fetched)


@pytest.mark.parametrize(
    ("kind", "says"),
    [(FaultKind.TRUNCATED, "the CSV is truncated"), (FaultKind.GARBLED, "has an unparsable close")],
)
def test_a_damaged_csv_fails_its_partition_alone(platform, synthetic_universe, kind, says):
    session = last_session(synthetic_universe, "XNYS")
    members = synthetic_universe.members("DJI", pd.Timestamp(session))
    damaged = members[7]
    platform.server.inject(Fault(kind, symbols={damaged}))

    with pytest.raises(CloseFailed) as caught:
        close_index(platform.instance, "DJI", session)

    assert "1 of 30 symbols failed" in str(caught.value)
    assert any(line.startswith(f"- {damaged}: ") and says in line for line in str(caught.value).splitlines())
    assert not platform.store.exists("daily_bars", f"{session}|{damaged}")
    assert not list(Path(platform.store.root).rglob(f"*{damaged}*"))
    assert all(platform.store.exists("daily_bars", f"{session}|{s}") for s in members if s != damaged)


def test_a_full_data_root_fails_the_close_naming_the_file_and_loses_nothing(
    tmp_path, platform_factory, synthetic_universe, dji_reference
):
    with small_volume(tmp_path / "lake", 64 * 2**20) as lake:
        platform = platform_factory()
        session = last_session(synthetic_universe, "XNYS")
        earlier = f"{calendar('XNYS').previous_session(session):%Y-%m-%d}"
        close_index(platform.instance, "DJI", earlier)
        # The bars of a stored session; its composition may be replaced by the forced re-run below.
        stored_before = {path: path.read_bytes() for asset in BARS for path in lake.glob(f"{asset}/*/*.parquet")}
        filler = fill(lake, leave_bytes=400_000)  # room for a few of the session's files

        with pytest.raises(CloseFailed) as caught:
            close_index(platform.instance, "DJI", session)
        with pytest.raises(CloseFailed) as forced:  # a forced re-run replaces nothing on a full volume
            close_index(platform.instance, "DJI", earlier, force=True)

        for failure in (caught, forced):
            message = str(failure.value)
            assert f"cannot write {lake}/" in message and ": No space left on device." in message, message
            assert "free space or grow it, then re-run. Retrying now will not help." in message
            assert "the partition's previous file, if any, is still in place" in message
        assert "Exceeded max_retries" not in str(caught.value)  # failed at once: no retry can help
        assert not list(lake.rglob("*.tmp"))
        _assert_no_partial_parquet(platform.store)
        assert [str(path) for path, data in stored_before.items() if path.read_bytes() != data] == []
        written = [path for path in lake.glob(f"daily_bars/session={session}/*.parquet")]
        assert 0 < len(written) < 30, "the volume should fill in the middle of the daily bars"

        filler.unlink()
        close_index(platform.instance, "DJI", session)

        assert_same_bars(bars_frames(platform.store, session), dji_reference)
        assert all(path.read_bytes() == data for path, data in stored_before.items())


def _close_process(platform, session: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "market_assets", "close", "DJI", "--session", session],
        env=platform.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _files(store: ParquetStore, asset: str) -> int:
    return len(list(Path(store.root).glob(f"{asset}/*/*.parquet")))


@pytest.mark.parametrize(
    "kill_when",
    [
        pytest.param(lambda store, server: server.stats()["by_route"]["download"] >= 10, id="while-fetching"),
        pytest.param(lambda store, server: _files(store, "daily_bars") > 0, id="while-daily-bars-are-written"),
        pytest.param(lambda store, server: _files(store, "weekly_bars") > 0, id="while-weekly-bars-are-written"),
        pytest.param(lambda store, server: _files(store, "monthly_bars") > 0, id="while-monthly-bars-are-written"),
    ],
)
def test_sigkill_in_the_middle_of_writing_leaves_no_partial_file_and_a_rerun_completes(
    platform_factory, server_factory, synthetic_universe, dji_reference, kill_when
):
    server = server_factory(latency=0.02)  # so that a kill lands while requests are in flight
    platform = platform_factory(server=server)
    session = last_session(synthetic_universe, "XNYS")
    close = _close_process(platform, session)
    deadline = time.monotonic() + 300
    while not kill_when(platform.store, server) and close.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    close.send_signal(signal.SIGKILL)
    close.communicate(timeout=60)
    assert close.returncode == -signal.SIGKILL, "the close finished before it could be killed"
    _assert_no_partial_parquet(platform.store)
    started = platform.instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    assert started, "the killed run should still be recorded as started"

    close_index(platform.instance, "DJI", session)

    for run in started:
        assert platform.instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    assert platform.instance.event_log_storage.get_concurrency_info("stooq").claimed_slots == []
    assert_same_bars(bars_frames(platform.store), dji_reference)
    _assert_no_partial_parquet(platform.store)


def test_two_closes_of_one_session_at_once_equal_one(platform, synthetic_universe, dji_reference):
    session = last_session(synthetic_universe, "XNYS")
    closes = [_close_process(platform, session) for _ in range(2)]
    outputs = [close.communicate(timeout=600)[0] for close in closes]

    assert [close.returncode for close in closes] == [0, 0], outputs
    _assert_no_partial_parquet(platform.store)
    assert_same_bars(bars_frames(platform.store), dji_reference)


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["close", "SPX"], {}, "Unknown index 'SPX': the known indices are DJI, NDX, HSI."),
        (["close", "DJI", "--session", "2026-13-45"], {}, "'2026-13-45' is not a date; write sessions as YYYY-MM-DD"),
        (["close", "DJI", "--session", "2026-11-26"], {}, "2026-11-26 is not a session of XNYS (the exchange is closed"),
        (
            ["close", "DJI", "--session", "2023-03-17"],
            {},
            f"2023-03-17 is before the partition window, which starts on {FIRST_SESSION} "
            "(MARKET_ASSETS_PARTITION_DAYS=92); set MARKET_ASSETS_PARTITION_DAYS=",
        ),
        (["close", "DJI"], {"MARKET_ASSETS_DATA_ROOT": "{file}/lake"}, "data root {file}/lake is not writable (Not a directory)"),
        (["close", "DJI"], {"STOOQ_BASE_URL": "stooq.com"}, "Stooq base URL 'stooq.com' is not an http(s) URL"),
        (
            ["close", "DJI"],
            {"STOOQ_BASE_URL": "http://127.0.0.1:9"},
            "Stooq base URL http://127.0.0.1:9 cannot be reached (Connection refused)",
        ),
    ],
    ids=[
        "unknown-index",
        "malformed-date",
        "not-a-session",
        "before-the-window",
        "data-root-not-writable",
        "base-url-not-a-url",
        "base-url-unreachable",
    ],
)
def test_bad_input_is_refused_before_any_work(platform, tmp_path, monkeypatch, capsys, args, env, says):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(file=a_file))

    assert cli(args) == 1

    assert says.format(file=a_file) in capsys.readouterr().err
    assert platform.instance.get_runs() == []
    assert platform.server.stats()["total"] == 0
    assert not Path(platform.store.root).exists() or not any(Path(platform.store.root).rglob("*.parquet"))
