"""Freshness policies: when each exchange's bars assets must have been updated (each weekday, by
its regular close plus delay and grace), in Dagster's freshness API. Why: docs/design.md#freshness.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg

from market_assets import settings
from market_assets.defs.partitions import FIRST_SESSION
from market_assets.domain.close_timing import regular_close
from market_assets.domain.exchange_sessions import calendar
from market_assets.sources.indices import publication_delay

_MIDNIGHT = datetime(2000, 1, 3)
"""A Monday, the day the deadline is computed on (weekdays are counted from it)."""


def bars_freshness_policy(code: str) -> dg.FreshnessPolicy:
    """Due each weekday at exchange `code`'s regular close plus delay and grace, for updates since
    midnight in its time zone; a deadline carried past midnight falls on the next day."""
    close = datetime.combine(_MIDNIGHT.date(), regular_close(code, FIRST_SESSION))
    deadline = close + publication_delay(code) + settings.freshness_grace()
    days_later = (deadline.date() - _MIDNIGHT.date()).days
    weekdays = ",".join(str((day + days_later) % 7) for day in range(1, 6))
    since_midnight = deadline - deadline.replace(hour=0, minute=0)
    return dg.FreshnessPolicy.cron(
        deadline_cron=f"{deadline.minute} {deadline.hour} * * {weekdays}",
        lower_bound_delta=max(since_midnight, timedelta(minutes=1)),
        timezone=str(calendar(code).tz),
    )


def with_bars_freshness(assets: dg.AssetsDefinition, code: str) -> dg.AssetsDefinition:
    """`assets`, the bars of exchange `code`, declaring its freshness policy."""
    policy = bars_freshness_policy(code)
    return assets.map_asset_specs(lambda spec: spec.replace_attributes(freshness_policy=policy))
