"""The close schedules at chosen instants: each exchange's regular and early closes, holidays,
weekends, daylight saving time and missed closes."""

import dagster as dg
import pandas as pd
import pytest

from market_assets.defs.compositions.schedules import build_close_schedule
from market_assets.defs.resources import ClosePlanningResource
from market_assets.domain.exchange_sessions import calendar
from market_assets.settings import CLOSE_DELAY, HEAD_START


@pytest.fixture
def instance(platform, monkeypatch):
    monkeypatch.delenv(CLOSE_DELAY.env_var, raising=False)
    monkeypatch.delenv(HEAD_START.env_var, raising=False)
    return platform.instance


def _tick(instance, code: str, local_time: str, catch_up: int = 1):
    """Evaluate the exchange's close schedule as the daemon would at `local_time` (exchange time)."""
    schedule = build_close_schedule(code)
    when = pd.Timestamp(local_time, tz=str(calendar(code).tz))
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=when.to_pydatetime(),
        resources={"planning": ClosePlanningResource(catch_up_sessions=catch_up)},
    ) as context:
        return schedule(context)


def _keys(result) -> list[str]:
    assert isinstance(result, list), f"expected run requests, got {result}"
    return [request.run_key for request in result]


def _mark_loaded(instance, *keys: str) -> None:
    for key in keys:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="index_composition", partition=key))


def test_ticks_follow_regular_and_early_closes_in_exchange_time(monkeypatch):
    monkeypatch.delenv(CLOSE_DELAY.env_var, raising=False)
    monkeypatch.delenv(HEAD_START.env_var, raising=False)
    new_york = build_close_schedule("XNYS")
    hong_kong = build_close_schedule("XHKG")

    # Publication at the close + 30 minutes; the tick a minute ahead (the head start).
    assert new_york.execution_timezone == "America/New_York"
    assert sorted(new_york.cron_schedule) == ["29 13 * * *", "29 16 * * *"]
    assert hong_kong.execution_timezone == "Asia/Hong_Kong"
    assert sorted(hong_kong.cron_schedule) == ["29 12 * * *", "29 16 * * *"]
    monkeypatch.setenv(HEAD_START.env_var, "0")
    assert sorted(build_close_schedule("XNYS").cron_schedule) == ["30 13 * * *", "30 16 * * *"]
    monkeypatch.setenv(HEAD_START.env_var, "90")  # whole minutes for a cron: two
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
    def at(utc: str):
        return _tick(instance, "XNYS", pd.Timestamp(utc, tz="UTC").tz_convert("America/New_York").strftime("%Y-%m-%d %H:%M"))

    assert _keys(at("2026-10-30 20:30")) == ["2026-10-30|DJI", "2026-10-30|NDX"]
    _mark_loaded(instance, "2026-10-30|DJI", "2026-10-30|NDX")
    assert at("2026-11-02 20:30").skip_message.startswith("XNYS session 2026-11-02 is loaded after 16:30 EST")
    assert _keys(at("2026-11-02 21:30")) == ["2026-11-02|DJI", "2026-11-02|NDX"]


def test_catch_up_after_three_missed_sessions_oldest_first(instance):
    _mark_loaded(instance, *(f"{day}|{i}" for day in ["2026-11-16", "2026-11-17", "2026-11-18"] for i in ["DJI", "NDX"]))

    result = _tick(instance, "XNYS", "2026-11-23 16:30", catch_up=5)

    assert _keys(result) == [
        "2026-11-19|DJI",
        "2026-11-19|NDX",
        "2026-11-20|DJI",
        "2026-11-20|NDX",
        "2026-11-23|DJI",
        "2026-11-23|NDX",
    ]
    assert _keys(_tick(instance, "XNYS", "2026-11-23 16:30", catch_up=2))[0] == "2026-11-20|DJI"


def test_a_loaded_session_is_not_launched_again(instance):
    _mark_loaded(instance, "2026-11-24|DJI", "2026-11-24|NDX")

    result = _tick(instance, "XNYS", "2026-11-24 16:30")

    assert result.skip_message == "every XNYS session up to 2026-11-24 is already loaded or launched"
