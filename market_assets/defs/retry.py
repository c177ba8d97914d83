"""The retry policy every asset shares."""

import dagster as dg

STOOQ_RETRY = dg.RetryPolicy(max_retries=3, delay=2.0, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
"""Step-level retries for what outlives the client's own per-request retries (a long 5xx burst).
Steps raise `Failure(allow_retries=False)` for answers that retrying cannot change."""
