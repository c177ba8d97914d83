"""The keys of the bars assets, which the step, its checks, the planning and the sensors all name."""

from __future__ import annotations

import dagster as dg

from market_assets.domain.candles import Period

DAILY, WEEKLY, MONTHLY = dg.AssetKey("daily_bars"), dg.AssetKey("weekly_bars"), dg.AssetKey("monthly_bars")
BARS_ASSETS = (DAILY, WEEKLY, MONTHLY)

PERIODS: dict[dg.AssetKey, Period] = {WEEKLY: "week", MONTHLY: "month"}
"""The resampled assets and their candle period."""

ADJUSTMENT_EVENTS = dg.AssetKey("adjustment_events")
