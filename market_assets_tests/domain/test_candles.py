"""Weekly and monthly candles from daily snapshots, on hand-checked numbers."""

import numpy as np
import pandas as pd
import pytest

from market_assets.domain.candles import resample, snapshot
from market_assets.sources.parsing import parse_history_csv
from market_assets_tests.domain.frames import DAYS
from market_assets_tests.universe import FIXTURES


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


def test_weekly_bars_aggregate_each_calendar_week():
    weekly = resample(_daily(DAYS), "week", pd.Timestamp("2026-11-27"), "XNYS")

    # Dated as Stooq dates weeks: by the Sunday that ends them.
    assert list(weekly["date"]) == [pd.Timestamp("2026-11-22"), pd.Timestamp("2026-11-29")]
    assert list(weekly["period_end"]) == list(weekly["date"])
    assert list(weekly["period_start"]) == [pd.Timestamp("2026-11-16"), pd.Timestamp("2026-11-23")]
    assert list(weekly["last_session"]) == [pd.Timestamp("2026-11-20"), pd.Timestamp("2026-11-27")]
    assert list(weekly["sessions"]) == [5, 4]  # Thanksgiving is not a session
    first, second = weekly.iloc[0], weekly.iloc[1]
    assert (first["open"], first["high"], first["low"], first["close"]) == (10.0, 24.0, 5.0, 19.0)
    assert first["volume"] == 100 + 200 + 300 + 400 + 500
    assert (second["open"], second["close"]) == (15.0, 23.0)
    assert second["volume"] == 600 + 700 + 800 + 900
    assert not weekly["incomplete"].any()  # the 27th is the last session of its week


def test_last_bar_is_incomplete_when_the_period_goes_on():
    weekly = resample(_daily(DAYS[:7]), "week", pd.Timestamp("2026-11-24"), "XNYS")
    monthly = resample(_daily(DAYS), "month", pd.Timestamp("2026-11-27"), "XNYS")

    assert list(weekly["incomplete"]) == [False, True]
    # A week still running is dated by its Sunday too; its last session says how far it got.
    assert weekly["date"].iloc[-1] == pd.Timestamp("2026-11-29")
    assert (weekly["last_session"].iloc[-1], weekly["sessions"].iloc[-1]) == (pd.Timestamp("2026-11-24"), 2)
    assert list(monthly["incomplete"]) == [True]  # November 30th is still to come
    assert monthly["volume"].iloc[0] == sum(100.0 * (i + 1) for i in range(9))


def test_month_end_session_completes_the_month():
    dates = ["2026-10-29", "2026-10-30", "2026-11-02"]

    october_end = resample(_daily(dates[:2]), "month", pd.Timestamp("2026-10-30"), "XNYS")
    november = resample(_daily(dates), "month", pd.Timestamp("2026-11-02"), "XNYS")

    assert list(october_end["incomplete"]) == [False]
    # October 31st, a Saturday, labels October; November is labelled by its end, still to come.
    assert list(november["date"]) == [pd.Timestamp("2026-10-31"), pd.Timestamp("2026-11-30")]
    assert list(november["last_session"]) == [pd.Timestamp("2026-10-30"), pd.Timestamp("2026-11-02")]
    assert list(november["period_start"]) == [pd.Timestamp("2026-10-01"), pd.Timestamp("2026-11-01")]
    assert list(november["incomplete"]) == [False, True]


def test_stale_history_does_not_flag_a_finished_week():
    # Data ends on Friday the 20th, the snapshot is for Tuesday the 24th: last week is over.
    weekly = resample(_daily(DAYS[:5]), "week", pd.Timestamp("2026-11-24"), "XNYS")

    assert list(weekly["incomplete"]) == [False]


def test_missing_volume_stays_missing():
    weekly = resample(_daily(DAYS[:2], volume=[None, None]), "week", pd.Timestamp("2026-11-17"), "XNYS")

    assert weekly["volume"].isna().all()


def test_snapshot_drops_rows_after_the_session():
    daily = _daily(DAYS)

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


def test_weekly_bars_join_stooqs_own_weekly_answer_on_its_dates():
    """The recorded WIG20 pair: our weeks of Stooq's daily answer, joined with Stooq's weekly
    answer on `date`, match on every week both hold whole."""
    if not FIXTURES.is_dir():
        pytest.fail(f"recorded Stooq files not found at {FIXTURES}")
    url = "fixture://wig20"
    daily = parse_history_csv((FIXTURES / "wig20_d.csv").read_text(), "WIG20", url)
    stooq = parse_history_csv((FIXTURES / "wig20_w.csv").read_text(), "WIG20", url)
    ours = resample(daily, "week", daily["date"].iloc[-1], "XWAR")

    joined = ours.merge(stooq, on="date", suffixes=("", "_stooq"))

    assert len(joined) == 200 and (joined["date"].dt.day_of_week == 6).all()
    # The recorded daily answer starts on Wednesday 2020-04-15: that first week is whole only in
    # Stooq's weekly answer.
    assert joined["period_start"].iloc[0] < daily["date"].iloc[0]
    whole = joined.iloc[1:]
    for column in ("open", "high", "low", "close"):
        assert (whole[column] == whole[f"{column}_stooq"]).all(), column
    # Stooq prints volumes to 14 significant digits (133021881.30189 for our 133021881.301887).
    assert np.allclose(whole["volume"].astype(float), whole["volume_stooq"].astype(float), rtol=1e-12, atol=0)
