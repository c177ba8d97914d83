"""Prices as traded and as adjusted on any day, on hand-made bars: a dividend known on the 20th and
a 2-for-1 split known on the 27th, each taking effect on the session it was known."""

import numpy as np
import pandas as pd
import pytest

from market_assets.domain.price_factors import adjusted_as_of, adjustment_factors, as_traded
from market_assets_tests.domain.frames import DAYS, daily_bars

EVENTS = pd.DataFrame(
    {
        "symbol": ["AAA.US", "AAA.US"],
        "effective_date": pd.to_datetime(["2026-11-20", "2026-11-27"]),
        "ratio": [1.01, 2.0],
        "volume_ratio": [1.0, 0.5],
        "session": pd.to_datetime(["2026-11-20", "2026-11-27"]),
    }
)


def _traded() -> pd.DataFrame:
    return daily_bars()


def _adjusted(bars: pd.DataFrame, known_by: str) -> pd.DataFrame:
    """`bars` as Stooq serves them once every event known by `known_by` adjusted the past."""
    out = bars.copy()
    for effective, ratio, volume_ratio, since in zip(
        EVENTS["effective_date"], EVENTS["ratio"], EVENTS["volume_ratio"], EVENTS["session"]
    ):
        if since <= pd.Timestamp(known_by):
            before = out["date"] < effective
            out.loc[before, ["open", "high", "low", "close"]] /= ratio
            out.loc[before, "volume"] /= volume_ratio
    return out


def test_factors_multiply_each_ratio_with_the_later_ones():
    factors = adjustment_factors(EVENTS)

    assert factors["cumulative_factor"].tolist() == pytest.approx([2.02, 2.0])
    assert factors["cumulative_volume_factor"].tolist() == pytest.approx([0.5, 0.5])
    assert factors["known_since"].tolist() == EVENTS["session"].tolist()


def test_as_traded_undoes_every_known_adjustment_from_the_first_live_session_on():
    newest = _adjusted(_traded(), DAYS[-1])

    traded = as_traded(newest, EVENTS, pd.Timestamp(DAYS[2]))

    known = traded["date"] >= pd.Timestamp(DAYS[2])
    pd.testing.assert_frame_equal(traded[known], _traded()[known], check_exact=False, rtol=1e-12)
    assert traded.loc[~known, "close"].isna().all() and traded.loc[~known, "volume"].isna().all()


@pytest.mark.parametrize("day", ["2026-11-19", "2026-11-20", "2026-11-25", DAYS[-1]])
@pytest.mark.parametrize("session", ["2026-11-20", DAYS[-1]])
def test_adjusted_as_of_a_day_is_what_was_served_that_day(session, day):
    snapshot = _adjusted(_traded(), session)

    repriced = adjusted_as_of(snapshot, EVENTS, pd.Timestamp(session), pd.Timestamp(day))

    expected = _adjusted(_traded(), day)
    assert np.allclose(repriced["close"], expected["close"], rtol=1e-12)
    assert np.allclose(repriced["volume"].astype(float), expected["volume"].astype(float), rtol=1e-12)
