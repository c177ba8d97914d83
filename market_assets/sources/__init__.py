"""Where the data comes from: Stooq over HTTP and Stooq's files saved from a browser, their parsing
and errors, the followed indices, and the budget of requests in flight. Importing this package loads
no Dagster (docs/design.md#the-layers); the Dagster resources are `market_assets.sources.resources`."""

from market_assets.sources.errors import (
    StooqApiKeyRequired,
    StooqChallengeError,
    StooqConnectionError,
    StooqError,
    StooqFileError,
    StooqFileMissing,
    StooqFormatError,
    StooqHitsLimitError,
    StooqHttpError,
    StooqNoDataError,
    StooqServerError,
    StooqStaleFile,
    StooqTimeoutError,
    StooqTransientError,
    UnknownIndexError,
)
from market_assets.sources.http_client import DEFAULT_BASE_URL, INTERVALS, StooqClient, check_reachable
from market_assets.sources.indices import (
    StockIndex,
    exchange_of,
    followed_exchanges,
    followed_indices,
    get_index,
    indices_on,
)
from market_assets.sources.saved_files import StooqFiles

__all__ = [
    "DEFAULT_BASE_URL",
    "followed_exchanges",
    "followed_indices",
    "INTERVALS",
    "StockIndex",
    "StooqApiKeyRequired",
    "StooqChallengeError",
    "StooqClient",
    "StooqConnectionError",
    "StooqError",
    "StooqFileError",
    "StooqFileMissing",
    "StooqFiles",
    "StooqFormatError",
    "StooqHitsLimitError",
    "StooqHttpError",
    "StooqNoDataError",
    "StooqServerError",
    "StooqStaleFile",
    "StooqTimeoutError",
    "StooqTransientError",
    "UnknownIndexError",
    "check_reachable",
    "exchange_of",
    "get_index",
    "indices_on",
]
