"""Incremental daily histories (pure pandas): a symbol's new snapshot from its previous one and the
few bars Stooq publishes from shortly before that snapshot's end (the overlap, compared value for
value). Why, and what the overlap cannot see: docs/design.md#incremental-downloads.
"""

from __future__ import annotations

import pandas as pd

from market_assets.domain.candles import equal_bars

OVERLAP_BARS = 5
"""Bars of the previous snapshot asked for again and compared: a rewrite of the past changes all of them."""


def overlap_start(previous: pd.DataFrame) -> pd.Timestamp | None:
    """The date from which to ask for bars again: the first of `previous`'s last `OVERLAP_BARS`
    (None when it has no bar: there is nothing to extend)."""
    if previous.empty:
        return None
    return pd.Timestamp(previous["date"].iloc[max(0, len(previous) - OVERLAP_BARS)])


def extend(previous: pd.DataFrame, recent: pd.DataFrame, since: pd.Timestamp) -> pd.DataFrame | None:
    """`previous` followed by the bars of `recent` after its last bar, when `recent` (the bars
    published from `since` on) holds `previous`'s bars from `since` to its end unchanged, date for
    date and value for value; None otherwise (the past was rewritten, or the answer is not the one
    asked for: it starts elsewhere, misses a bar, or its dates do not increase). Columns:
    `date, open, high, low, close, volume`."""
    columns = ["date", "open", "high", "low", "close", "volume"]
    last = previous["date"].iloc[-1]
    stored = previous.loc[previous["date"] >= since, columns].reset_index(drop=True)
    dates = recent["date"].to_numpy()
    if len(dates) < len(stored) or (len(dates) > 1 and not (dates[1:] > dates[:-1]).all()):
        return None
    again = recent.iloc[: len(stored)].reset_index(drop=True)
    if not equal_bars(stored, again).all() or (len(recent) > len(stored) and recent["date"].iloc[len(stored)] <= last):
        return None
    added = recent.iloc[len(stored) :][columns]
    if added.empty:
        return previous[columns].reset_index(drop=True)
    return pd.concat([previous[columns], added.astype(previous[columns].dtypes.to_dict())], ignore_index=True)
