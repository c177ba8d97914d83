"""Freshness policies: when the bars assets must have been updated, in Dagster's freshness API.

Dagster evaluates a freshness policy per asset, from the asset's latest materialization of any
partition, and the bars assets hold the symbols of both exchanges. Their policy follows the day's
last close, New York's (16:00 America/New_York, after Hong Kong's 16:00 the same weekday): each
weekday, by that close plus the publication delay (`MARKET_ASSETS_CLOSE_DELAY_MINUTES`) plus
`MARKET_ASSETS_FRESHNESS_GRACE_MINUTES` (default 60), the asset must have been updated that day
(New York time), which Hong Kong's close of the same weekday (03:00 or 04:00 in New York) also does. A day on which neither exchange trades (New Year, Good Friday,
Christmas) therefore shows as late until the next close. Whether each (session, symbol) holds
its session's bar is the `ends_at_session` check.

Dagster only evaluates these with `freshness: {enabled: true}` in the instance's `dagster.yaml`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg

from market_assets import settings
from market_assets.sources.indices import publication_delay

_MIDNIGHT = datetime(2000, 1, 3)
_LAST_CLOSE = _MIDNIGHT + timedelta(hours=16)
"""New York's regular close, the last close of a weekday among the followed exchanges."""


def bars_freshness_policy() -> dg.FreshnessPolicy:
    """Due each weekday at the New York close plus delay and grace, for updates since midnight.

    A delay that carries the deadline past midnight moves it to the next day (of a weekday's close).
    """
    deadline = _LAST_CLOSE + publication_delay("XNYS") + settings.freshness_grace()
    days_later = (deadline.date() - _MIDNIGHT.date()).days
    weekdays = ",".join(str((day + days_later) % 7) for day in range(1, 6))
    since_midnight = deadline - deadline.replace(hour=0, minute=0)
    return dg.FreshnessPolicy.cron(
        deadline_cron=f"{deadline.minute} {deadline.hour} * * {weekdays}",
        lower_bound_delta=max(since_midnight, timedelta(minutes=1)),
        timezone="America/New_York",
    )


def with_bars_freshness(assets: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """`assets` declaring the bars freshness policy."""
    policy = bars_freshness_policy()
    return assets.map_asset_specs(lambda spec: spec.replace_attributes(freshness_policy=policy))
