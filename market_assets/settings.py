"""Every setting of market_assets, each read from one environment variable, in this one module:
resource settings (bound to resource fields, resolved by each run) and load settings (read when the
code location loads). Why: docs/design.md#resource-settings-and-load-settings."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

T = TypeVar("T", str, int, float)


class ConfigurationError(ValueError):
    """A setting, or a file a setting names, that cannot be used: one line naming it and the fix."""


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment variable, its type, its default and what it means."""

    env_var: str
    default: T
    meaning: str
    check: Callable[[T], str | None] = lambda value: None
    """Says what is wrong with a value, or None when it is fine."""

    def value(self) -> T:
        """The variable's value, else the default; a bad value is an error naming the variable."""
        text = os.environ.get(self.env_var, "").strip()
        if not text:
            return self.default
        try:
            value = type(self.default)(text)
        except ValueError:
            kind = {int: "a whole number", float: "a number"}[type(self.default)]
            raise ConfigurationError(
                f"{self.env_var}={text!r} is not {kind} ({self.meaning}): set {kind}, {self._or_default()}"
            ) from None
        problem = self.check(value)
        if problem:
            raise ConfigurationError(f"{self.env_var}={text!r}: {problem}, {self._or_default()}")
        return value

    def _or_default(self) -> str:
        return f"or unset it for the default, {self.default}"

    def is_set(self) -> bool:
        return bool(os.environ.get(self.env_var, "").strip())


def _one_of(*choices: str) -> Callable[[str], str | None]:
    return lambda value: None if value.lower() in choices else f"choose one of {', '.join(choices)}"


def _at_least(minimum: float, unit: str) -> Callable[[float], str | None]:
    return lambda value: None if value >= minimum else f"must be at least {minimum:g} {unit}"


# --- Resource settings --------------------------------------------------------------------------

STOOQ_BASE_URL = Setting("STOOQ_BASE_URL", "https://stooq.com", "where Stooq (or a Stooq-compatible server) answers")
STOOQ_API_KEY = Setting("STOOQ_API_KEY", "", "the key Stooq's CSV downloads need since March 2026; never logged or shown")
STOOQ_COOKIES = Setting(
    "STOOQ_COOKIES", "", "`name=value; ...` from a browser that passed Stooq's check, for clients that get its proof-of-work page"
)
FILES = Setting("MARKET_ASSETS_FILES", "", "the folder of Stooq files saved from a browser, for the files source")
DATA_ROOT = Setting(
    "MARKET_ASSETS_DATA_ROOT", "data", "where parquet goes: a folder, or an fsspec URL such as s3://bucket/prefix"
)
MAX_SYMBOLS_PER_RUN = Setting(
    "MARKET_ASSETS_MAX_SYMBOLS_PER_RUN", 1000, "the most symbols one close run loads", _at_least(1, "symbol")
)
CATCH_UP_SESSIONS = Setting(
    "MARKET_ASSETS_CATCH_UP_SESSIONS", 5, "past sessions a tick looks back at for missed closes", _at_least(1, "session")
)
ALERT_WEBHOOK_URL = Setting(
    "MARKET_ASSETS_ALERT_WEBHOOK_URL",
    "",
    "a Slack-compatible webhook told of each failed close run (empty: none); a secret, never logged or shown",
)
UI_URL = Setting("MARKET_ASSETS_UI_URL", "http://localhost:3000", "the Dagster UI's address, for the links in alerts")
RETENTION_DAYS = Setting(
    "MARKET_ASSETS_RETENTION_DAYS",
    0,
    "days of sessions whose runs and events the instance keeps, back to that week's Monday (0, or fewer than the partition window's: the partition window's)",
    _at_least(0, "days"),
)

# --- Load settings ------------------------------------------------------------------------------

SOURCE = Setting(
    "MARKET_ASSETS_SOURCE", "http", "http: Stooq over HTTP; files: Stooq's files saved from a browser", _one_of("http", "files")
)
EXECUTOR = Setting(
    "MARKET_ASSETS_EXECUTOR", "default", "k8s: the step of a close run in a Kubernetes pod of its own", _one_of("default", "k8s")
)
PARTITION_DAYS = Setting(
    "MARKET_ASSETS_PARTITION_DAYS",
    14,
    "days of sessions the date partitions cover, back to that week's Monday",
    _at_least(7, "days"),
)
CLOSE_DELAY = Setting(
    "MARKET_ASSETS_CLOSE_DELAY_MINUTES",
    "30",
    "minutes Stooq needs to publish after a close: one number, or per exchange as XNYS=30,XHKG=45",
)
HEAD_START = Setting(
    "MARKET_ASSETS_HEAD_START_SECONDS", 60.0, "how long before the publication a close's runs start", _at_least(0, "seconds")
)
INDICES_FILE = Setting(
    "MARKET_ASSETS_INDICES_FILE", "", "the YAML file of the followed indices (default: DJI, NDX, HSI, shipped in the package)"
)
FRESHNESS_GRACE = Setting(
    "MARKET_ASSETS_FRESHNESS_GRACE_MINUTES",
    60.0,
    "minutes after the publication before the bars count as late",
    _at_least(0, "minutes"),
)

RESOURCE_SETTINGS = (
    STOOQ_BASE_URL,
    STOOQ_API_KEY,
    STOOQ_COOKIES,
    FILES,
    DATA_ROOT,
    MAX_SYMBOLS_PER_RUN,
    CATCH_UP_SESSIONS,
    ALERT_WEBHOOK_URL,
    UI_URL,
    RETENTION_DAYS,
)
LOAD_SETTINGS = (SOURCE, EXECUTOR, PARTITION_DAYS, CLOSE_DELAY, HEAD_START, FRESHNESS_GRACE, INDICES_FILE)


def close_delay(exchange: str) -> timedelta:
    """The publication delay after `exchange`'s close: `MARKET_ASSETS_CLOSE_DELAY_MINUTES` is one
    number for every exchange, or `XNYS=30,XHKG=45` (an exchange left out keeps 30)."""
    text = CLOSE_DELAY.value().replace(" ", "")
    if "=" in text:
        delays = dict(item.split("=", 1) for item in text.split(",") if item)
        text = delays.get(exchange, CLOSE_DELAY.default)
    try:
        minutes = float(text)
    except ValueError:
        raise ConfigurationError(f"{CLOSE_DELAY.env_var}: {text!r} is not a number of minutes ({CLOSE_DELAY.meaning})") from None
    return timedelta(minutes=minutes)


def head_start() -> timedelta:
    return timedelta(seconds=HEAD_START.value())


def freshness_grace() -> timedelta:
    return timedelta(minutes=FRESHNESS_GRACE.value())
