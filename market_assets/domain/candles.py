"""Pure transformations of bar frames, free of Dagster (the assets, the benchmarks and the tests
share them): snapshots and weekly/monthly candles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from market_assets.domain.exchange_sessions import next_session

Period = Literal["week", "month"]
_PANDAS_PERIOD = {"week": "W-SUN", "month": "M"}


def period_ordinals(dates: pd.Series | np.ndarray, period: Period) -> np.ndarray:
    """The calendar week (Monday to Sunday) or month of each date, as pandas' period ordinals
    (`W-SUN`, `M`): integers, cheap to compare, computed from the days since 1970-01-01 (a
    Thursday) without building periods."""
    days = np.asarray(dates, dtype="datetime64[ns]").astype("datetime64[D]")
    if period == "week":
        return (days.astype(np.int64) + 3) // 7 + 1
    return days.astype("datetime64[M]").astype(np.int64)


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


def equal_bars(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    """Position by position, whether two equally long frames of bars hold the same bar: the same
    date, prices and volume exactly (a missing volume equals a missing volume). Other columns (the
    stored `symbol`) are ignored. How a snapshot is recognised as another one plus new bars."""
    left, right = bar_columns(a), bar_columns(b)
    same = left.pop("date") == right.pop("date")
    for name, values in left.items():
        same &= (values == right[name]) | (np.isnan(values) & np.isnan(right[name]))
    return same


def candles(daily: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """One candle per run of equal consecutive `labels` of the daily bars, indexed by its label:
    the date of its last bar, the first open, the highest high, the lowest low, the last close and
    the summed volume (missing when no bar has one). `daily` must be in date order. Why runs, not
    a groupby: docs/performance.md#what-brought-the-close-from-55-s-to-11-s."""
    starts = run_starts(labels)
    columns = candle_columns(bar_columns(daily), starts)
    columns["volume"] = pd.array(columns["volume"], dtype="Float64")
    return pd.DataFrame(columns, index=labels[starts])


def period_bounds(ordinals: np.ndarray, period: Period) -> tuple[np.ndarray, np.ndarray]:
    """The first and last calendar day (Monday and Sunday, or the 1st and the month-end) of each
    period ordinal (`period_ordinals`), as datetime64[ns] days."""
    ordinals = np.asarray(ordinals, dtype=np.int64)
    if period == "week":
        starts = (ordinals * 7 - 10).astype("datetime64[D]")
        ends = starts + np.timedelta64(6, "D")
    else:
        starts = ordinals.astype("datetime64[M]").astype("datetime64[D]")
        ends = (ordinals + 1).astype("datetime64[M]").astype("datetime64[D]") - np.timedelta64(1, "D")
    return starts.astype("datetime64[ns]"), ends.astype("datetime64[ns]")


def resample(daily: pd.DataFrame, period: Period, session: pd.Timestamp, calendar: str) -> pd.DataFrame:
    """One bar per calendar week (Monday to Sunday) or month that has at least one session: first
    open, highest high, lowest low, last close, summed volume, dated by the period's last calendar
    day (`date` = `period_end`), with `period_start`, `last_session`, `sessions`, and `incomplete`
    on the last bar when `session` is not its period's last. Why so dated:
    docs/design.md#the-lakes-files-say-what-they-hold."""
    ordinals = period_ordinals(daily["date"], period)
    bars = candles(daily, ordinals)
    labels = bars.index.to_numpy()
    starts, ends = period_bounds(labels, period)
    bars = bars.reset_index(drop=True)
    last_sessions = bars["date"].to_numpy("datetime64[ns]")
    bars["date"] = ends
    bars["period_start"] = starts
    bars["period_end"] = ends
    bars["last_session"] = last_sessions
    bars["sessions"] = np.diff(np.append(run_starts(ordinals), len(ordinals))).astype("int64")
    period_goes_on = in_same_period(next_session(calendar, session), session, period)
    bars["incomplete"] = False
    if len(bars) and period_goes_on and labels[-1] == pd.Period(session, _PANDAS_PERIOD[period]).ordinal:
        bars.loc[bars.index[-1], "incomplete"] = True
    return bars


def with_symbol(bars: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """`bars` with `symbol` as their first column, as the lake stores them: a file, or a folder of
    files read as one table, says whose bars it holds."""
    repeated = pa.array([symbol], pa.large_string()).take(np.zeros(len(bars), dtype=np.int32))
    columns = {"symbol": pd.array(repeated, dtype="string")}
    columns.update((name, bars[name].array) for name in bars.columns if name != "symbol")
    return pd.DataFrame(columns, index=bars.index)
