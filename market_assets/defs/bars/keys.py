"""The bars assets' names and keys, which the step, its checks, the planning and the sensors all name.

Each followed exchange has its own bars assets, on its own partition grid
(`market_assets.defs.partitions.bars_partitions`): their keys are the exchange's code and the asset's
name (`xnys/daily_bars`). The name alone is the asset's folder in the lake, shared by the exchanges,
so the lake's readers find every symbol's bars in one place.
"""

from __future__ import annotations

import dagster as dg

from market_assets.domain.candles import Period

DAILY, WEEKLY, MONTHLY = "daily_bars", "weekly_bars", "monthly_bars"
BARS_ASSETS = (DAILY, WEEKLY, MONTHLY)

PERIODS: dict[str, Period] = {WEEKLY: "week", MONTHLY: "month"}
"""The resampled assets and their candle period."""

ADJUSTMENT_EVENTS = "adjustment_events"


def bars_asset_key(code: str, name: str) -> dg.AssetKey:
    """The key of the bars asset `name` (or `adjustment_events`) of exchange `code`."""
    return dg.AssetKey([code.lower(), name])


def bars_step_name(code: str) -> str:
    """The name of the step (op) that builds exchange `code`'s bars, which run config is keyed by."""
    return f"{code.lower()}_bars"
