"""Pure transformations of bar frames: snapshots and weekly/monthly candles.

Kept free of Dagster so the same code serves the assets, the benchmarks and the tests.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
from pandas.api.typing import DataFrameGroupBy

from market_assets.sessions import next_session

Period = Literal["week", "month"]
_PANDAS_PERIOD = {"week": "W-SUN", "month": "M"}


def period_of(dates: pd.Series, period: Period) -> pd.Series:
    """The calendar week (Monday to Sunday) or month of each date."""
    return dates.dt.to_period(_PANDAS_PERIOD[period])


def snapshot(daily: pd.DataFrame, session: pd.Timestamp) -> pd.DataFrame:
    """The history as published after the close of `session`: no row after it."""
    return daily.loc[daily["date"] <= session].reset_index(drop=True)


def candles(groups: DataFrameGroupBy) -> pd.DataFrame:
    """One candle per group of daily bars: the date of its last bar, the first open, the highest
    high, the lowest low, the last close and the summed volume (missing when no bar has one)."""
    return pd.DataFrame(
        {
            "date": groups["date"].last(),
            "open": groups["open"].first(),
            "high": groups["high"].max(),
            "low": groups["low"].min(),
            "close": groups["close"].last(),
            "volume": groups["volume"].sum(min_count=1).astype("Float64"),
        }
    )


def resample(daily: pd.DataFrame, period: Period, session: pd.Timestamp, calendar: str) -> pd.DataFrame:
    """One bar per calendar week (Monday to Sunday) or month that has at least one session.

    Each bar is labelled with the date of its last session; open is the first open, high the
    highest high, low the lowest low, close the last close, and volume the sum of the daily volumes
    (what charts and Stooq's own weekly and monthly files show). `incomplete` marks the last bar
    when `session` is not the last session of its week or month, so readers know it will change.
    """
    periods = period_of(daily["date"], period)
    bars = candles(daily.groupby(periods, sort=True)).reset_index(drop=True)
    freq = _PANDAS_PERIOD[period]
    session_period = pd.Period(session, freq)
    period_goes_on = pd.Period(next_session(calendar, session), freq) == session_period
    bars["incomplete"] = False
    if len(bars) and period_goes_on and periods.iloc[-1] == session_period:
        bars.loc[bars.index[-1], "incomplete"] = True
    return bars
