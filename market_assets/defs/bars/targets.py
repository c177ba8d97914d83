"""Which partitions a bars step may load (none that no schedule would ever ask for), and which of
them are stored already. Why: docs/design.md#runs-start-ahead-of-the-publication.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from market_assets.defs.bars.planning import close_job_name
from market_assets.defs.partitions import bars_dimensions, composition_partitions, dimensions
from market_assets.defs.runs import COMPOSITION_TAG, INDEX_TAG, PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from market_assets.domain.exchange_sessions import require_session
from market_assets.lake.compositions import composition_for, constituents
from market_assets.lake.datasets import DAILY_BARS, INDEX_COMPOSITION
from market_assets.lake.store import ParquetStore
from market_assets.sources.indices import exchange_of, followed_indices


@dataclass(frozen=True)
class Target:
    """One (session, symbol) partition of the step."""

    key: str
    symbol: str
    session: pd.Timestamp

    @property
    def exchange(self) -> str:
        return exchange_of(self.symbol)


def step_targets(context: dg.AssetExecutionContext, store: ParquetStore) -> list[Target]:
    """The partitions of this step, refusing any that no schedule would ever ask for."""
    if not (context.has_partition_key or context.has_partition_key_range):
        raise dg.Failure(_without_partitions(context.job_name), allow_retries=False)
    targets, problems = [], []
    for key in context.partition_keys:
        dims = bars_dimensions(key)
        symbol = dims["symbol"]
        try:
            session = require_session(exchange_of(symbol), dims["date"], symbol)
        except ValueError as error:
            problems.append(str(error))
            continue
        targets.append(Target(str(key), symbol, session))
    index = context.run.tags.get(INDEX_TAG)
    if index and not problems:
        problems = _not_in_index(index, targets, store, context.run.tags.get(COMPOSITION_TAG))
    if problems:
        raise dg.Failure(
            "Asked for partitions that cannot be loaded:\n" + "\n".join(f"- {p}" for p in problems),
            allow_retries=False,
        )
    return targets


def _not_in_index(index: str, targets: list[Target], store: ParquetStore, planned_by: str | None) -> list[str]:
    """Symbols not listed by the index's latest composition stored at or before their session,
    or by the composition the run was `planned_by`, at or before it (the bars run may start
    before the session's own composition is stored)."""
    problems = []
    for session in sorted({t.session for t in targets}):
        day = f"{session:%Y-%m-%d}"
        last = min(day, dimensions(planned_by, composition_partitions)["date"]) if planned_by else day
        listed = composition_for(store, index, last)
        if listed is None:
            return [
                f"index {index} has no stored composition for {day} or before "
                f"(under {store.root}/{INDEX_COMPOSITION}): materialize it first"
            ]
        members = set(constituents(store, listed))
        as_of = dimensions(listed, composition_partitions)["date"]
        problems += [
            f"{t.symbol} is not a constituent of {index} on {as_of}"
            for t in targets
            if t.session == session and t.symbol not in members
        ]
    return problems


def stored_daily(targets: Iterable[Target], store: ParquetStore) -> set[str]:
    """The keys of `targets` whose daily snapshot is stored."""
    return {t.key for t in targets if store.exists(DAILY_BARS, t.key)}


def require_stored_daily(targets: list[Target], store: ParquetStore) -> set[str]:
    """The keys of `targets`, all of whose daily snapshots must be stored (weekly or monthly bars
    materialized without `daily_bars`), or a failure naming those that are not."""
    stored = stored_daily(targets, store)
    absent = [t.key for t in targets if t.key not in stored]
    if absent:
        listed = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise dg.Failure(
            f"daily_bars is not stored for {len(absent)} of {len(targets)} partitions ({listed}) under "
            f"{store.root}/daily_bars: materialize daily_bars with the weekly or monthly bars",
            allow_retries=False,
        )
    return stored


def _without_partitions(job: str) -> str:
    """What a run launched without partitions (`dagster job execute` without tags) must pass."""
    index = next((name for name in followed_indices() if close_job_name(name) == job), "INDEX")
    return (
        f"{job} was launched without partitions: pass the first and last (session, symbol) of the "
        f'range as tags, --tags \'{{"{PARTITION_RANGE_START_TAG}": "<session>|<first symbol>", '
        f'"{PARTITION_RANGE_END_TAG}": "<session>|<last symbol>"}}\'. '
        f"`python -m market_assets plan {index} --session <session>` prints the exact commands, in the "
        "order the symbols were registered"
    )


def target_of(key: str) -> Target:
    """The partition `key` (`<date>|<symbol>`) as a target."""
    dims = bars_dimensions(key)
    return Target(key, dims["symbol"], pd.Timestamp(dims["date"]))
