"""The bars assets' keys, step names and groups: each followed exchange's own (`xnys/daily_bars`),
named after the lake's datasets (`market_assets.lake.datasets`), which the exchanges share."""

from __future__ import annotations

import dagster as dg

from market_assets.domain.candles import Period
from market_assets.lake.datasets import MONTHLY_BARS, WEEKLY_BARS

PERIODS: dict[str, Period] = {WEEKLY_BARS: "week", MONTHLY_BARS: "month"}
"""The resampled assets and their candle period."""


def bars_asset_key(code: str, name: str) -> dg.AssetKey:
    """The key of the bars asset `name` (or `adjustment_events`) of exchange `code`."""
    return dg.AssetKey([code.lower(), name])


def bars_step_name(code: str) -> str:
    """The name of the step (op) that builds exchange `code`'s bars, which run config is keyed by."""
    return f"{code.lower()}_bars"


def bars_group(code: str) -> str:
    """The asset group of exchange `code`'s bars: the UI shows each exchange's chain apart."""
    return f"{code.lower()}_bars"
