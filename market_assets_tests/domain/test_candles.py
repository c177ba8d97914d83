"""Weekly and monthly candles from daily snapshots, on hand-checked numbers."""

import pandas as pd

from market_assets.domain.candles import resample, snapshot


def _daily(dates: list[str], volume: list[float | None] | None = None) -> pd.DataFrame:
    n = len(dates)
    return pd.DataFrame(
        {
            "date": pd.to_datetime(dates),
            "open": [10.0 + i for i in range(n)],
            "high": [20.0 + i for i in range(n)],
            "low": [5.0 + i for i in range(n)],
            "close": [15.0 + i for i in range(n)],
            "volume": pd.array(volume or [100.0 * (i + 1) for i in range(n)], dtype="Float64"),
        }
    )


# NYSE, late November 2026: Thanksgiving on Thursday the 26th, an early close on Friday the 27th.
WEEK = ["2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20",
        "2026-11-23", "2026-11-24", "2026-11-25", "2026-11-27"]


def test_weekly_bars_aggregate_each_calendar_week():
    weekly = resample(_daily(WEEK), "week", pd.Timestamp("2026-11-27"), "XNYS")

    assert list(weekly["date"]) == [pd.Timestamp("2026-11-20"), pd.Timestamp("2026-11-27")]
    first, second = weekly.iloc[0], weekly.iloc[1]
    assert (first["open"], first["high"], first["low"], first["close"]) == (10.0, 24.0, 5.0, 19.0)
    assert first["volume"] == 100 + 200 + 300 + 400 + 500
    assert (second["open"], second["close"]) == (15.0, 23.0)
    assert second["volume"] == 600 + 700 + 800 + 900
    assert not weekly["incomplete"].any()  # the 27th is the last session of its week


def test_last_bar_is_incomplete_when_the_period_goes_on():
    weekly = resample(_daily(WEEK[:7]), "week", pd.Timestamp("2026-11-24"), "XNYS")
    monthly = resample(_daily(WEEK), "month", pd.Timestamp("2026-11-27"), "XNYS")

    assert list(weekly["incomplete"]) == [False, True]
    assert weekly["date"].iloc[-1] == pd.Timestamp("2026-11-24")
    assert list(monthly["incomplete"]) == [True]  # November 30th is still to come
    assert monthly["volume"].iloc[0] == sum(100.0 * (i + 1) for i in range(9))


def test_month_end_session_completes_the_month():
    dates = ["2026-10-29", "2026-10-30", "2026-11-02"]

    october_end = resample(_daily(dates[:2]), "month", pd.Timestamp("2026-10-30"), "XNYS")
    november = resample(_daily(dates), "month", pd.Timestamp("2026-11-02"), "XNYS")

    assert list(october_end["incomplete"]) == [False]
    assert list(november["date"]) == [pd.Timestamp("2026-10-30"), pd.Timestamp("2026-11-02")]
    assert list(november["incomplete"]) == [False, True]


def test_stale_history_does_not_flag_a_finished_week():
    # Data ends on Friday the 20th, the snapshot is for Tuesday the 24th: last week is over.
    weekly = resample(_daily(WEEK[:5]), "week", pd.Timestamp("2026-11-24"), "XNYS")

    assert list(weekly["incomplete"]) == [False]


def test_missing_volume_stays_missing():
    weekly = resample(_daily(WEEK[:2], volume=[None, None]), "week", pd.Timestamp("2026-11-17"), "XNYS")

    assert weekly["volume"].isna().all()


def test_snapshot_drops_rows_after_the_session():
    daily = _daily(WEEK)

    assert snapshot(daily, pd.Timestamp("2026-11-20"))["date"].max() == pd.Timestamp("2026-11-20")
    assert len(snapshot(daily, pd.Timestamp("2026-11-20"))) == 5


def test_hong_kong_calendar_decides_completeness():
    # 2026-12-24 is a Hong Kong half-day before Christmas holidays: the next session, the 28th, is in
    # the next week but the same month.
    daily = _daily(["2026-12-23", "2026-12-24"])

    weekly = resample(daily, "week", pd.Timestamp("2026-12-24"), "XHKG")
    monthly = resample(daily, "month", pd.Timestamp("2026-12-24"), "XHKG")

    assert list(weekly["incomplete"]) == [False]
    assert list(monthly["incomplete"]) == [True]
