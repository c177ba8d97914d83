"""Adjustment detection on hand-made snapshots: a split and a dividend rewrite the past, by their ratio."""

import pandas as pd
import pytest

from market_assets.domain.adjustment_detection import adjustment_rows, detect_adjustment
from market_assets_tests.domain.frames import DAYS, daily_bars


def test_a_split_rewrites_the_past_by_its_ratio():
    previous = daily_bars(DAYS[:-1])
    current = daily_bars()
    current.loc[:7, ["open", "high", "low", "close"]] /= 2.0  # a 2-for-1 split effective on the 27th
    current.loc[:7, "volume"] *= 2

    adjustment = detect_adjustment(previous, current)

    assert adjustment is not None
    assert adjustment.ratio == 2.0 and adjustment.rows_changed == 8 and adjustment.volume_ratio == 0.5
    assert (adjustment.first_changed_date, adjustment.last_changed_date, adjustment.effective_date) == (
        pd.Timestamp("2026-11-16"),
        pd.Timestamp("2026-11-25"),
        pd.Timestamp("2026-11-27"),
    )
    events = adjustment_rows("AAA.US", adjustment)
    assert events.to_dict("records") == [
        {
            "symbol": "AAA.US",
            "first_changed_date": pd.Timestamp("2026-11-16"),
            "last_changed_date": pd.Timestamp("2026-11-25"),
            "effective_date": pd.Timestamp("2026-11-27"),
            "ratio": 2.0,
            "rows_changed": 8,
            "volume_ratio": 0.5,
        }
    ]


def test_an_unchanged_past_is_no_adjustment_and_a_dividend_is_one():
    previous = daily_bars(DAYS[:-1])
    assert detect_adjustment(previous, daily_bars()) is None
    assert adjustment_rows("AAA.US", None).empty

    dividend = daily_bars()
    dividend.loc[:3, "close"] *= 0.99  # only the rows before the 20th, by 1 %
    adjustment = detect_adjustment(previous, dividend)
    assert adjustment is not None and adjustment.rows_changed == 4
    assert adjustment.effective_date == pd.Timestamp("2026-11-20")
    assert adjustment.ratio == pytest.approx(1 / 0.99, rel=1e-6)
    assert adjustment.volume_ratio == 1.0  # a dividend leaves volumes alone
