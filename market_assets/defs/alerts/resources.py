"""`AlertsResource`: where a failure is told, a Slack-compatible incoming webhook."""

import dagster as dg
import requests
from pydantic import Field

from market_assets import settings
from market_assets.domain.alerts import Alert, masked_url, slack_message


class AlertNotSent(RuntimeError):
    """The webhook did not take an alert; the sensor's tick fails, and the next one tries again."""


class AlertsResource(dg.ConfigurableResource):
    """A webhook told of each failure (none: `webhook_url` empty), and the UI its links point at.
    The webhook's URL is a secret: bound to its variable, masked to its host in every error."""

    webhook_url: str = Field(default=settings.ALERT_WEBHOOK_URL.default, description=settings.ALERT_WEBHOOK_URL.meaning)
    ui_url: str = Field(default=settings.UI_URL.default, description=settings.UI_URL.meaning)
    timeout_seconds: float = Field(default=10.0, description="how long the webhook may take to answer")

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url)

    def run_link(self, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/runs/{run_id}"

    def asset_link(self, key: dg.AssetKey) -> str:
        return f"{self.ui_url.rstrip('/')}/assets/{'/'.join(key.path)}"

    def send(self, alert: Alert) -> None:
        """Post `alert`, without the Stooq API key in it, or fail naming the webhook's host and why."""
        body = slack_message(alert, secrets=[settings.STOOQ_API_KEY.value()])
        try:
            answer = requests.post(self.webhook_url, json=body, timeout=self.timeout_seconds)
            answer.raise_for_status()
        except requests.RequestException as error:
            why = str(error).replace(self.webhook_url, masked_url(self.webhook_url))
            raise AlertNotSent(f"alert {alert.title!r} not sent to {masked_url(self.webhook_url)}: {why}") from None
