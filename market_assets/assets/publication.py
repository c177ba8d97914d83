"""Waiting in a step for Stooq to publish the session it loads.

The close schedules and the `close_bars` sensor launch a session's runs `head_start()` before its
publication time (`market_assets.sessions`): creating a run, queueing it and starting its process
take seconds, and this way they are spent before the data is there rather than after. The run's
step then waits for the publication before its first request, so nothing is ever asked of Stooq
before it has the session.
"""

import time

import dagster as dg
import pandas as pd

from market_assets.sessions import head_start


def wait_for_publication(context: dg.AssetExecutionContext, due: pd.Timestamp) -> None:
    """Sleep until `due`, a publication time, when it is at most twice the head start away.

    A run asked for a session further ahead (by hand, before the close) is not held for hours:
    it fetches at once, and the checks say whether Stooq had published (`ends_at_session`).
    """
    wait = (due - pd.Timestamp.now(tz="UTC")).total_seconds()
    if 0 < wait <= 2 * head_start().total_seconds():
        context.log.info(f"Waiting {wait:.0f} s for Stooq to publish the session, at {due:%Y-%m-%d %H:%M:%S %Z}")
        time.sleep(wait)
