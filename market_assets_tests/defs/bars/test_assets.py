"""The `bars` step end to end: real instance, real HTTP to the project's server, real parquet."""

import threading
import time
import uuid
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from market_assets.cli.close import CloseFailed, close_index
from market_assets.defs.bars.keys import bars_asset_key
from market_assets.defs.partitions import FIRST_SESSION, bars_partitions
from market_assets.domain.candles import resample, with_symbol
from market_assets.domain.exchange_sessions import calendar
from market_assets.settings import CLOSE_DELAY
from market_assets_tests.universe import last_session, served_daily
from stooq_server import Fault, FaultKind


def test_close_of_an_index_is_one_run_and_writes_consistent_bars(platform, synthetic_universe):
    instance, store, server = platform.instance, platform.store, platform.server
    session = last_session(synthetic_universe, "XNYS")

    outcome = close_index(instance, "DJI", session)

    members = synthetic_universe.members("DJI", pd.Timestamp(session))
    assert sorted(outcome.members) == sorted(members) and len(members) == 30
    assert len(outcome.runs) == 1 and sorted(outcome.runs[0].symbols) == sorted(members)
    assert server.stats()["by_route"]["download"] == 30
    for symbol in members[:5]:
        key = f"{session}|{symbol}"
        daily, weekly, monthly = (store.read(asset, key) for asset in ("daily_bars", "weekly_bars", "monthly_bars"))
        served = served_daily(synthetic_universe, symbol, session)
        assert daily["close"].tolist() == served["close"].tolist()
        assert daily["date"].max() == pd.Timestamp(session)
        assert weekly["close"].iloc[-1] == monthly["close"].iloc[-1] == daily["close"].iloc[-1]
        weeks = daily.groupby(daily["date"].dt.to_period("W-SUN"))["volume"].sum()
        assert weekly["volume"].tolist() == weeks.tolist()
        assert monthly["volume"].sum() == daily["volume"].sum()
    assert Path(store.path("daily_bars", f"{session}|{members[0]}")).is_file()
    assert not list(Path(store.root).rglob("*.tmp"))


def test_a_killed_writes_temporary_files_are_removed_by_the_next_run_of_its_partitions(platform, synthetic_universe):
    store = platform.store
    session = last_session(synthetic_universe, "XNYS")
    member = synthetic_universe.members("DJI", pd.Timestamp(session))[0]
    left = []
    for asset in ("daily_bars", "monthly_bars"):
        folder = Path(store.path(asset, f"{session}|{member}")).parent
        folder.mkdir(parents=True)
        left.append(folder / f".{member}.parquet.{uuid.uuid4().hex}.tmp")
        left[-1].write_bytes(b"PAR1 half a file")
    elsewhere = left[-1].with_name(f".OTHER.US.parquet.{uuid.uuid4().hex}.tmp")  # not a partition of this run
    elsewhere.write_bytes(b"PAR1")

    close_index(platform.instance, "DJI", session)

    assert [path for path in left if path.exists()] == []
    assert elsewhere.exists()
    assert (
        store.read("monthly_bars", f"{session}|{member}")["close"].iloc[-1]
        == served_daily(synthetic_universe, member, session)["close"].iloc[-1]
    )


def test_materializations_carry_metadata_a_person_can_read(platform, synthetic_universe):
    instance, store = platform.instance, platform.store
    session = last_session(synthetic_universe, "XHKG")
    close_index(instance, "HSI", session)
    symbol = synthetic_universe.members("HSI", pd.Timestamp(session))[0]

    event = instance.get_latest_materialization_event(bars_asset_key("XHKG", "daily_bars"))
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=bars_asset_key("XHKG", "daily_bars"), asset_partitions=[f"{session}|{symbol}"]),
        limit=1,
    ).records
    metadata = records[0].asset_materialization.metadata

    assert event is not None
    daily = store.read("daily_bars", f"{session}|{symbol}")
    assert metadata["rows"].value == len(daily)
    assert metadata["last_date"].value == session
    assert metadata["last_close"].value == daily["close"].iloc[-1]
    assert metadata["path"].value == store.path("daily_bars", f"{session}|{symbol}")
    preview = metadata["preview"]
    assert [column.name for column in preview.schema.columns] == ["date", "open", "high", "low", "close", "volume"]
    assert [record.data for record in preview.records] == [
        {
            "date": f"{day:%Y-%m-%d}",
            **{column: float(daily.iloc[i][column]) for column in ("open", "high", "low", "close", "volume")},
        }
        for i, day in zip(range(len(daily) - 5, len(daily)), daily["date"].tail(5))
    ]
    composition = instance.fetch_materializations(dg.AssetKey("index_composition"), limit=1).records
    assert composition[0].asset_materialization.metadata["members"].value == 82


def test_weekly_bars_alone_are_resampled_from_the_stored_snapshots(platform, synthetic_universe):
    """The UI can materialize one of the three bars assets: weekly bars without daily ones ask the
    source for nothing, and refuse partitions whose daily snapshot is not stored, naming them."""
    instance, store, server = platform.instance, platform.store, platform.server
    session = last_session(synthetic_universe, "XNYS")
    outcome = close_index(instance, "DJI", session)
    run = outcome.runs[0]
    weekly = bars_asset_key("XNYS", "weekly_bars")
    key = f"{session}|{run.symbols[0]}"
    Path(store.path("weekly_bars", key)).unlink()
    server.reset_stats()
    close_job = platform.job(run.job_name)

    result = close_job.execute_in_process(instance=instance, tags=run.tags, asset_selection=[weekly])

    assert result.success and server.stats()["total"] == 0
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    assert materialized == {weekly}
    assert len(result.get_asset_materialization_events()) == len(run.symbols)
    expected = with_symbol(resample(store.read("daily_bars", key), "week", pd.Timestamp(session), "XNYS"), run.symbols[0])
    pd.testing.assert_frame_equal(store.read("weekly_bars", key), expected)

    absent = f"{session}|{run.symbols[1]}"
    Path(store.path("daily_bars", absent)).unlink()
    refused = close_job.execute_in_process(instance=instance, tags=run.tags, asset_selection=[weekly], raise_on_error=False)

    assert not refused.success and server.stats()["total"] == 0
    message = next(e for e in refused.all_events if e.is_step_failure).step_failure_data.error.message
    assert f"daily_bars is not stored for 1 of {len(run.symbols)} partitions ({absent}) under " in message


def test_one_failing_symbol_fails_the_run_by_name_and_keeps_the_rest(platform, synthetic_universe):
    instance, store, server = platform.instance, platform.store, platform.server
    session = last_session(synthetic_universe, "XNYS")
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
    new_york = calendar("XNYS").sessions_in_range(FIRST_SESSION, pd.Timestamp.now().normalize())
    hong_kong = set(calendar("XHKG").sessions_in_range(FIRST_SESSION, pd.Timestamp.now().normalize()))
    return f"{[day for day in new_york if day not in hong_kong][-1]:%Y-%m-%d}"


def test_a_day_the_exchange_is_closed_is_refused(platform, synthetic_universe):
    instance, server = platform.instance, platform.server
    day = _new_york_trades_hong_kong_closed()  # a Hong Kong holiday, such as Boxing Day
    with pytest.raises(ValueError, match=f"{day} is not a session of XHKG"):
        close_index(instance, "HSI", day)

    hk_symbol = synthetic_universe.members("HSI", synthetic_universe.last_session["XHKG"])[0]
    instance.add_dynamic_partitions("xhkg_symbols", [hk_symbol])
    # Hong Kong's grid has no cell on its holidays: nothing can ask for one.
    assert not bars_partitions["XHKG"].has_partition_key(f"{day}|{hk_symbol}")
    with pytest.raises(dg.DagsterUnknownPartitionError, match=f"{day}\\|{hk_symbol}"):
        platform.job("hsi_close").execute_in_process(instance=instance, partition_key=f"{day}|{hk_symbol}")
    # A symbol registered by hand on another exchange's grid is refused by its own calendar.
    instance.add_dynamic_partitions("xnys_symbols", [hk_symbol])
    result = platform.job("dji_close").execute_in_process(
        instance=instance, partition_key=f"{day}|{hk_symbol}", raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert f"{hk_symbol}: {day} is not a session of XHKG" in failure.step_failure_data.error.message
    assert server.stats()["by_route"]["download"] == 0


def test_a_symbol_outside_the_index_is_refused(platform, synthetic_universe):
    instance = platform.instance
    session = last_session(synthetic_universe, "XNYS")
    close_index(instance, "DJI", session)
    outsider = sorted(
        set(synthetic_universe.members("NDX", pd.Timestamp(session)))
        - set(synthetic_universe.members("DJI", pd.Timestamp(session)))
    )[0]
    instance.add_dynamic_partitions("xnys_symbols", [outsider])

    result = platform.job("dji_close").execute_in_process(
        instance=instance, partition_key=f"{session}|{outsider}", raise_on_error=False
    )

    failure = next(e for e in result.all_events if e.is_step_failure)
    assert f"{outsider} is not a constituent of DJI on {session}" in failure.step_failure_data.error.message


def test_hits_limit_stops_the_run_asking(platform, synthetic_universe):
    instance, store, server = platform.instance, platform.store, platform.server
    session = last_session(synthetic_universe, "XNYS")
    server.inject(Fault(FaultKind.HITS_LIMIT))

    with pytest.raises(CloseFailed) as caught:
        close_index(instance, "DJI", session)

    downloads = server.stats()["by_route"]["download"]
    assert downloads <= 16 < 30  # at most the requests already in flight (max_concurrency 16)
    assert "30 of 30 symbols failed" in str(caught.value)
    assert "Stooq answered 'Exceeded the daily hits limit' instead of data" in str(caught.value)
    assert "not requested, because Stooq answered 'Exceeded the daily hits limit'" in str(caught.value)
    assert not list(Path(store.root).glob("daily_bars/*/*.parquet"))


def test_a_close_launched_ahead_asks_nothing_before_the_publication(platform, synthetic_universe, monkeypatch):
    """Runs started a head start ahead (as the schedules and the sensor start them) wait in their
    steps: the server sees no request until the session's close + delay."""
    instance, store, server = platform.instance, platform.store, platform.server
    session = synthetic_universe.last_session["XHKG"]
    published = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=15)
    delay = (published - calendar("XHKG").session_close(session)) / pd.Timedelta(minutes=1)
    monkeypatch.setenv(CLOSE_DELAY.env_var, f"{delay:.6f}")
    closing = threading.Thread(target=close_index, args=(instance, "HSI", f"{session:%Y-%m-%d}"))
    closing.start()

    time.sleep(8)
    asked_early = server.stats()["total"]
    closing.join(timeout=600)

    assert asked_early == 0
    assert len(store.partition_keys("monthly_bars")) == 82
    logs = [entry.user_message for run in instance.get_runs() for entry in instance.all_logs(run.run_id)]
    assert any("for Stooq to publish the session" in message for message in logs)
