"""What a person is told when a close goes wrong: one alert per failure, as Slack-compatible JSON,
worded from the facts the sensors gather. Why: docs/design.md#alerts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

_MASK = "***"
_LISTED_SYMBOLS = 10
_WHAT_CHARS = 1500
"""Slack shows a section's text up to 3,000 characters; the failure's first lines say enough."""


@dataclass(frozen=True)
class Alert:
    """One failure, as a person needs to hear of it."""

    kind: str
    """What went wrong: `close run failed`, `blocking check failed`, `composition run failed`,
    `damaged files found`, `bars late`."""
    index: str
    session: str
    symbols: tuple[str, ...]
    what: str
    """What went wrong, in the failure's own words (its exception's class name is left out)."""
    link: str

    @property
    def title(self) -> str:
        return f"{self.index} {self.session}: {self.kind}"


def slack_message(alert: Alert, secrets: Iterable[str] = ()) -> dict:
    """The webhook's JSON body: a `text` (what notifications and clients without blocks show) and
    the same facts as blocks. No `secrets` (the Stooq API key) appear in it, whatever the failure
    quoted."""
    symbols = ", ".join(alert.symbols[:_LISTED_SYMBOLS])
    if len(alert.symbols) > _LISTED_SYMBOLS:
        symbols += f" and {len(alert.symbols) - _LISTED_SYMBOLS} more"
    what = re.sub(r"^(?:\w+\.)*\w*(?:Error|Failure|Exception): ", "", alert.what.strip())
    what = what if len(what) <= _WHAT_CHARS else what[:_WHAT_CHARS] + " ..."
    summary = " ".join(what.splitlines()[:2])
    fields = [("Index", alert.index), ("Session", alert.session), ("Symbols", symbols or "none named")]
    message = {
        "text": f"{alert.title}: {summary} ({alert.link})",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": alert.title}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in fields]},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"```{what}```"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<{alert.link}|Open in Dagster>"}},
        ],
    }
    return _without(message, [secret for secret in secrets if secret])


def _without(value: object, secrets: list[str]) -> object:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, _MASK)
        return value
    if isinstance(value, dict):
        return {key: _without(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_without(item, secrets) for item in value]
    return value


def masked_url(url: str) -> str:
    """A webhook URL as logs and errors may show it: its scheme and host, the secret path masked."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/{_MASK}" if parts.netloc else _MASK


def symbols_named(text: str, known: Iterable[str]) -> tuple[str, ...]:
    """The `known` symbols a failure's text names, in the order it names them."""
    found = {}
    for symbol in known:
        match = re.search(rf"(?<![\w.]){re.escape(symbol)}(?![\w.])", text)
        if match:
            found[symbol] = match.start()
    return tuple(sorted(found, key=found.__getitem__))
