"""The data-quality rules on hand-made frames with hand-checked answers."""

import pandas as pd
import pytest

from market_assets.domain import quality_rules as rules
from market_assets.domain.candles import resample
from market_assets_tests.domain.frames import DAYS, daily_bars


def _dates(finding) -> list[str]:
    return [f"{day:%Y-%m-%d}" for day in finding.dates]


def test_clean_bars_pass_every_daily_rule():
    bars = daily_bars()
    session = pd.Timestamp(DAYS[-1])
    for finding in (
        rules.high_low_consistent(bars),
        rules.prices_positive(bars),
        rules.volume_not_negative(bars),
        rules.dates_unique_and_increasing(bars),
        rules.no_missing_sessions(bars, "XNYS"),
        rules.ends_at_session(bars, session),
        rules.no_unexplained_jumps(bars, 0.4),
        rules.close_not_repeated(bars, 5),
    ):
        assert finding.passed and finding.dates == [], finding


def test_high_below_the_close_and_low_above_the_open_are_named():
    bars = daily_bars()
    bars.loc[2, "high"] = bars.loc[2, "close"] - 0.1
    bars.loc[5, "low"] = bars.loc[5, "open"] + 0.1

    finding = rules.high_low_consistent(bars)

    assert not finding.passed and _dates(finding) == ["2026-11-18", "2026-11-23"]
    assert finding.description == (
        "2 bars with high below max(open, close) or low above min(open, close): 2026-11-18, 2026-11-23"
    )


def test_zero_price_and_negative_volume_are_named_and_missing_volume_is_fine():
    bars = daily_bars()
    bars.loc[1, "low"] = 0.0
    bars.loc[3, "volume"] = -5.0
    bars.loc[4, "volume"] = pd.NA

    assert _dates(rules.prices_positive(bars)) == ["2026-11-17"]
    assert _dates(rules.volume_not_negative(bars)) == ["2026-11-19"]


def test_repeated_and_backward_dates_are_named():
    bars = daily_bars()
    bars.loc[4, "date"] = pd.Timestamp("2026-11-19")  # repeats the 19th
    bars.loc[7, "date"] = pd.Timestamp("2026-11-10")  # goes back in time

    finding = rules.dates_unique_and_increasing(bars)

    assert _dates(finding) == ["2026-11-10", "2026-11-19"]


def test_a_missing_session_is_named_but_a_holiday_and_a_late_listing_are_not():
    bars = daily_bars().drop(index=[0, 5]).reset_index(drop=True)  # listed on the 17th; no bar on the 23rd

    finding = rules.no_missing_sessions(bars, "XNYS")

    assert _dates(finding) == ["2026-11-23"]  # Thanksgiving, the 26th, is no session
    assert finding.description == "1 session of XNYS without a bar: 2026-11-23"


def test_a_last_bar_older_than_the_session_is_stale():
    finding = rules.ends_at_session(daily_bars(DAYS[:-1]), pd.Timestamp("2026-11-27"))

    assert not finding.passed and _dates(finding) == ["2026-11-25"]
    assert finding.description == "the last bar is dated 2026-11-25, not the partition's session 2026-11-27"
    assert not rules.ends_at_session(daily_bars([]), pd.Timestamp("2026-11-27")).passed


def test_a_jump_is_named_unless_a_split_takes_effect_that_day():
    closes = [100.0, 101.0, 50.0, 51.0, 52.0, 80.0, 81.0, 82.0, 83.0]
    bars = daily_bars(close=closes)

    assert _dates(rules.no_unexplained_jumps(bars, 0.4)) == ["2026-11-18", "2026-11-23"]
    assert _dates(rules.no_unexplained_jumps(bars, 0.4, [pd.Timestamp("2026-11-18")])) == ["2026-11-23"]
    assert rules.no_unexplained_jumps(bars, 0.6, [pd.Timestamp("2026-11-18")]).passed


def test_a_close_repeated_for_n_bars_is_a_stale_feed():
    closes = [100.0, 101.0, 102.0, 102.0, 102.0, 102.0, 102.0, 103.0, 103.0]
    bars = daily_bars(close=closes)

    assert _dates(rules.close_not_repeated(bars, 5)) == ["2026-11-19", "2026-11-20", "2026-11-23", "2026-11-24"]
    assert rules.close_not_repeated(bars, 6).passed


@pytest.mark.parametrize("period", ["week", "month"])
def test_resampled_bars_agree_with_their_daily_bars(period):
    daily = daily_bars()
    session = pd.Timestamp("2026-11-25")
    bars = resample(daily[daily["date"] <= session], period, session, "XNYS")

    assert rules.resampled_agree_with_daily(daily[daily["date"] <= session], bars, period).passed
    assert rules.incomplete_flag_right(bars, period, session, "XNYS").passed


def test_bars_without_volume_agree_and_a_volume_where_there_is_none_does_not():
    daily = daily_bars().assign(volume=pd.array([None] * len(DAYS), dtype="Float64"))
    weekly = resample(daily, "week", pd.Timestamp("2026-11-27"), "XNYS")

    assert weekly["volume"].isna().all() and rules.resampled_agree_with_daily(daily, weekly, "week").passed
    weekly.loc[1, "volume"] = 0.0
    assert _dates(rules.resampled_agree_with_daily(daily, weekly, "week")) == ["2026-11-29"]


def test_a_wrong_weekly_bar_and_a_left_out_day_are_named():
    daily = daily_bars()
    weekly = resample(daily, "week", pd.Timestamp("2026-11-27"), "XNYS")
    tampered = weekly.copy()
    tampered.loc[0, "volume"] = 1.0

    assert _dates(rules.resampled_agree_with_daily(daily, tampered, "week")) == ["2026-11-22"]
    assert _dates(rules.resampled_agree_with_daily(daily, weekly.iloc[:1], "week")) == [
        "2026-11-23",
        "2026-11-24",
        "2026-11-25",
        "2026-11-27",
    ]
    merged = weekly.iloc[1:].reset_index(drop=True)  # one bar over two weeks
    assert _dates(rules.resampled_agree_with_daily(daily, merged, "week")) == ["2026-11-29"]


def test_a_bar_that_misstates_its_period_is_named():
    daily = daily_bars()
    weekly = resample(daily, "week", pd.Timestamp("2026-11-27"), "XNYS")
    by_last_session = weekly.assign(date=weekly["last_session"], period_end=weekly["last_session"])
    miscounted = weekly.assign(sessions=[5, 5])
    misstarted = weekly.assign(period_start=weekly["period_start"] + pd.Timedelta(days=1))

    assert _dates(rules.resampled_agree_with_daily(daily, by_last_session, "week")) == ["2026-11-20", "2026-11-27"]
    assert _dates(rules.resampled_agree_with_daily(daily, miscounted, "week")) == ["2026-11-29"]
    assert _dates(rules.resampled_agree_with_daily(daily, misstarted, "week")) == ["2026-11-22", "2026-11-29"]


def test_a_wrong_incomplete_flag_is_named():
    daily = daily_bars()
    weekly = resample(daily, "week", pd.Timestamp("2026-11-27"), "XNYS")  # the 27th ends its week
    flagged = weekly.assign(incomplete=[False, True])
    monthly = resample(daily, "month", pd.Timestamp("2026-11-27"), "XNYS")  # November goes on

    assert _dates(rules.incomplete_flag_right(flagged, "week", pd.Timestamp("2026-11-27"), "XNYS")) == ["2026-11-29"]
    assert bool(monthly["incomplete"].iloc[-1])
    unflagged = monthly.assign(incomplete=False)
    assert _dates(rules.incomplete_flag_right(unflagged, "month", pd.Timestamp("2026-11-27"), "XNYS")) == ["2026-11-30"]
