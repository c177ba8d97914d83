"""Stooq as a data source: the index table, the HTTP client, saved files, parsing and errors."""

from market_assets.stooq.client import DEFAULT_BASE_URL, INTERVALS, StooqClient, check_reachable
from market_assets.stooq.errors import (
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
from market_assets.stooq.files import StooqFiles
from market_assets.stooq.indices import INDICES, StockIndex, get_index

__all__ = [
    "DEFAULT_BASE_URL",
    "INDICES",
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
    "get_index",
]
