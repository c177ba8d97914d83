"""Fetching a step's daily histories concurrently within the request budget, incrementally where a
previous snapshot is stored, each handed to a builder thread as it arrives.

Why: docs/design.md#one-step-builds-the-three-bars-assets, docs/design.md#the-request-budget and
docs/design.md#incremental-downloads.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import dagster as dg
import pandas as pd

from market_assets.defs.bars.adjustments import previous_daily
from market_assets.defs.bars.targets import Target
from market_assets.domain.candles import snapshot
from market_assets.domain.incremental_history import extend, overlap_start
from market_assets.lake.errors import LakeWriteError
from market_assets.lake.fetch_record import FetchRecord
from market_assets.lake.store import ParquetStore
from market_assets.sources.errors import StooqApiKeyRequired, StooqChallengeError, StooqError, StooqHitsLimitError
from market_assets.sources.resources import MarketDataSource

B = TypeVar("B")

_BACKLOG_PER_WORKER = 2
"""Fetched snapshots waiting for the builder, per worker."""

_STOP_ASKING = (StooqApiKeyRequired, StooqChallengeError, StooqHitsLimitError)
"""Answers that concern every request, not one symbol: after one of them the step stops asking."""


class NotAsked(Exception):
    """A symbol left out after Stooq refused the source as a whole (see `_STOP_ASKING`), or after
    a file could not be written; `retryable` as the reason is."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Download:
    """How a daily snapshot was downloaded."""

    incremental: bool
    """The snapshot is the previous one followed by new bars, its overlap published unchanged:
    nothing in the past was rewritten."""
    description: str
    """A sentence for the materialization's `download` metadata."""
    fetched: FetchRecord
    """When the answer came, and through which date it held bars (a backfill's go past the session)."""


def fetch_all(
    context: dg.AssetExecutionContext,
    targets: list[Target],
    source: MarketDataSource,
    store: ParquetStore,
    build: Callable[[Target, pd.DataFrame, pd.DataFrame | None, Download], B],
    whole: bool = False,
) -> tuple[dict[str, B], dict[str, Exception], LakeWriteError | None]:
    """`build(target, snapshot, previous snapshot, how it was downloaded)` of every target that
    could be fetched and built, by key; the error of every symbol that could not be; and the
    error that stopped the writing, if any. Fetched by at most `source.max_concurrency` workers,
    incrementally where `store` holds a previous snapshot unless `whole`. Once a file cannot be
    written (a full volume, say), nothing more is asked for or built."""
    pending: queue.SimpleQueue[Target] = queue.SimpleQueue()
    for target in targets:
        pending.put(target)
    # Why nothing more is asked for: a file that could not be written, or an answer that concerns
    # the whole source.
    stop: list[NotAsked] = []
    write_error: list[LakeWriteError] = []
    built: dict[str, B] = {}
    building: list[Future[None]] = []
    failures: dict[str, Exception] = {}
    workers = max(1, min(source.max_concurrency, len(targets)))
    # Snapshots fetched and not yet built, at most a few per worker: a builder that falls behind
    # holds back the requests rather than the step's memory.
    backlog = threading.BoundedSemaphore(_BACKLOG_PER_WORKER * workers)

    def left_out(target: Target, what: str) -> NotAsked:
        return NotAsked(f"{target.symbol}: {what}, because {stop[0]}", stop[0].retryable)

    def build_one(target: Target, daily: pd.DataFrame, previous: pd.DataFrame | None, download: Download) -> None:
        try:
            if write_error:
                failures[target.symbol] = left_out(target, "not stored")
                return
            built[target.key] = build(target, daily, previous, download)
        except LakeWriteError as error:
            write_error.append(error)
            stop.insert(0, NotAsked(f"{error.path} could not be written", error.retryable))
            failures[target.symbol] = left_out(target, "not stored")
        finally:
            backlog.release()

    def fetch(target: Target, builder: ThreadPoolExecutor) -> None:
        if stop:
            failures[target.symbol] = left_out(target, "not requested")
            return
        previous = previous_daily(store, target)
        try:
            daily, download = _download(source, target, None if whole else previous)
        except _STOP_ASKING as error:
            stop.append(NotAsked(error.problem))
            failures[target.symbol] = error
        except StooqError as error:
            failures[target.symbol] = error
        else:
            backlog.acquire()
            building.append(builder.submit(build_one, target, daily, previous, download))

    def work(worker: int, builder: ThreadPoolExecutor) -> None:
        with source.worker_slot(context, worker, priority=len(targets)):
            while True:
                try:
                    fetch(pending.get_nowait(), builder)
                except queue.Empty:
                    return

    with ThreadPoolExecutor(max_workers=1) as builder:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for outcome in [pool.submit(work, worker, builder) for worker in range(workers)]:
                outcome.result()
    for future in building:
        future.result()  # an error that is not a symbol's or a write's fails the step
    for error in failures.values():
        context.log.warning(str(error))
    return built, failures, (write_error[0] if write_error else None)


def _download(source: MarketDataSource, target: Target, previous: pd.DataFrame | None) -> tuple[pd.DataFrame, Download]:
    """The daily snapshot of `target`, from the bars after `previous` when the source can tell
    them and they extend it, else from the whole history; and how it was downloaded."""
    since = None if previous is None else overlap_start(previous)
    recent = None if since is None else _recent(source, target, since)
    why = ""
    if recent is not None:
        fetched = _fetched(recent, target)
        recent = snapshot(recent, target.session)
        daily = extend(previous, recent, since)
        if daily is not None:
            added = len(daily) - len(previous)
            return daily, Download(
                True,
                f"incremental: {added} new bar(s) after {previous['date'].iloc[-1]:%Y-%m-%d}; the "
                f"{len(recent) - added} stored bars from {since:%Y-%m-%d} were published unchanged",
                fetched,
            )
        why = f": the bars from {since:%Y-%m-%d} differ from the stored ones (the past was rewritten)"
    history = source.daily_history(target.symbol, target.session)
    fetched = _fetched(history, target)
    daily = snapshot(history, target.session)
    return daily, Download(False, f"whole history, {len(daily)} bars{why}", fetched)


def _fetched(answer: pd.DataFrame, target: Target) -> FetchRecord:
    """The record of an answer just received: through its last bar, or the session when it has none."""
    return FetchRecord.now(max(answer["date"].max(), target.session) if len(answer) else target.session)


def _recent(source: MarketDataSource, target: Target, since: pd.Timestamp) -> pd.DataFrame | None:
    """The bars of `target` from `since` on, or None when the source reads whole histories only or
    its answer was not bars (a transient failure still fails the symbol: the whole history would
    be asked of the same failing source)."""
    try:
        return source.recent_history(target.symbol, since)
    except StooqError as error:
        if error.retryable or isinstance(error, _STOP_ASKING):
            raise
        return None
