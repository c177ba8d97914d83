"""Resources: the market-data source (Stooq over HTTP, or Stooq's files saved from a browser) and
the data lake.

The assets ask the source two things, the composition of an index and the daily history of a
symbol up to a session, through `MarketDataSource`; which implementation answers is chosen by the
deployment (`source_from_env`, the `MARKET_ASSETS_SOURCE` environment variable), never by the
assets.
"""


import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pandas as pd
from pydantic import Field, PrivateAttr

from market_assets.request_budget import RequestBudget
from market_assets.storage import ParquetStore, default_data_root
from market_assets.stooq import DEFAULT_BASE_URL, StooqClient, check_reachable
from market_assets.stooq.files import StooqFiles

SOURCE_ENV = "MARKET_ASSETS_SOURCE"
FILES_ENV = "MARKET_ASSETS_FILES"


class MarketDataSource(dg.ConfigurableResource):
    """Where compositions and daily histories come from: the one interface the assets use.

    Both questions raise a `StooqError` naming the symbol or index and where the answer came from
    when they cannot be answered; the assets report it per symbol and keep the other symbols.
    """

    max_concurrency: int = Field(default=6, description="Workers (symbols read at once) of one step")

    def composition(self, index: str) -> pd.DataFrame:
        """The constituents of `index` (`symbol`, `name`, then the page's other columns)."""
        raise NotImplementedError

    def daily_history(self, symbol: str, session: pd.Timestamp) -> pd.DataFrame:
        """`date, open, high, low, close, volume` of `symbol`, oldest first, up to `session`."""
        raise NotImplementedError

    @contextmanager
    def worker_slot(self, context: dg.AssetExecutionContext, worker: int, priority: int = 0) -> Iterator[None]:
        """Held by each worker of a step while it has symbols to read: a source with a budget of
        requests (Stooq over HTTP) makes the worker wait here for its share, the workers of a
        higher `priority` first."""
        yield

    def check_ready(self) -> None:
        """Raise a clear error when the source cannot answer at all (misconfigured, out of reach),
        so that a close is refused before it starts any work."""


class StooqResource(MarketDataSource):
    """Stooq over HTTP (or the project's Stooq-compatible server).

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

    def resolved_base_url(self) -> str:
        return self.base_url or os.environ.get("STOOQ_BASE_URL") or DEFAULT_BASE_URL

    def check_ready(self) -> None:
        check_reachable(self.resolved_base_url(), timeout=self.connect_timeout)

    def composition(self, index: str) -> pd.DataFrame:
        return self._client.composition(index)

    def daily_history(self, symbol: str, session: pd.Timestamp) -> pd.DataFrame:
        return self._client.history(symbol, "d", end=session)

    @contextmanager
    def worker_slot(self, context: dg.AssetExecutionContext, worker: int, priority: int = 0) -> Iterator[None]:
        """A slot of the instance-wide `stooq` pool (see `request_budget`): requests in flight
        across all runs never exceed the pool's limit."""
        budget = RequestBudget(context.instance, context.run.run_id, context.op_def.name)
        with budget.slot(worker, priority):
            yield


class StooqFilesResource(MarketDataSource):
    """Stooq's files saved from a browser (bulk archives, per-symbol CSVs, composition pages) in one
    folder; see `market_assets.stooq.files`. Reading local files needs no request budget."""

    folder: str | None = Field(default=None, description=f"Default: ${FILES_ENV}")
    max_concurrency: int = Field(default=2, description="Workers (symbols parsed at once) of one step")

    _files: StooqFiles = PrivateAttr()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._files = StooqFiles(self._folder())

    def check_ready(self) -> None:
        StooqFiles(self._folder()).close()

    def _folder(self) -> str:
        folder = self.folder or os.environ.get(FILES_ENV)
        if not folder:
            raise ValueError(
                f"The files source needs the folder of saved Stooq files: set {FILES_ENV} "
                "(or the `folder` field of the stooq resource)."
            )
        return folder

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._files.close()

    def composition(self, index: str) -> pd.DataFrame:
        return self._files.composition(index)

    def daily_history(self, symbol: str, session: pd.Timestamp) -> pd.DataFrame:
        return self._files.daily_history(symbol, session)


def source_from_env() -> MarketDataSource:
    """The source `$MARKET_ASSETS_SOURCE` names: `http` (the default) or `files`."""
    sources: dict[str, type[MarketDataSource]] = {"http": StooqResource, "files": StooqFilesResource}
    name = os.environ.get(SOURCE_ENV, "http").strip().lower() or "http"
    if name not in sources:
        raise ValueError(f"{SOURCE_ENV}={name!r}: the sources are {', '.join(sources)}")
    return sources[name]()


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
