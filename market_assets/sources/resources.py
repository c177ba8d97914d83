"""The Dagster resources over the sources, Stooq over HTTP or Stooq's files saved from a browser,
behind the one interface the assets use, `MarketDataSource`. Why: docs/design.md#the-sources.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pandas as pd
from pydantic import Field, PrivateAttr

from market_assets import settings
from market_assets.sources.http_client import StooqClient, check_reachable
from market_assets.sources.request_budget import RequestBudget
from market_assets.sources.saved_files import StooqFiles


class MarketDataSource(dg.ConfigurableResource):
    """Where compositions and daily histories come from: the one interface the assets use. A
    question that cannot be answered raises a `StooqError` naming the symbol or index and where
    the answer came from."""

    max_concurrency: int = Field(default=6, description="Workers (symbols read at once) of one step")

    def composition(self, index: str) -> pd.DataFrame:
        """The constituents of `index` (`symbol`, `name`, then the page's other columns)."""
        raise NotImplementedError

    def daily_history(self, symbol: str, session: pd.Timestamp) -> pd.DataFrame:
        """`date, open, high, low, close, volume` of `symbol`, oldest first, through at least
        `session` and up to the newest bar the source has: bars after `session` say the answer
        came once a later session was published (a backfill); the caller keeps those up to `session`."""
        raise NotImplementedError

    def recent_history(self, symbol: str, since: pd.Timestamp) -> pd.DataFrame | None:
        """The bars of `daily_history` from `since` on, or None from a source that reads whole
        histories anyway (files): asking for less then saves nothing."""
        return None

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
    """Stooq over HTTP (or the project's Stooq-compatible server)."""

    base_url: str = Field(default=settings.STOOQ_BASE_URL.default, description=settings.STOOQ_BASE_URL.meaning)
    api_key: str = Field(default=settings.STOOQ_API_KEY.default, description=settings.STOOQ_API_KEY.meaning)
    cookies: str = Field(default=settings.STOOQ_COOKIES.default, description=settings.STOOQ_COOKIES.meaning)
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
            self.base_url,
            api_key=self.api_key,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries=self.retries,
            headers=self.headers,
            cookies=_parse_cookies(self.cookies),
            pool_size=self.max_concurrency,
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._client.close()

    def check_ready(self) -> None:
        check_reachable(self.base_url, timeout=self.connect_timeout)

    def composition(self, index: str) -> pd.DataFrame:
        return self._client.composition(index)

    def daily_history(self, symbol: str, session: pd.Timestamp) -> pd.DataFrame:
        return self._client.history(symbol, "d")

    def recent_history(self, symbol: str, since: pd.Timestamp) -> pd.DataFrame:
        return self._client.history(symbol, "d", start=since)

    @contextmanager
    def worker_slot(self, context: dg.AssetExecutionContext, worker: int, priority: int = 0) -> Iterator[None]:
        """A slot of the instance-wide `stooq` pool (see `request_budget`): requests in flight
        across all runs never exceed the pool's limit."""
        budget = RequestBudget(context.instance, context.run.run_id, context.op_def.name)
        with budget.slot(worker, priority):
            yield


class StooqFilesResource(MarketDataSource):
    """Stooq's files saved from a browser (bulk archives, per-symbol CSVs, composition pages) in one
    folder; see `market_assets.sources.saved_files`. Reading local files needs no request budget."""

    folder: str = Field(default=settings.FILES.default, description=settings.FILES.meaning)
    max_concurrency: int = Field(default=2, description="Workers (symbols parsed at once) of one step")

    _files: StooqFiles = PrivateAttr()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._files = StooqFiles(self._folder())

    def check_ready(self) -> None:
        StooqFiles(self._folder()).close()

    def _folder(self) -> str:
        if not self.folder:
            raise ValueError(
                f"The files source needs the folder of saved Stooq files: set {settings.FILES.env_var} "
                "(or the `folder` field of the stooq resource)."
            )
        return self.folder

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._files.close()

    def composition(self, index: str) -> pd.DataFrame:
        return self._files.composition(index)

    def daily_history(self, symbol: str, session: pd.Timestamp) -> pd.DataFrame:
        return self._files.daily_history(symbol, session)


def _parse_cookies(text: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in text.split(";") if "=" in item)
    return {name.strip(): value.strip() for name, value in pairs}
