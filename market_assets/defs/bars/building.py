"""What one partition's daily snapshot gives each selected bars asset, before anything is stored.

The bars step builds each partition in the thread that receives its snapshot, while requests for
the others are in flight (`fetching.py`): the frames, their materialization metadata and their
checks' findings; for `daily_bars`, the comparison with the symbol's previous snapshot; and the
blocking rules the daily snapshot breaks, which keep its weekly and monthly bars from being built.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import pandas as pd

from market_assets.defs.bars.adjustments import adjustment_metadata
from market_assets.defs.bars.checks import (
    BLOCKING_RULES,
    Findings,
    blocking_failures,
    daily_findings,
    resampled_findings,
)
from market_assets.defs.bars.fetching import Download
from market_assets.defs.bars.keys import DAILY, PERIODS
from market_assets.defs.bars.metadata import bars_metadata
from market_assets.defs.bars.resources import DataQualityResource
from market_assets.defs.bars.targets import Target
from market_assets.domain.adjustment_detection import Adjustment, detect_adjustment
from market_assets.domain.candles import resample, with_symbol
from market_assets.domain.judged_rows import NewRows
from market_assets.lake.store import ParquetStore


@dataclass(frozen=True)
class Built:
    """One partition's frames, metadata and findings by asset name, its adjustment and what blocks it."""

    frames: dict[str, pd.DataFrame]
    metadata: dict[str, dict[str, dg.MetadataValue]]
    findings: dict[str, Findings]
    adjustment: Adjustment | None
    blocked: list[str]


class PartitionBuilder:
    """Builds the selected assets of one partition from its daily snapshot.

    Each partition's metadata is handed to Dagster as it is built, with the public
    `context.add_asset_metadata(..., partition_key=...)`. That call checks the key against every
    key of the step's partition range, which it builds anew each time (a `MultiPartitionKey` per
    partition, and the exchange's symbol partitions read from the instance): 3 ms a call at 90 partitions,
    6 ms at 200, so about 1.5 s of CPU for a run of 100 symbols (docs/performance.md). It is made
    here, while the step's requests are in flight, rather than for every partition at once after
    the last answer.
    """

    def __init__(self, context: dg.AssetExecutionContext, store: ParquetStore, quality: DataQualityResource) -> None:
        self._context = context
        self._selected = {key.path[-1]: key for key in context.selected_asset_keys}
        self._store = store
        self._quality = quality

    def __call__(
        self, target: Target, daily: pd.DataFrame, previous: pd.DataFrame | None, download: Download | None = None
    ) -> Built:
        """The partition `target` from its daily snapshot `daily`, compared with the symbol's
        `previous` stored snapshot (None for its first); `download` says how `daily` was fetched
        (None when it was read from the lake).

        An incremental download has compared the past with `previous` already and found it
        unchanged: the snapshot brings its new bars only, and there is no adjustment to look for."""
        frames, metadata, findings, adjustment = {}, {}, {}, None
        known = None
        if download is not None and download.incremental and previous is not None:
            known = NewRows(len(previous), pd.Timestamp(previous["date"].iloc[-1]))
        if DAILY in self._selected:
            adjustment = None if previous is None or known is not None else detect_adjustment(previous, daily)
            frames[DAILY] = with_symbol(daily, target.symbol)
            metadata[DAILY] = {
                **bars_metadata(frames[DAILY], self._store.path(DAILY, target.key)),
                **adjustment_metadata(adjustment),
                **({} if download is None else {"download": dg.MetadataValue.text(download.description)}),
            }
            findings[DAILY] = daily_findings(target, daily, previous, self._quality, adjustment, new=known)
        blocked = blocking_failures(
            findings[DAILY]
            if DAILY in findings
            else daily_findings(target, daily, previous, None, None, BLOCKING_RULES)
        )
        for asset, period in PERIODS.items():
            if asset in self._selected and not blocked:
                frames[asset] = with_symbol(resample(daily, period, target.session, target.exchange), target.symbol)
                metadata[asset] = bars_metadata(frames[asset], self._store.path(asset, target.key))
                findings[asset] = resampled_findings(target, daily, frames[asset], period)
        for asset, values in metadata.items():
            self._context.add_asset_metadata(values, asset_key=self._selected[asset], partition_key=target.key)
        return Built(frames, metadata, findings, adjustment, blocked)
