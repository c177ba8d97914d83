"""Freshness policies: when each exchange's bars assets must have been updated, in Dagster's freshness API.

Dagster evaluates a freshness policy per asset, from the asset's latest materialization of any
partition, and each exchange has bars assets of its own (`keys.py`): their policy follows that
exchange's regular close, in its time zone. Each weekday, by that close plus the exchange's
publication delay (`MARKET_ASSETS_CLOSE_DELAY_MINUTES`, or the longest `publication_delay_minutes`
of its indices) plus `MARKET_ASSETS_FRESHNESS_GRACE_MINUTES` (default 60), the asset must have been
updated that day. A weekday on which the exchange is closed (a holiday) therefore shows as late
until its next close. Whether each (session, symbol) holds its session's bar is the
`ends_at_session` check.

Dagster only evaluates these with `freshness: {enabled: true}` in the instance's `dagster.yaml`.
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
    midnight in its time zone.

    A delay that carries the deadline past midnight moves it to the next day (of a weekday's close).
    """
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
