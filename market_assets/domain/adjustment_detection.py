"""Adjustment detection (pure pandas): did a new snapshot rewrite the past of the previous one? Each
rewrite becomes an `Adjustment`. Why: docs/design.md#adjustment-detection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

_TOLERANCE = 1e-6
"""Relative difference below which a close counts as unchanged (parquet keeps float64 exactly;
this only absorbs printing round trips)."""

EVENT_COLUMNS = ["symbol", "first_changed_date", "last_changed_date", "effective_date", "ratio", "rows_changed", "volume_ratio"]


@dataclass(frozen=True)
class Adjustment:
    """Past rows of a snapshot that differ from the previous snapshot's."""

    first_changed_date: pd.Timestamp
    last_changed_date: pd.Timestamp
    effective_date: pd.Timestamp | None
    """The first date after the changed rows: where a split takes effect (None if none follows)."""
    ratio: float
    """Previous close / new close over the changed rows (median): 2.0 for a 2-for-1 split."""
    rows_changed: int
    volume_ratio: float = float("nan")
    """Previous volume / new volume over the changed rows (median): 0.5 for a 2-for-1 split, 1.0
    for a dividend (Stooq leaves volumes alone), NaN without volumes."""

    def describe(self) -> str:
        return (
            f"{self.rows_changed} past rows from {self.first_changed_date:%Y-%m-%d} to "
            f"{self.last_changed_date:%Y-%m-%d} changed by a ratio of {self.ratio:g}"
        )


def detect_adjustment(previous: pd.DataFrame, current: pd.DataFrame) -> Adjustment | None:
    """Compare closes on the dates both snapshots hold (a date the new one dropped counts as changed)."""
    both = previous[["date", "close", "volume"]].merge(
        current[["date", "close", "volume"]], on="date", how="left", suffixes=("_before", "_after")
    )
    ratio = both["close_before"] / both["close_after"]
    changed = both[((ratio - 1.0).abs() > _TOLERANCE) | both["close_after"].isna()]
    if changed.empty:
        return None
    last = changed["date"].max()
    later = current.loc[current["date"] > last, "date"]
    with np.errstate(divide="ignore", invalid="ignore"):
        volumes = (changed["volume_before"].astype(float) / changed["volume_after"].astype(float)).replace(
            [np.inf, -np.inf], np.nan
        )
    return Adjustment(
        first_changed_date=changed["date"].min(),
        last_changed_date=last,
        effective_date=later.min() if len(later) else None,
        ratio=_median(ratio[changed.index]),
        rows_changed=len(changed),
        volume_ratio=_median(volumes),
    )


def _median(ratios: pd.Series) -> float:
    return round(float(ratios.median()), 6) if ratios.notna().any() else float("nan")


def adjustment_rows(symbol: str, adjustment: Adjustment | None) -> pd.DataFrame:
    """The rows recording one symbol's adjustment in a session's snapshot (`EVENT_COLUMNS`): one,
    or none. The session is where the lake stores them (its `session=` folder), not a column."""
    rows = [] if adjustment is None else [{"symbol": symbol, **asdict(adjustment)}]
    events = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    for column in ("first_changed_date", "last_changed_date", "effective_date"):
        events[column] = pd.to_datetime(events[column])
    return events.astype({"symbol": "string", "ratio": "float64", "rows_changed": "int64", "volume_ratio": "float64"})
