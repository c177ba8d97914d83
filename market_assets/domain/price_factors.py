"""Prices as traded, and as adjusted on any day, from the adjustments the platform saw (pure pandas):
a snapshot's bars with the events known by its session undone, or re-applied as known on another
day. Why and how exact: docs/design.md#prices-as-traded-as-adjusted-as-known.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PRICE_COLUMNS = ["open", "high", "low", "close"]

FACTOR_COLUMNS = [
    "symbol",
    "effective_date",
    "ratio",
    "volume_ratio",
    "known_since",
    "cumulative_factor",
    "cumulative_volume_factor",
]


def adjustment_factors(events: pd.DataFrame) -> pd.DataFrame:
    """A row per event of `events` (`adjustment_events` rows with their `session`) that takes
    effect on a date, by symbol and date: its ratios, the session it is known since, and the
    cumulative factors, the products of its ratios and those of the symbol's later events. A
    bar dated before an event's date and on or after the previous event's, of the newest
    snapshot, times the event's `cumulative_factor`, is the bar's price as traded."""
    factors = events.loc[events["effective_date"].notna()].rename(columns={"session": "known_since"})
    factors = factors.assign(volume_ratio=_volume_ratios(factors)).sort_values(["symbol", "effective_date"])
    later_first = factors.iloc[::-1].groupby("symbol", sort=False)
    factors["cumulative_factor"] = later_first["ratio"].cumprod().iloc[::-1]
    factors["cumulative_volume_factor"] = later_first["volume_ratio"].cumprod().iloc[::-1]
    return factors[FACTOR_COLUMNS].reset_index(drop=True)


def repriced(bars: pd.DataFrame, undone: pd.DataFrame, applied: pd.DataFrame) -> pd.DataFrame:
    """`bars` (one symbol's) with the adjustments of the `undone` events taken out and those of the
    `applied` events put in: each bar's prices multiplied by the ratios of the undone events taking
    effect after its date and divided by those of the applied ones; volumes likewise."""
    dates = bars["date"].to_numpy("datetime64[ns]")
    price, volume = np.ones(len(bars)), np.ones(len(bars))
    for events, power in ((undone, 1.0), (applied, -1.0)):
        for effective, ratio, volume_ratio in zip(
            events["effective_date"].to_numpy("datetime64[ns]"), events["ratio"], _volume_ratios(events)
        ):
            after = dates < effective
            price[after] *= ratio**power
            volume[after] *= volume_ratio**power
    out = bars.copy()
    for name in PRICE_COLUMNS:
        out[name] = bars[name].to_numpy(float) * price
    out["volume"] = bars["volume"] * volume
    return out


def as_traded(bars: pd.DataFrame, known: pd.DataFrame, known_from: pd.Timestamp | None) -> pd.DataFrame:
    """`bars` of a snapshot as traded, with `known` the events known by its session: from
    `known_from` on (the symbol's first live snapshot, None when it has none), and missing prices
    and volumes before, which adjustments never seen may have changed."""
    traded = repriced(bars, known, known.iloc[0:0])
    unknown = traded["date"] < known_from if known_from is not None else np.ones(len(traded), dtype=bool)
    traded.loc[unknown, PRICE_COLUMNS] = np.nan
    traded.loc[unknown, "volume"] = pd.NA
    return traded


def adjusted_as_of(bars: pd.DataFrame, events: pd.DataFrame, session: pd.Timestamp, day: pd.Timestamp) -> pd.DataFrame:
    """`bars` of the snapshot of `session` as adjusted on `day`, `events` the symbol's events."""
    since = events["session"]
    undone = events[(since <= session) & (since > day)]
    applied = events[(since > session) & (since <= day)]
    return repriced(bars, undone, applied)


def _volume_ratios(events: pd.DataFrame) -> pd.Series:
    """The events' volume ratios, 1 where none was recorded (an index, or an older event)."""
    if "volume_ratio" not in events:
        return pd.Series(1.0, index=events.index)
    return events["volume_ratio"].astype(float).fillna(1.0)
