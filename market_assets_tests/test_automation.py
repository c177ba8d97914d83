"""Schedules at each exchange close and the composition-to-bars sensor, at chosen instants."""

import math
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from market_assets.definitions import defs
from market_assets.membership import members_on
from market_assets.resources import DataLakeResource
from market_assets.runner import close_index
from market_assets.schedules import CATCH_UP_ENV, build_close_schedule
from market_assets.sessions import DELAY_ENV, HEAD_START_ENV
from market_assets.partitions import bars_partitions, symbol_partitions
from market_assets.sensors import close_bars, partition_status_cache
from market_assets.sessions import calendar, first_session, latest_closed_session
from market_assets.storage import ParquetStore
from market_assets_tests.polling import wait_for

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def instance(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MARKET_ASSETS_DATA_ROOT", str(tmp_path / "lake"))
    monkeypatch.delenv(DELAY_ENV, raising=False)
    monkeypatch.setenv(CATCH_UP_ENV, "1")
    with dg.DagsterInstance.get() as instance:
        yield instance


def _tick(instance, code: str, local_time: str):
    """Evaluate the exchange's close schedule as the daemon would at `local_time` (exchange time)."""
    schedule = build_close_schedule(code)
    when = pd.Timestamp(local_time, tz=str(calendar(code).tz))
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when.to_pydatetime())
    return schedule(context)


def _keys(result) -> list[str]:
    assert isinstance(result, list), f"expected run requests, got {result}"
    return [request.run_key for request in result]


def _mark_loaded(instance, *keys: str) -> None:
    for key in keys:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key="index_composition", partition=key)
        )


def test_ticks_follow_regular_and_early_closes_in_exchange_time(monkeypatch):
    monkeypatch.delenv(DELAY_ENV, raising=False)
    monkeypatch.delenv(HEAD_START_ENV, raising=False)
    new_york = build_close_schedule("XNYS")
    hong_kong = build_close_schedule("XHKG")

    # Publication at the close + 30 minutes; the tick a minute ahead (the head start).
    assert new_york.execution_timezone == "America/New_York"
    assert sorted(new_york.cron_schedule) == ["29 13 * * *", "29 16 * * *"]
    assert hong_kong.execution_timezone == "Asia/Hong_Kong"
    assert sorted(hong_kong.cron_schedule) == ["29 12 * * *", "29 16 * * *"]
    monkeypatch.setenv(HEAD_START_ENV, "0")
    assert sorted(build_close_schedule("XNYS").cron_schedule) == ["30 13 * * *", "30 16 * * *"]
    monkeypatch.setenv(HEAD_START_ENV, "90")  # whole minutes for a cron: two
    assert sorted(build_close_schedule("XHKG").cron_schedule) == ["28 12 * * *", "28 16 * * *"]


def test_a_tick_ahead_of_the_publication_launches_the_session(instance):
    """The 16:29 tick launches the session published at 16:30; its run waits for 16:30."""
    result = _tick(instance, "XNYS", "2026-11-24 16:29")

    assert _keys(result) == ["2026-11-24|DJI", "2026-11-24|NDX"]


def test_normal_close_in_new_york(instance):
    result = _tick(instance, "XNYS", "2026-11-24 16:30")

    assert _keys(result) == ["2026-11-24|DJI", "2026-11-24|NDX"]
    assert [r.partition_key for r in result] == ["2026-11-24|DJI", "2026-11-24|NDX"]
    assert result[0].tags["market_assets/index"] == "DJI"


def test_normal_close_in_hong_kong(instance):
    assert _keys(_tick(instance, "XHKG", "2026-11-25 16:30")) == ["2026-11-25|HSI"]


def test_regular_day_early_tick_waits_for_the_close(instance):
    _mark_loaded(instance, "2026-11-23|DJI", "2026-11-23|NDX")

    result = _tick(instance, "XNYS", "2026-11-24 13:30")

    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == "XNYS session 2026-11-24 is loaded after 16:30 EST (close + delay)"


def test_us_early_close_is_loaded_after_the_early_close(instance):
    # The day after Thanksgiving 2026 closes at 13:00 in New York.
    assert _keys(_tick(instance, "XNYS", "2026-11-27 13:30")) == ["2026-11-27|DJI", "2026-11-27|NDX"]


def test_us_holiday_that_hong_kong_trades(instance):
    _mark_loaded(instance, "2026-11-25|DJI", "2026-11-25|NDX")

    new_york = _tick(instance, "XNYS", "2026-11-26 16:30")
    hong_kong = _tick(instance, "XHKG", "2026-11-26 16:30")

    assert new_york.skip_message == "2026-11-26 is a holiday on XNYS: no session to load"
    assert _keys(hong_kong) == ["2026-11-26|HSI"]


def test_hong_kong_holiday_that_new_york_trades(instance):
    _mark_loaded(instance, "2025-12-24|HSI")

    hong_kong = _tick(instance, "XHKG", "2025-12-26 16:30")
    new_york = _tick(instance, "XNYS", "2025-12-26 16:30")

    assert hong_kong.skip_message == "2025-12-26 is a holiday on XHKG: no session to load"
    assert _keys(new_york) == ["2025-12-26|DJI", "2025-12-26|NDX"]


def test_weekend_launches_nothing(instance):
    _mark_loaded(instance, "2026-11-27|DJI", "2026-11-27|NDX")

    result = _tick(instance, "XNYS", "2026-11-28 16:30")

    assert result.skip_message == "2026-11-28 is a weekend on XNYS: no session to load"


def test_daylight_saving_change_keeps_the_local_close(instance):
    # New York left daylight saving time on 2026-11-01: the 16:00 close moved from 20:00 to 21:00 UTC.
    schedule = build_close_schedule("XNYS")
    before = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=pd.Timestamp("2026-10-30 20:30", tz="UTC").to_pydatetime()
    )
    early = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=pd.Timestamp("2026-11-02 20:30", tz="UTC").to_pydatetime()
    )
    after = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=pd.Timestamp("2026-11-02 21:30", tz="UTC").to_pydatetime()
    )

    assert _keys(schedule(before)) == ["2026-10-30|DJI", "2026-10-30|NDX"]
    _mark_loaded(instance, "2026-10-30|DJI", "2026-10-30|NDX")
    assert schedule(early).skip_message.startswith("XNYS session 2026-11-02 is loaded after 16:30 EST")
    assert _keys(schedule(after)) == ["2026-11-02|DJI", "2026-11-02|NDX"]


def test_catch_up_after_three_missed_sessions_oldest_first(instance, monkeypatch):
    monkeypatch.setenv(CATCH_UP_ENV, "5")
    _mark_loaded(instance, *(f"{day}|{i}" for day in ["2026-11-16", "2026-11-17", "2026-11-18"] for i in ["DJI", "NDX"]))

    result = _tick(instance, "XNYS", "2026-11-23 16:30")

    assert _keys(result) == [
        "2026-11-19|DJI", "2026-11-19|NDX",
        "2026-11-20|DJI", "2026-11-20|NDX",
        "2026-11-23|DJI", "2026-11-23|NDX",
    ]
    monkeypatch.setenv(CATCH_UP_ENV, "2")
    assert _keys(_tick(instance, "XNYS", "2026-11-23 16:30"))[0] == "2026-11-20|DJI"


def test_a_loaded_session_is_not_launched_again(instance):
    _mark_loaded(instance, "2026-11-24|DJI", "2026-11-24|NDX")

    result = _tick(instance, "XNYS", "2026-11-24 16:30")

    assert result.skip_message == "every XNYS session up to 2026-11-24 is already loaded or launched"


def _sensor(instance, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"lake": DataLakeResource()})
    return close_bars(context)


def _compositions(instance, session: str, *indices: str) -> None:
    for index in indices:
        result = defs.resolve_job_def("index_compositions").execute_in_process(
            instance=instance, partition_key=f"{session}|{index}", raise_on_error=False
        )
        assert result.success


def test_sensor_launches_each_index_once_and_shared_symbols_once(instance, monkeypatch, stooq_server, synthetic_universe):
    monkeypatch.setenv("STOOQ_BASE_URL", stooq_server.url)
    session = f"{synthetic_universe.last_session['XNYS']:%Y-%m-%d}"
    _compositions(instance, session, "DJI", "NDX")

    result = _sensor(instance)

    by_job = {}
    for request in result.run_requests:
        by_job.setdefault(request.job_name, []).append(request)
    dji = set(synthetic_universe.members("DJI", session))
    ndx = set(synthetic_universe.members("NDX", session))
    order = instance.get_dynamic_partitions("symbols")

    def symbols(request):
        start = order.index(request.tags["dagster/asset_partition_range_start"].split("|")[1])
        end = order.index(request.tags["dagster/asset_partition_range_end"].split("|")[1])
        return set(order[start : end + 1])

    assert set(by_job) == {"dji_close", "ndx_close"}  # the membership table waits for the close
    assert set().union(*map(symbols, by_job["dji_close"])) == dji
    assert set().union(*map(symbols, by_job["ndx_close"])) == ndx - dji
    assert len(by_job["dji_close"]) == 1
    runs = [
        instance.create_run_for_job(defs.resolve_job_def(r.job_name), tags=r.tags, status=dg.DagsterRunStatus.NOT_STARTED)
        for r in result.run_requests
    ]
    assert not _sensor(instance, cursor=result.cursor).run_requests  # the close runs are in flight

    for run in runs:
        instance.report_run_canceled(run)
    (rebuild,) = _sensor(instance, cursor=result.cursor).run_requests
    assert rebuild.job_name == "refresh_membership"
    instance.create_run_for_job(defs.resolve_job_def(rebuild.job_name), tags={"dagster/run_key": rebuild.run_key})
    assert not _sensor(instance, cursor=result.cursor).run_requests


def test_composition_change_between_two_sessions(instance, monkeypatch, stooq_server, synthetic_universe):
    monkeypatch.setenv("STOOQ_BASE_URL", stooq_server.url)
    changes = synthetic_universe.compositions["DJI"]
    added = changes.dropna(subset=["added"]).iloc[0]
    removed = changes.dropna(subset=["removed"]).iloc[0]
    nyse = calendar("XNYS")
    before = nyse.previous_session(removed["removed"])
    after = synthetic_universe.last_session["XNYS"]
    for session in (before, after):
        stooq_server.as_of = session
        close_index(instance, "DJI", f"{session:%Y-%m-%d}")
    result = defs.resolve_job_def("refresh_membership").execute_in_process(instance=instance)
    assert result.success

    membership = ParquetStore(os.environ["MARKET_ASSETS_DATA_ROOT"]).read("index_membership")
    assert members_on(membership, "DJI", before) == synthetic_universe.members("DJI", before)
    assert members_on(membership, "DJI", after) == synthetic_universe.members("DJI", after)
    left = membership[membership["symbol"] == removed["symbol"]].iloc[0]
    joined = membership[membership["symbol"] == added["symbol"]].iloc[0]
    assert (left["last_seen"], bool(left["current"])) == (before, False)
    assert (joined["first_seen"], bool(joined["current"])) == (after, True)
    assert added["symbol"] in instance.get_dynamic_partitions("symbols")
    assert ParquetStore(os.environ["MARKET_ASSETS_DATA_ROOT"]).exists(
        "daily_bars", f"{after:%Y-%m-%d}|{added['symbol']}"
    )


@pytest.mark.timeout(420)
def test_daemon_runs_the_schedule_and_the_sensor(tmp_path, monkeypatch, stooq_server, synthetic_universe):
    """The real daemon ticks the Hong Kong schedule a minute from now and loads the session."""
    now = pd.Timestamp.now(tz="UTC")
    session = latest_closed_session("XHKG", now)
    close = calendar("XHKG").session_close(session)
    # A delay that puts the next tick about 90 s from now, with this session due at that tick.
    delay = math.ceil((now + pd.Timedelta(seconds=90) - close) / pd.Timedelta(minutes=1))
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MARKET_ASSETS_DATA_ROOT": str(tmp_path / "lake"),
        "STOOQ_BASE_URL": stooq_server.url,
        DELAY_ENV: str(delay),
        CATCH_UP_ENV: "1",
    }
    daemon = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-m", "market_assets"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    try:
        with dg.DagsterInstance.get() as instance:

            def succeeded(job: str) -> list[dg.DagsterRun]:
                return instance.get_runs(
                    dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.SUCCESS])
                )

            composition = wait_for(lambda: succeeded("index_compositions"), 240, "the schedule's run", interval=2)
            bars = wait_for(lambda: succeeded("hsi_close"), 150, "the sensor's bars run", interval=2)
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)

    assert composition[0].tags["dagster/schedule_name"] == "xhkg_close"
    assert composition[0].tags["dagster/partition"] == f"{session:%Y-%m-%d}|HSI"
    assert bars[0].tags["dagster/sensor_name"] == "close_bars"
    store = ParquetStore(str(tmp_path / "lake"))
    symbol = synthetic_universe.members("HSI", session)[0]
    assert store.read("monthly_bars", f"{session:%Y-%m-%d}|{symbol}")["date"].max() == session


def test_definitions_load_as_a_code_location():
    dg.Definitions.validate_loadable(defs)

    assert {job.name for job in defs.resolve_all_job_defs()} >= {
        "index_compositions", "refresh_membership", "dji_close", "ndx_close", "hsi_close"
    }


def test_at_the_close_bars_start_with_the_previous_members(instance, monkeypatch, stooq_server, synthetic_universe):
    """A due session whose composition is not stored yet gets its bars run at once, by the
    previous session's list; the composition, once stored, adds nothing already in flight."""
    monkeypatch.setenv("STOOQ_BASE_URL", stooq_server.url)
    latest = synthetic_universe.last_session["XHKG"]
    previous = f"{calendar('XHKG').previous_session(latest):%Y-%m-%d}"
    session = f"{latest:%Y-%m-%d}"
    _compositions(instance, previous, "HSI")

    result = _sensor(instance)

    (request,) = [r for r in result.run_requests if r.tags.get("market_assets/session") == session]
    assert request.job_name == "hsi_close" and request.tags["market_assets/session"] == session
    assert request.run_key == f"{session}|HSI|close|0"
    members = synthetic_universe.members("HSI", previous)
    assert request.tags["dagster/asset_partition_range_start"] == f"{session}|{members[0]}"
    assert request.tags["dagster/asset_partition_range_end"] == f"{session}|{members[-1]}"
    job = defs.resolve_job_def("hsi_close")
    instance.create_run_for_job(job, tags=request.tags, status=dg.DagsterRunStatus.NOT_STARTED)

    _compositions(instance, session, "HSI")
    after = _sensor(instance, cursor=result.cursor)

    assert not after.run_requests  # nothing missing; the membership table waits for the close run


def test_the_partition_status_cache_is_rebuilt_when_the_window_moves(instance):
    """After the rolling window's start moves, the sensor rebuilds the status Dagster cached for
    the old window, so the UI's first partition query finds it ready; then it has nothing to do."""
    daily = dg.AssetKey("daily_bars")
    session = f"{latest_closed_session('XNYS'):%Y-%m-%d}"
    instance.add_dynamic_partitions(symbol_partitions.name, ["AAPL.US", "MSFT.US"])
    for symbol in ("AAPL.US", "MSFT.US"):
        instance.report_runless_asset_event(dg.AssetMaterialization(daily, partition=f"{session}|{symbol}"))
    last_month = first_session(pd.Timestamp.now() - pd.DateOffset(months=1))
    assert last_month != first_session()
    old_window = dg.MultiPartitionsDefinition(
        {
            "date": dg.TimeWindowPartitionsDefinition(cron_schedule="0 0 * * 1-5", fmt="%Y-%m-%d", start=last_month, end_offset=1),
            "symbol": symbol_partitions,
        }
    )
    instance.get_status_by_partition(daily, [], old_window)  # the UI's query before the move

    def cached():
        (record,) = instance.get_asset_records([daily])
        return record.asset_entry.cached_status

    def identifier(definition: dg.MultiPartitionsDefinition) -> str:
        with dg.partition_loading_context(dynamic_partitions_store=instance):
            return definition.get_serializable_unique_identifier()

    assert cached().partitions_def_id == identifier(old_window)
    context = dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())

    moved = partition_status_cache(context)

    assert "rebuilt the partition-status cache of daily_bars" in moved.skip_message
    assert cached().partitions_def_id == identifier(bars_partitions)
    materialized = cached().deserialize_materialized_partition_subsets(bars_partitions)
    assert set(materialized.get_partition_keys()) == {f"{session}|AAPL.US", f"{session}|MSFT.US"}
    assert partition_status_cache(context).skip_message == "every cached partition status matches its asset's partitions"
