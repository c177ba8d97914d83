"""Waiting in a step for Stooq to publish the sessions it loads, the runs having been launched a
head start ahead. Why: docs/design.md#runs-start-ahead-of-the-publication.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import dagster as dg
import pandas as pd

from market_assets import settings
from market_assets.domain.close_timing import published_at, seconds_to_wait
from market_assets.sources.indices import publication_delay


def wait_for_publication(context: dg.AssetExecutionContext, sessions: Iterable[tuple[str, pd.Timestamp]]) -> None:
    """Sleep until the last publication of `sessions` (exchange, session) when it is near
    (`close_timing.seconds_to_wait`)."""
    due = max(published_at(code, session, publication_delay(code)) for code, session in sessions)
    wait = seconds_to_wait(due, pd.Timestamp.now(tz="UTC"), settings.head_start())
    if wait:
        context.log.info(f"Waiting {wait:.0f} s for Stooq to publish the session, at {due:%Y-%m-%d %H:%M:%S %Z}")
        time.sleep(wait)
