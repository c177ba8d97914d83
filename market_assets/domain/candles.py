"""Pure transformations of bar frames: snapshots and weekly/monthly candles.

Kept free of Dagster so the same code serves the assets, the benchmarks and the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from market_assets.domain.exchange_sessions import next_session

Period = Literal["week", "month"]
_PANDAS_PERIOD = {"week": "W-SUN", "month": "M"}


def period_ordinals(dates: pd.Series, period: Period) -> np.ndarray:
    """The calendar week (Monday to Sunday) or month of each date, as pandas' period ordinals:
    integers, cheap to compare."""
    return dates.dt.to_period(_PANDAS_PERIOD[period]).array.asi8


def in_same_period(a: pd.Timestamp, b: pd.Timestamp, period: Period) -> bool:
    return pd.Period(a, _PANDAS_PERIOD[period]) == pd.Period(b, _PANDAS_PERIOD[period])


def snapshot(daily: pd.DataFrame, session: pd.Timestamp) -> pd.DataFrame:
    """The history as published after the close of `session`: no row after it."""
    return daily.loc[daily["date"] <= session].reset_index(drop=True)


def run_starts(labels: np.ndarray) -> np.ndarray:
    """Positions where a run of equal consecutive `labels` begins."""
    if len(labels) == 0:
        return np.zeros(0, dtype=np.intp)
    return np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])


def candle_columns(columns: Mapping[str, np.ndarray], starts: np.ndarray) -> dict[str, np.ndarray]:
    """`candles` as arrays, from the daily columns as arrays (`volume` as floats, NaN when missing)."""
    lasts = np.append(starts[1:], len(columns["date"])) - 1 if len(starts) else starts
    volume = columns["volume"]
    present = ~np.isnan(volume)
    counted = np.add.reduceat(present, starts) > 0
    return {
        "date": columns["date"][lasts],
        "open": columns["open"][starts],
        "high": np.fmax.reduceat(columns["high"], starts),
        "low": np.fmin.reduceat(columns["low"], starts),
        "close": columns["close"][lasts],
        "volume": np.where(counted, np.add.reduceat(np.where(present, volume, 0.0), starts), np.nan),
    }


def bar_columns(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    """The date, prices and volume of bars as numpy arrays (volume as floats, NaN when missing)."""
    columns = {"date": bars["date"].to_numpy()}
    for name in ("open", "high", "low", "close"):
        columns[name] = bars[name].to_numpy(float)
    columns["volume"] = bars["volume"].to_numpy(float, na_value=np.nan)
    return columns


def candles(daily: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """One candle per run of equal consecutive `labels` of the daily bars, indexed by its label:
    the date of its last bar, the first open, the highest high, the lowest low, the last close and
    the summed volume (missing when no bar has one).

    Runs, not a groupby: daily bars are in date order (`dates_unique_and_increasing` blocks any
    other), so a period's bars are consecutive, and numpy's `reduceat` over the runs costs a tenth
    of pandas' grouping, which a close pays for every symbol, twice, and again in its checks.
    """
    starts = run_starts(labels)
    columns = candle_columns(bar_columns(daily), starts)
    columns["volume"] = pd.array(columns["volume"], dtype="Float64")
    return pd.DataFrame(columns, index=labels[starts])


def resample(daily: pd.DataFrame, period: Period, session: pd.Timestamp, calendar: str) -> pd.DataFrame:
    """One bar per calendar week (Monday to Sunday) or month that has at least one session.

    Each bar is labelled with the date of its last session; open is the first open, high the
    highest high, low the lowest low, close the last close, and volume the sum of the daily volumes
    (what charts and Stooq's own weekly and monthly files show). `incomplete` marks the last bar
    when `session` is not the last session of its week or month, so readers know it will change.
    """
    periods = period_ordinals(daily["date"], period)
    bars = candles(daily, periods).reset_index(drop=True)
    period_goes_on = in_same_period(next_session(calendar, session), session, period)
    bars["incomplete"] = False
    if len(bars) and period_goes_on and periods[-1] == pd.Period(session, _PANDAS_PERIOD[period]).ordinal:
        bars.loc[bars.index[-1], "incomplete"] = True
    return bars
