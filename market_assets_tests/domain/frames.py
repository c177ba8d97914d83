"""Hand-made daily bars for the domain's tests."""

import pandas as pd

# NYSE, November 2026: Thanksgiving on Thursday the 26th, an early close on Friday the 27th.
DAYS = [
    "2026-11-16",
    "2026-11-17",
    "2026-11-18",
    "2026-11-19",
    "2026-11-20",
    "2026-11-23",
    "2026-11-24",
    "2026-11-25",
    "2026-11-27",
]


def daily_bars(days: list[str] = DAYS, close: list[float] | None = None) -> pd.DataFrame:
    closes = close or [100.0 + i for i in range(len(days))]
    return pd.DataFrame(
        {
            "date": pd.to_datetime(days),
            "open": [c - 0.5 for c in closes],
            "high": [c + 1.0 for c in closes],
            "low": [c - 1.0 for c in closes],
            "close": closes,
            "volume": pd.array([1000.0] * len(days), dtype="Float64"),
        }
    )
