"""Planning the close of an index: which partition ranges (contiguous blocks of the symbols not yet
stored) one session's bars runs must cover. Why: docs/design.md#one-run-per-index-and-session.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg

from market_assets.defs.bars.keys import bars_asset_key
from market_assets.defs.partitions import bars_dimensions, bars_key, symbol_partitions
from market_assets.defs.runs import (
    COMPOSITION_TAG,
    IN_FLIGHT,
    INDEX_TAG,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    PRIORITY_TAG,
    SESSION_TAG,
)
from market_assets.lake.datasets import BARS
from market_assets.sources.indices import exchange_of, get_index


def close_job_name(index: str) -> str:
    return f"{index.lower()}_close"


@dataclass(frozen=True)
class CloseRun:
    """One run of an index's close job over a contiguous block of its constituents."""

    index: str
    session: str
    symbols: tuple[str, ...]
    composition: str | None = None
    """The key of the composition the symbols come from, when the planner names it."""

    @property
    def job_name(self) -> str:
        return close_job_name(self.index)

    @property
    def partition_range(self) -> dg.PartitionKeyRange:
        return dg.PartitionKeyRange(str(bars_key(self.session, self.symbols[0])), str(bars_key(self.session, self.symbols[-1])))

    @property
    def tags(self) -> dict[str, str]:
        return {
            PARTITION_RANGE_START_TAG: self.partition_range.start,
            PARTITION_RANGE_END_TAG: self.partition_range.end,
            INDEX_TAG: self.index,
            SESSION_TAG: self.session,
            # Bars runs are the long ones: launched before the compositions queued with them.
            PRIORITY_TAG: "1",
            **({COMPOSITION_TAG: self.composition} if self.composition else {}),
        }


def plan_close_runs(
    instance: dg.DagsterInstance,
    index: str,
    session: str,
    members: Iterable[str],
    *,
    max_symbols: int,
    force: bool = False,
    planned: Iterable[str] = (),
    composition: str | None = None,
) -> list[CloseRun]:
    """The runs that load `members` of `index` for `session`; none when all are already stored.
    Each covers a contiguous block of at most `max_symbols` symbols, a longer block split evenly.
    `planned` symbols (runs already requested) are left out too; `composition` names the stored
    composition `members` come from, which the runs' steps check against (`COMPOSITION_TAG`).
    Raises `ValueError` when a member is not a registered partition."""
    wanted = set(members)
    code = get_index(index).calendar
    order = instance.get_dynamic_partitions(symbol_partitions[code].name)
    unknown = wanted - set(order)
    if unknown:
        raise ValueError(
            f"index {index}: symbols {sorted(unknown)} are not registered partitions; "
            "materialize the index's composition for the session first"
        )
    if not force:
        wanted -= _complete_symbols(instance, code, session, wanted) | set(planned)
    blocks, block = [], []
    for symbol in order:
        if symbol in wanted:
            block.append(symbol)
        elif block:
            blocks.append(block)
            block = []
    if block:
        blocks.append(block)
    runs = []
    for block in blocks:
        count = math.ceil(len(block) / max_symbols)
        bounds = [round(len(block) * part / count) for part in range(count + 1)]
        runs += [CloseRun(index, session, tuple(block[a:b]), composition) for a, b in itertools.pairwise(bounds)]
    return runs


def _complete_symbols(instance: dg.DagsterInstance, code: str, session: str, symbols: set[str]) -> set[str]:
    """Symbols of exchange `code` whose daily, weekly and monthly bars are all materialized for `session`."""
    return materialized_symbols(instance, [bars_asset_key(code, name) for name in BARS], session, symbols)


def materialized_symbols(
    instance: dg.DagsterInstance, assets: list[dg.AssetKey], session: str, symbols: Iterable[str]
) -> set[str]:
    """The `symbols` with a materialization of every one of the bars `assets` for `session`,
    asking for these partitions only."""
    keys = {str(bars_key(session, symbol)): symbol for symbol in symbols}
    if not keys:  # (no partitions would ask for every partition of the asset)
        return set()
    complete = set(keys)
    for asset in assets:
        complete &= set(
            instance.get_latest_storage_id_by_partition(asset, dg.DagsterEventType.ASSET_MATERIALIZATION, partitions=set(keys))
        )
    return {keys[key] for key in complete}


def in_flight_symbols(instance: dg.DagsterInstance, session: str) -> set[str]:
    """Symbols that queued or running close runs of `session` are loading: not to be planned again."""
    runs = instance.get_runs(dg.RunsFilter(tags={SESSION_TAG: session}, statuses=IN_FLIGHT))
    orders: dict[str, list[str]] = {}
    return {symbol for run in runs for symbol in run_symbols(instance, run, orders)}


def run_symbols(instance: dg.DagsterInstance, run: dg.DagsterRun, orders: dict[str, list[str]] | None = None) -> list[str]:
    """The symbols a close run's partition range covers, in the order they were registered;
    `orders` keeps each exchange's registered symbols between calls, read once."""
    if PARTITION_RANGE_START_TAG not in run.tags:
        return []
    first = bars_dimensions(run.tags[PARTITION_RANGE_START_TAG])["symbol"]
    last = bars_dimensions(run.tags[PARTITION_RANGE_END_TAG])["symbol"]
    orders = {} if orders is None else orders
    code = exchange_of(first)
    if code not in orders:
        orders[code] = instance.get_dynamic_partitions(symbol_partitions[code].name)
    order = orders[code]
    return order[order.index(first) : order.index(last) + 1]
