"""The Dagster platform end to end: real instance, real HTTP to the project's server, real parquet."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from market_assets.bars import resample
from market_assets.close import plan_close_runs
from market_assets.definitions import defs
from market_assets.runner import CloseFailed, close_index
from market_assets.sessions import calendar
from market_assets.storage import ParquetStore
from market_assets.stooq_server import Fault, FaultKind

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def platform(tmp_path, monkeypatch, stooq_server):
    """A fresh Dagster instance and data root, with the source pointed at the project's server."""
    home, lake = tmp_path / "dagster_home", tmp_path / "lake"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MARKET_ASSETS_DATA_ROOT", str(lake))
    monkeypatch.setenv("STOOQ_BASE_URL", stooq_server.url)
    with dg.DagsterInstance.get() as instance:
        yield instance, ParquetStore(str(lake)), stooq_server


def _session(universe, calendar: str) -> str:
    return f"{universe.last_session[calendar]:%Y-%m-%d}"


def _served_daily(universe, symbol: str, session: str) -> pd.DataFrame:
    frame = pd.read_csv(universe.data_dir / "d" / f"{symbol.lower()}.csv", parse_dates=["Date"])
    frame = frame.rename(columns=str.lower)
    return frame[frame["date"] <= pd.Timestamp(session)].reset_index(drop=True)


def test_close_of_an_index_is_one_run_and_writes_consistent_bars(platform, synthetic_universe):
    instance, store, server = platform
    session = _session(synthetic_universe, "XNYS")

    outcome = close_index(instance, "DJI", session)

    members = synthetic_universe.members("DJI", pd.Timestamp(session))
    assert sorted(outcome.members) == sorted(members) and len(members) == 30
    assert len(outcome.runs) == 1 and sorted(outcome.runs[0].symbols) == sorted(members)
    assert server.stats()["by_route"]["download"] == 30
    for symbol in members[:5]:
        key = f"{session}|{symbol}"
        daily, weekly, monthly = (store.read(asset, key) for asset in ("daily_bars", "weekly_bars", "monthly_bars"))
        served = _served_daily(synthetic_universe, symbol, session)
        assert daily["close"].tolist() == served["close"].tolist()
        assert daily["date"].max() == pd.Timestamp(session)
        assert weekly["close"].iloc[-1] == monthly["close"].iloc[-1] == daily["close"].iloc[-1]
        weeks = daily.groupby(daily["date"].dt.to_period("W-SUN"))["volume"].sum()
        assert weekly["volume"].tolist() == weeks.tolist()
        assert monthly["volume"].sum() == daily["volume"].sum()
    assert Path(store.path("daily_bars", f"{session}|{members[0]}")).is_file()
    assert not list(Path(store.root).rglob("*.tmp"))


def test_materializations_carry_metadata_a_person_can_read(platform, synthetic_universe):
    instance, store, _ = platform
    session = _session(synthetic_universe, "XHKG")
    close_index(instance, "HSI", session)
    symbol = synthetic_universe.members("HSI", pd.Timestamp(session))[0]

    event = instance.get_latest_materialization_event(dg.AssetKey("daily_bars"))
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("daily_bars"), asset_partitions=[f"{session}|{symbol}"]),
        limit=1,
    ).records
    metadata = records[0].asset_materialization.metadata

    assert event is not None
    daily = store.read("daily_bars", f"{session}|{symbol}")
    assert metadata["rows"].value == len(daily)
    assert metadata["last_date"].value == session
    assert metadata["last_close"].value == daily["close"].iloc[-1]
    assert metadata["path"].value == store.path("daily_bars", f"{session}|{symbol}")
    assert session in metadata["preview"].value and "| date | open |" in metadata["preview"].value
    composition = instance.fetch_materializations(dg.AssetKey("index_composition"), limit=1).records
    assert composition[0].asset_materialization.metadata["members"].value == 82


def test_rerun_fetches_nothing_and_force_fetches_again(platform, synthetic_universe):
    instance, _, server = platform
    session = _session(synthetic_universe, "XNYS")
    close_index(instance, "DJI", session)
    server.reset_stats()

    again = close_index(instance, "DJI", session)

    assert again.runs == [] and server.stats()["by_route"]["download"] == 0
    forced = close_index(instance, "DJI", session, force=True)
    assert len(forced.runs) == 1 and server.stats()["by_route"]["download"] == 30


def test_weekly_bars_alone_are_resampled_from_the_stored_snapshots(platform, synthetic_universe):
    """The UI can materialize one of the three bars assets: weekly bars without daily ones ask the
    source for nothing, and refuse partitions whose daily snapshot is not stored, naming them."""
    instance, store, server = platform
    session = _session(synthetic_universe, "XNYS")
    outcome = close_index(instance, "DJI", session)
    run = outcome.runs[0]
    weekly = dg.AssetKey("weekly_bars")
    key = f"{session}|{run.symbols[0]}"
    Path(store.path("weekly_bars", key)).unlink()
    server.reset_stats()
    close_job = defs.resolve_job_def(run.job_name)

    result = close_job.execute_in_process(instance=instance, tags=run.tags, asset_selection=[weekly])

    assert result.success and server.stats()["total"] == 0
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    assert materialized == {weekly}
    assert len(result.get_asset_materialization_events()) == len(run.symbols)
    expected = resample(store.read("daily_bars", key), "week", pd.Timestamp(session), "XNYS")
    pd.testing.assert_frame_equal(store.read("weekly_bars", key), expected)

    absent = f"{session}|{run.symbols[1]}"
    Path(store.path("daily_bars", absent)).unlink()
    refused = close_job.execute_in_process(
        instance=instance, tags=run.tags, asset_selection=[weekly], raise_on_error=False
    )

    assert not refused.success and server.stats()["total"] == 0
    message = next(e for e in refused.all_events if e.is_step_failure).step_failure_data.error.message
    assert f"daily_bars is not stored for 1 of {len(run.symbols)} partitions ({absent}) under " in message


def test_shared_members_are_not_fetched_twice(platform, synthetic_universe):
    instance, _, server = platform
    session = pd.Timestamp(_session(synthetic_universe, "XNYS"))
    dji = set(synthetic_universe.members("DJI", session))
    ndx = set(synthetic_universe.members("NDX", session))
    close_index(instance, "DJI", f"{session:%Y-%m-%d}")
    server.reset_stats()

    outcome = close_index(instance, "NDX", f"{session:%Y-%m-%d}")

    loaded = {symbol for run in outcome.runs for symbol in run.symbols}
    assert loaded == ndx - dji and len(dji & ndx) > 0
    assert server.stats()["by_route"]["download"] == len(ndx - dji)


def test_one_failing_symbol_fails_the_run_by_name_and_keeps_the_rest(platform, synthetic_universe):
    instance, store, server = platform
    session = _session(synthetic_universe, "XNYS")
    members = synthetic_universe.members("DJI", pd.Timestamp(session))
    broken = members[3]
    server.inject(Fault(FaultKind.NO_DATA, symbols={broken}))

    with pytest.raises(CloseFailed) as caught:
        close_index(instance, "DJI", session)

    assert "1 of 30 symbols failed" in str(caught.value)
    assert f"{broken}: Stooq answered 'No data'" in str(caught.value)
    assert not store.exists("daily_bars", f"{session}|{broken}")
    assert store.exists("daily_bars", f"{session}|{members[0]}")
    assert server.stats()["by_symbol"][broken] == 1  # 'No data' is not retried

    server.clear_faults()
    server.reset_stats()
    close_index(instance, "DJI", session)
    assert server.stats()["by_route"]["download"] == 1
    assert server.stats()["by_symbol"] == {broken: 1}
    assert store.exists("monthly_bars", f"{session}|{broken}")


def _new_york_trades_hong_kong_closed() -> str:
    """The latest date inside the partitions on which New York trades and Hong Kong is closed."""
    from market_assets.sessions import FIRST_SESSION

    new_york = calendar("XNYS").sessions_in_range(FIRST_SESSION, pd.Timestamp.now().normalize())
    hong_kong = set(calendar("XHKG").sessions_in_range(FIRST_SESSION, pd.Timestamp.now().normalize()))
    return f"{[day for day in new_york if day not in hong_kong][-1]:%Y-%m-%d}"


def test_a_day_the_exchange_is_closed_is_refused(platform, synthetic_universe):
    instance, _, server = platform
    day = _new_york_trades_hong_kong_closed()  # a Hong Kong holiday, such as Boxing Day
    with pytest.raises(ValueError, match=f"{day} is not a session of XHKG"):
        close_index(instance, "HSI", day)

    hk_symbol = synthetic_universe.members("HSI", synthetic_universe.last_session["XHKG"])[0]
    instance.add_dynamic_partitions("symbols", [hk_symbol])
    result = defs.resolve_job_def("hsi_close").execute_in_process(
        instance=instance, partition_key=f"{day}|{hk_symbol}", raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert f"{hk_symbol}: {day} is not a session of XHKG" in failure.step_failure_data.error.message
    assert server.stats()["by_route"]["download"] == 0


def test_a_symbol_outside_the_index_is_refused(platform, synthetic_universe):
    instance, _, _ = platform
    session = _session(synthetic_universe, "XNYS")
    close_index(instance, "DJI", session)
    outsider = sorted(set(synthetic_universe.members("NDX", pd.Timestamp(session)))
                      - set(synthetic_universe.members("DJI", pd.Timestamp(session))))[0]
    instance.add_dynamic_partitions("symbols", [outsider])

    result = defs.resolve_job_def("dji_close").execute_in_process(
        instance=instance, partition_key=f"{session}|{outsider}", raise_on_error=False
    )

    failure = next(e for e in result.all_events if e.is_step_failure)
    assert f"{outsider} is not a constituent of DJI on {session}" in failure.step_failure_data.error.message


def test_plan_splits_only_around_symbols_that_are_not_wanted(platform):
    instance, _, _ = platform
    instance.add_dynamic_partitions("symbols", ["A.US", "B.US", "C.US", "D.US", "E.US"])

    runs = plan_close_runs(instance, "DJI", "2026-11-20", ["A.US", "B.US", "D.US", "E.US"])

    assert [run.symbols for run in runs] == [("A.US", "B.US"), ("D.US", "E.US")]
    assert runs[0].tags["dagster/asset_partition_range_start"] == "2026-11-20|A.US"
    assert runs[1].tags["dagster/asset_partition_range_end"] == "2026-11-20|E.US"
    with pytest.raises(ValueError, match=r"\['Z.US'\] are not registered"):
        plan_close_runs(instance, "DJI", "2026-11-20", ["A.US", "Z.US"])


def _dagster(*args: str) -> subprocess.CompletedProcess:
    executable = Path(sys.executable).with_name("dagster")
    return subprocess.run(
        [str(executable), *args], capture_output=True, text=True, env=os.environ.copy(), timeout=300
    )


@pytest.mark.parametrize("index, calendar", [("DJI", "XNYS"), ("NDX", "XNYS"), ("HSI", "XHKG")])
def test_dagster_job_execute_from_the_command_line(platform, synthetic_universe, index, calendar):
    instance, store, _ = platform
    session = _session(synthetic_universe, calendar)
    composition = _dagster(
        "job", "execute", "-m", "market_assets", "-j", "index_compositions",
        "--tags", json.dumps({"dagster/partition": f"{session}|{index}"}),
    )
    assert composition.returncode == 0, composition.stderr[-3000:]
    members = store.read("index_composition", f"{session}|{index}")["symbol"].tolist()
    order = [s for s in instance.get_dynamic_partitions("symbols") if s in members]

    bars = _dagster(
        "job", "execute", "-m", "market_assets", "-j", f"{index.lower()}_close",
        "--tags", json.dumps({
            "dagster/asset_partition_range_start": f"{session}|{order[0]}",
            "dagster/asset_partition_range_end": f"{session}|{order[-1]}",
        }),
    )

    assert bars.returncode == 0, bars.stderr[-3000:]
    assert sorted(members) == sorted(synthetic_universe.members(index, pd.Timestamp(session)))
    last = order[-1]
    daily = store.read("daily_bars", f"{session}|{last}")
    monthly = store.read("monthly_bars", f"{session}|{last}")
    assert daily["date"].max() == pd.Timestamp(session)
    assert monthly["close"].iloc[-1] == daily["close"].iloc[-1]
    assert monthly["volume"].iloc[-1] == daily.loc[
        daily["date"].dt.to_period("M") == pd.Timestamp(session).to_period("M"), "volume"
    ].sum()
    materialized = instance.get_materialized_partitions(dg.AssetKey("weekly_bars"))
    assert {f"{session}|{s}" for s in members} <= materialized


def test_hits_limit_stops_the_run_asking(platform, synthetic_universe):
    instance, store, server = platform
    session = _session(synthetic_universe, "XNYS")
    server.inject(Fault(FaultKind.HITS_LIMIT))

    with pytest.raises(CloseFailed) as caught:
        close_index(instance, "DJI", session)

    downloads = server.stats()["by_route"]["download"]
    assert downloads <= 16 < 30  # at most the requests already in flight (max_concurrency 16)
    assert "30 of 30 symbols failed" in str(caught.value)
    assert "Stooq answered 'Exceeded the daily hits limit' instead of data" in str(caught.value)
    assert "not requested, because Stooq answered 'Exceeded the daily hits limit'" in str(caught.value)
    assert not list(Path(store.root).glob("daily_bars/*/*.parquet"))


def test_a_session_that_succeeded_is_not_fetched_again(platform, synthetic_universe):
    instance, store, server = platform
    session = _session(synthetic_universe, "XHKG")
    close_index(instance, "HSI", session)
    runs_before = len(instance.get_runs())
    server.reset_stats()

    outcome = close_index(instance, "HSI", session)

    assert outcome.runs == [] and len(instance.get_runs()) == runs_before
    assert server.stats()["total"] == 0


def test_runs_hold_at_most_max_symbols(platform, synthetic_universe, monkeypatch):
    instance, store, server = platform
    session = _session(synthetic_universe, "XNYS")
    monkeypatch.setenv("MARKET_ASSETS_MAX_SYMBOLS_PER_RUN", "7")

    outcome = close_index(instance, "DJI", session)

    assert [len(run.symbols) for run in outcome.runs] == [6, 6, 6, 6, 6]  # 30 by at most 7, evenly
    assert sorted(sum((run.symbols for run in outcome.runs), ())) == sorted(outcome.members)
    assert len(store.partition_keys("monthly_bars")) == 30


def test_a_failed_run_does_not_stop_the_others_of_the_close(platform, synthetic_universe, monkeypatch):
    instance, store, server = platform
    session = _session(synthetic_universe, "XNYS")
    monkeypatch.setenv("MARKET_ASSETS_MAX_SYMBOLS_PER_RUN", "10")
    members = synthetic_universe.members("DJI", session)
    server.inject(Fault(FaultKind.NO_DATA, symbols={members[0]}))

    with pytest.raises(CloseFailed, match=f"{members[0]}: Stooq answered 'No data'"):
        close_index(instance, "DJI", session)

    daily = {key.split("|")[1] for key in store.partition_keys("daily_bars")}
    monthly = {key.split("|")[1] for key in store.partition_keys("monthly_bars")}
    assert daily == set(members) - {members[0]} and server.stats()["by_route"]["download"] == 30
    assert monthly == daily  # the two other runs of 10, and the failed run's other 9 symbols


def test_the_stooq_pool_caps_requests_in_flight_across_runs(platform, server_factory, synthetic_universe, tmp_path):
    """Two closes in two processes at once, with the pool set to 2: never more than 2 requests."""
    instance, store, _ = platform
    server = server_factory(latency=0.05)
    instance.event_log_storage.set_concurrency_slots("stooq", 2)
    env = {**os.environ, "STOOQ_BASE_URL": server.url}
    closes = [
        subprocess.Popen(
            [sys.executable, "-m", "market_assets", "close", index,
             "--session", _session(synthetic_universe, calendar)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for index, calendar in (("DJI", "XNYS"), ("HSI", "XHKG"))
    ]
    outputs = [close.communicate(timeout=600)[0] for close in closes]

    assert [close.returncode for close in closes] == [0, 0], outputs
    stats = server.stats()
    assert stats["by_route"]["download"] == 30 + 82
    assert stats["peak_in_flight"] == 2
    assert instance.event_log_storage.get_concurrency_info("stooq").claimed_slots == []


def test_a_close_launched_ahead_asks_nothing_before_the_publication(platform, synthetic_universe, monkeypatch):
    """Runs started a head start ahead (as the schedules and the sensor start them) wait in their
    steps: the server sees no request until the session's close + delay."""
    instance, store, server = platform
    session = synthetic_universe.last_session["XHKG"]
    published = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=15)
    delay = (published - calendar("XHKG").session_close(session)) / pd.Timedelta(minutes=1)
    monkeypatch.setenv("MARKET_ASSETS_CLOSE_DELAY_MINUTES", f"{delay:.6f}")
    closing = threading.Thread(target=close_index, args=(instance, "HSI", f"{session:%Y-%m-%d}"))
    closing.start()

    time.sleep(8)
    asked_early = server.stats()["total"]
    closing.join(timeout=600)

    assert asked_early == 0
    assert len(store.partition_keys("monthly_bars")) == 82
    logs = [entry.user_message for run in instance.get_runs() for entry in instance.all_logs(run.run_id)]
    assert any("for Stooq to publish the session" in message for message in logs)
