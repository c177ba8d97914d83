"""Resources: the Stooq source (where to download from, how hard to push) and the data lake."""


import os

import dagster as dg
from pydantic import Field, PrivateAttr

from market_assets.storage import ParquetStore, default_data_root
from market_assets.stooq import DEFAULT_BASE_URL, StooqClient


class StooqResource(dg.ConfigurableResource):
    """Connection settings for Stooq (or the project's Stooq-compatible server).

    Unset fields fall back to the environment, so a deployment configures secrets and endpoints
    without code: STOOQ_BASE_URL, STOOQ_API_KEY (never shown in the UI or logs) and STOOQ_COOKIES
    (`name=value; name2=value2`, for a client that passed Stooq's browser check).
    """

    base_url: str | None = Field(default=None, description="Default: $STOOQ_BASE_URL, then https://stooq.com")
    api_key: str | None = Field(default=None, description="Default: $STOOQ_API_KEY")
    cookies: dict[str, str] = Field(default_factory=dict, description="Default: $STOOQ_COOKIES")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers")
    connect_timeout: float = Field(default=5.0, description="Seconds to establish a connection")
    read_timeout: float = Field(default=30.0, description="Seconds to wait for an answer")
    retries: int = Field(default=2, description="Retries of a transient failure (5xx, timeout, reset)")
    max_concurrency: int = Field(
        default=6, description="Workers (requests in flight) of one step; the `stooq` pool caps all runs together"
    )

    _client: StooqClient = PrivateAttr()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._client = StooqClient(
            self.resolved_base_url(),
            api_key=self.api_key or os.environ.get("STOOQ_API_KEY"),
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries=self.retries,
            headers=self.headers,
            cookies=self.cookies or _parse_cookies(os.environ.get("STOOQ_COOKIES", "")),
            pool_size=self.max_concurrency,
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._client.close()

    @property
    def client(self) -> StooqClient:
        return self._client

    def resolved_base_url(self) -> str:
        return self.base_url or os.environ.get("STOOQ_BASE_URL") or DEFAULT_BASE_URL


def _parse_cookies(text: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in text.split(";") if "=" in item)
    return {name.strip(): value.strip() for name, value in pairs}


class DataLakeResource(dg.ConfigurableResource):
    """Where partitions are stored: shared by the IO manager and assets that inspect stored data."""

    root: str | None = Field(
        default=None, description="Folder or fsspec URL; default $MARKET_ASSETS_DATA_ROOT, then ./data"
    )

    _store: ParquetStore = PrivateAttr()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._store = ParquetStore(self.root or default_data_root())

    @property
    def store(self) -> ParquetStore:
        return self._store


class DataQualityResource(dg.ConfigurableResource):
    """Thresholds of the data-quality checks on daily bars (`market_assets.assets.checks`)."""

    max_daily_move: float = Field(
        default=0.4,
        description="Largest move of a close from the previous close (0.4 = 40 %) not flagged as a "
        "jump; a 2-for-1 split left unadjusted moves it by 50 %",
    )
    stale_sessions: int = Field(
        default=5, description="Bars in a row with the same close that mark a feed as stale"
    )
