"""What can go wrong when asking Stooq for data, one type per cause, each naming what was asked for
and where from, and saying through `retryable` whether asking again can help.

Why: docs/design.md#the-sources.
"""

from __future__ import annotations


class StooqError(Exception):
    """An answer from Stooq that is not the data asked for."""

    retryable: bool = False
    advice: str = "Retrying will not help."

    def __init__(self, subject: str, url: str, problem: str) -> None:
        self.subject = subject
        self.url = url
        self.problem = problem
        super().__init__(f"{subject}: {problem} ({self.origin}). {self.advice}")

    @property
    def origin(self) -> str:
        """Where the answer came from, as the message shows it."""
        return f"GET {self.url}"


class StooqTransientError(StooqError):
    """A failure of the network or of Stooq's servers that may pass."""

    retryable = True
    advice = "This is usually temporary: retrying may help."


class StooqServerError(StooqTransientError):
    """HTTP 5xx."""


class StooqTimeoutError(StooqTransientError):
    """No connection or no complete answer within the configured timeout."""


class StooqConnectionError(StooqTransientError):
    """Connection refused or reset before an answer arrived."""


class StooqHttpError(StooqError):
    """HTTP 4xx: the request itself is wrong or refused."""


class StooqApiKeyRequired(StooqError):
    """Stooq's page asking for an API key, served with HTTP 200 instead of CSV."""

    advice = (
        "Since March 2026 Stooq's CSV downloads need an API key: get one in a browser at "
        "https://stooq.com/q/d/?s=spy.us&get_apikey and set it in the STOOQ_API_KEY environment "
        "variable (or the `api_key` field of the stooq resource)."
    )


class StooqChallengeError(StooqError):
    """Stooq's HTML proof-of-work browser check, served with HTTP 200 instead of data."""

    advice = (
        "Stooq does not serve this client until its browser check is passed: pass it in a browser "
        "and give the resulting cookies to the stooq resource (`cookies`, or STOOQ_COOKIES). "
        "Retrying now will not help."
    )


class StooqHitsLimitError(StooqError):
    """`Exceeded the daily hits limit`: Stooq refuses further downloads today."""

    advice = (
        "Stop asking until the limit resets (the next day), lower the request rate, or use an "
        "API key with a larger quota. Retrying now will not help."
    )


class StooqNoDataError(StooqError):
    """`No data`: an unknown symbol, or nothing in the asked date range."""

    advice = "Check the symbol's spelling on stooq.com and the date range."


class StooqFormatError(StooqError):
    """An answer that is not the expected CSV or page: empty, truncated, renamed columns, bad cells."""

    advice = "The answer was not stored; retrying will not help until Stooq's answer changes."


class StooqFileError(StooqError):
    """A saved Stooq file (a bulk archive member, a per-symbol CSV, a composition page) that does
    not hold the data asked for."""

    advice = "Nothing was read from it: replace it with a fresh download from stooq.com."

    @property
    def origin(self) -> str:
        """`url` holds the file (`archive ..., member ...` or `file ...`), not a URL."""
        return self.url


class StooqFileMissing(StooqFileError):
    """No saved file holds the symbol or the index asked for."""

    advice = (
        "Download the bulk archive of the symbol's market (or save its CSV, or the index's "
        "composition page) into the files folder."
    )


class StooqStaleFile(StooqFileError):
    """The saved data ends before the session asked for: the archive was downloaded too early."""

    advice = "Download a newer archive from stooq.com once the session's data is published."


class UnknownIndexError(ValueError):
    """An index name that the platform does not follow."""
