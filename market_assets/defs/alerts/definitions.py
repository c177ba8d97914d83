"""The alerts domain's definitions: failed runs and late bars told to a webhook."""

import dagster as dg

from market_assets import settings
from market_assets.defs.alerts.resources import AlertsResource
from market_assets.defs.alerts.sensors import close_failure_alerts, freshness_alerts
from market_assets.defs.resources import bound


def alerts_definitions() -> dg.Definitions:
    """The alert sensors and the `alerts` resource (the webhook and the UI's address)."""
    return dg.Definitions(
        sensors=[close_failure_alerts, freshness_alerts],
        resources={"alerts": AlertsResource(webhook_url=bound(settings.ALERT_WEBHOOK_URL), ui_url=bound(settings.UI_URL))},
    )
