"""Data-quality rules for bar frames (pure pandas): each takes frames as stored and returns a
`Finding` (whether it holds, the offending dates, a sentence saying what is wrong). Which rules
block and which bars each judges: `market_assets.defs.bars.checks`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from market_assets.domain.candles import (
    Period,
    bar_columns,
    candle_columns,
    in_same_period,
    period_bounds,
    period_ordinals,
    run_starts,
)
from market_assets.domain.exchange_sessions import calendar, next_session
from market_assets.domain.judged_rows import Judged

_PRICES = ["open", "high", "low", "close"]
_SHOWN_DATES = 10
"""Dates named in a finding's sentence; the metadata carries all of them."""


@dataclass(frozen=True)
class Finding:
    """The outcome of one rule on one frame."""

    passed: bool
    description: str
    dates: list[pd.Timestamp] = field(default_factory=list)
    """The offending dates (of bars, or of sessions missing from them), oldest first."""
    judged: Judged | None = None
    """The bars of the snapshot the rule judged, when the checks say it (they do for daily bars)."""

    @classmethod
    def of(cls, dates: Iterable[pd.Timestamp] | np.ndarray, noun: str, problem: str, fine: str) -> Finding:
        """Passed when `dates` is empty; else "<count> <noun(s)> <problem>: <first dates>"."""
        if isinstance(dates, np.ndarray) and not dates.size:
            return cls(True, fine)
        found = sorted(pd.Timestamp(day) for day in dates)
        if not found:
            return cls(True, fine)
        shown = ", ".join(f"{day:%Y-%m-%d}" for day in found[:_SHOWN_DATES])
        more = f" and {len(found) - _SHOWN_DATES} more" if len(found) > _SHOWN_DATES else ""
        nouns = noun if len(found) == 1 else f"{noun}s"
        return cls(False, f"{len(found)} {nouns} {problem}: {shown}{more}", found)


def _dates(bars: pd.DataFrame) -> np.ndarray:
    return bars["date"].to_numpy("datetime64[ns]")


def _prices(bars: pd.DataFrame, name: str) -> np.ndarray:
    return bars[name].to_numpy(float)


# --- Daily bars ---------------------------------------------------------------------------------


def high_low_consistent(bars: pd.DataFrame) -> Finding:
    """High at or above max(open, close), low at or below min(open, close)."""
    open_, close = _prices(bars, "open"), _prices(bars, "close")
    bad = (_prices(bars, "high") < np.fmax(open_, close)) | (_prices(bars, "low") > np.fmin(open_, close))
    return Finding.of(
        _dates(bars)[bad],
        "bar",
        "with high below max(open, close) or low above min(open, close)",
        "every high and low brackets its open and close",
    )


def prices_positive(bars: pd.DataFrame) -> Finding:
    """Every open, high, low and close above zero."""
    bad = np.logical_or.reduce([_prices(bars, name) <= 0 for name in _PRICES])
    return Finding.of(_dates(bars)[bad], "bar", "with a price at or below zero", "every price is positive")


def volume_not_negative(bars: pd.DataFrame) -> Finding:
    """Volume at or above zero where there is one (index series have none)."""
    bad = bars["volume"].to_numpy(float, na_value=np.nan) < 0
    return Finding.of(_dates(bars)[bad], "bar", "with a negative volume", "no volume is negative")


def dates_unique_and_increasing(bars: pd.DataFrame) -> Finding:
    """Each date once, each later than the one before it."""
    fine = "dates are unique and increasing"
    values = _dates(bars)
    if (values[1:] > values[:-1]).all():
        return Finding(True, fine)
    dates = bars["date"]
    repeated = dates.duplicated(keep=False)
    backwards = dates.diff() <= pd.Timedelta(0)
    return Finding.of(dates[repeated | backwards].unique(), "date", "repeated or out of order", fine)


def no_missing_sessions(bars: pd.DataFrame, calendar_code: str) -> Finding:
    """Every session of the exchange between the first and the last bar has a bar (only inside the
    history: the last bar's own date is `ends_at_session`'s concern)."""
    if bars.empty:
        return Finding(True, "no bars")
    exchange = calendar(calendar_code)
    first = max(bars["date"].min(), exchange.first_session)
    sessions = exchange.sessions_in_range(first, bars["date"].max())
    missing = sessions.difference(pd.DatetimeIndex(bars["date"]))
    return Finding.of(missing, "session", f"of {calendar_code} without a bar", f"no session of {calendar_code} is missing")


def ends_at_session(bars: pd.DataFrame, session: pd.Timestamp) -> Finding:
    """The last bar is the partition's own session: an older last bar is stale data."""
    if bars.empty:
        return Finding(False, f"no bars at all; expected the last one on {session:%Y-%m-%d}")
    last = bars["date"].max()
    if last == session:
        return Finding(True, f"the last bar is the session's, {session:%Y-%m-%d}")
    return Finding(
        False,
        f"the last bar is dated {last:%Y-%m-%d}, not the partition's session {session:%Y-%m-%d}",
        [last],
    )


def no_unexplained_jumps(bars: pd.DataFrame, max_move: float, split_dates: Collection[pd.Timestamp] = ()) -> Finding:
    """No close moves by more than `max_move` (0.4 = 40 %) from the previous one, except on a
    date a split is known to take effect (`split_dates`)."""
    close = _prices(bars, "close")
    with np.errstate(divide="ignore", invalid="ignore"):
        move = np.abs(close[1:] / close[:-1] - 1.0)
    jumps = _dates(bars)[1:][move > max_move]
    known = {pd.Timestamp(day) for day in split_dates}
    return Finding.of(
        [day for day in jumps if pd.Timestamp(day) not in known],
        "close",
        f"moved by more than {max_move:.0%} from the previous close without a split",
        f"no close moved by more than {max_move:.0%} without a split",
    )


def close_not_repeated(bars: pd.DataFrame, sessions: int) -> Finding:
    """No close repeated on `sessions` bars in a row: the sign of a feed that stopped updating.

    The offending dates are the repeats after the first bar of each such run.
    """
    close = bars["close"].to_numpy(float)
    starts = run_starts(close)
    lengths = np.diff(np.append(starts, len(close)))
    repeat = (np.repeat(lengths, lengths) >= sessions) & np.r_[False, close[1:] == close[:-1]]
    return Finding.of(
        _dates(bars)[repeat],
        "bar",
        f"repeating the close of the bar before, in a run of {sessions} or more",
        f"no close is repeated on {sessions} bars in a row",
    )


# --- Weekly and monthly bars ------------------------------------------------------------------


def resampled_agree_with_daily(daily: pd.DataFrame, bars: pd.DataFrame, period: Period) -> Finding:
    """Each bar is its period's daily bars: first open, highest high, lowest low, last close,
    summed volume, its last session and number of sessions, and is dated by its period's last
    calendar day (`date` = `period_end`, after `period_start`); every daily bar belongs to a bar.
    A bar's daily rows are found from the bars' own dates, not from calendar periods."""
    daily_columns, bar_dates = bar_columns(daily), bars["date"].to_numpy("datetime64[ns]")
    owner = np.searchsorted(bar_dates, daily_columns["date"], side="left")
    covered = owner < len(bars)
    owner = owner[covered]
    starts = run_starts(owner)
    expected = candle_columns({name: values[covered] for name, values in daily_columns.items()}, starts)
    ordinals = period_ordinals(daily_columns["date"][covered], period)
    new_period = np.r_[False, np.diff(ordinals) != 0]
    one_period = np.add.reduceat(new_period, starts) - new_period[starts] == 0
    period_start, period_end = period_bounds(ordinals[starts], period)
    at = owner[starts]
    actual = {name: values[at] for name, values in bar_columns(bars).items()}
    prices = [np.isclose(expected[name], actual[name], rtol=1e-12) for name in ("open", "high", "low", "close")]
    right = np.zeros(len(bars), dtype=bool)  # a bar that no daily bar falls in is wrong
    right[at] = (
        (expected["date"] == bars["last_session"].to_numpy("datetime64[ns]")[at])
        & (actual["date"] == period_end)
        & (bars["period_end"].to_numpy("datetime64[ns]")[at] == period_end)
        & (bars["period_start"].to_numpy("datetime64[ns]")[at] == period_start)
        & (bars["sessions"].to_numpy()[at] == np.diff(np.append(starts, len(owner))))
        & one_period
        & np.logical_and.reduce(prices)
        & np.isclose(expected["volume"], actual["volume"], rtol=1e-12, equal_nan=True)
    )
    return Finding.of(
        np.concatenate([bar_dates[~right], daily_columns["date"][~covered]]),
        "date",
        f"where the {period}ly bars disagree with the daily bars (a wrong bar, or a day left out)",
        f"every {period}ly bar agrees with its daily bars",
    )


def incomplete_flag_right(bars: pd.DataFrame, period: Period, session: pd.Timestamp, calendar_code: str) -> Finding:
    """`incomplete` is set on the last bar exactly when the session's period has sessions to come."""
    if bars.empty:
        return Finding(True, "no bars")
    goes_on = in_same_period(next_session(calendar_code, session), session, period)
    dates = _dates(bars)
    expected = np.zeros(len(bars), dtype=bool)
    expected[-1] = goes_on and dates[-1] >= np.datetime64(session)
    return Finding.of(
        dates[bars["incomplete"].to_numpy(bool) != expected],
        f"{period}ly bar",
        "with a wrong incomplete flag",
        f"only a {period} with sessions still to come is flagged incomplete",
    )
