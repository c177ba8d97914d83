"""What one partition's daily snapshot gives each selected bars asset: its files, written as soon as
it is built, their materialization metadata and the findings of their checks.
Why: docs/design.md#one-step-builds-the-three-bars-assets.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from market_assets.defs.bars.adjustments import adjustment_metadata
from market_assets.defs.bars.checks import (
    BLOCKING_RULES,
    FILE_INTACT,
    Findings,
    blocking_failures,
    daily_findings,
    resampled_findings,
)
from market_assets.defs.bars.fetching import Download
from market_assets.defs.bars.keys import PERIODS
from market_assets.defs.bars.metadata import bars_metadata
from market_assets.defs.bars.resources import DataQualityResource
from market_assets.defs.bars.targets import Target
from market_assets.domain.adjustment_detection import Adjustment, detect_adjustment
from market_assets.domain.candles import resample, with_symbol
from market_assets.domain.judged_rows import NewRows
from market_assets.domain.quality_rules import Finding
from market_assets.lake.datasets import DAILY_BARS
from market_assets.lake.fetch_record import FetchRecord
from market_assets.lake.store import ParquetStore


@dataclass(frozen=True)
class Built:
    """One partition once its files are written: the materialization metadata and the check's
    findings of each asset written, by asset name, its adjustment and what blocks it."""

    metadata: dict[str, dict[str, dg.MetadataValue]]
    findings: dict[str, Findings]
    adjustment: Adjustment | None
    blocked: list[str]


class PartitionBuilder:
    """Builds and writes the `selected` bars assets (by name) of one partition from its daily snapshot."""

    def __init__(self, selected: Collection[str], store: ParquetStore, quality: DataQualityResource) -> None:
        self._selected = set(selected)
        self._store = store
        self._quality = quality

    def __call__(
        self, target: Target, daily: pd.DataFrame, previous: pd.DataFrame | None, download: Download | None = None
    ) -> Built:
        """The partition `target` from its daily snapshot `daily`, compared with the symbol's
        `previous` stored snapshot (None for its first); `download` says how `daily` was fetched
        (None when it was read from the lake, where it stays as it is). After an incremental
        download the past is known unchanged: no adjustment is looked for."""
        metadata, findings, adjustment = {}, {}, None
        known = None
        # Weekly and monthly bars say when the data they are built from was fetched.
        fetched = download.fetched if download is not None else self._store.fetch_record(DAILY_BARS, target.key)
        if download is not None and download.incremental and previous is not None:
            known = NewRows(len(previous), pd.Timestamp(previous["date"].iloc[-1]))
        if DAILY_BARS in self._selected:
            adjustment = None if previous is None or known is not None else detect_adjustment(previous, daily)
            frame = with_symbol(daily, target.symbol)
            metadata[DAILY_BARS], intact = self._written(DAILY_BARS, target, frame, fetched, rewrite=download is not None)
            metadata[DAILY_BARS].update(adjustment_metadata(adjustment))
            if download is not None:
                metadata[DAILY_BARS]["download"] = dg.MetadataValue.text(
                    f"{download.description}; {download.fetched.describe(target.session)}"
                )
            findings[DAILY_BARS] = {
                FILE_INTACT: intact,
                **daily_findings(target, daily, previous, self._quality, adjustment, new=known),
            }
        blocked = blocking_failures(
            findings[DAILY_BARS]
            if DAILY_BARS in findings
            else daily_findings(target, daily, previous, None, None, BLOCKING_RULES)
        )
        for asset, period in PERIODS.items():
            if asset in self._selected and not blocked:
                frame = with_symbol(resample(daily, period, target.session, target.exchange), target.symbol)
                metadata[asset], intact = self._written(asset, target, frame, fetched)
                findings[asset] = {FILE_INTACT: intact, **resampled_findings(target, daily, frame, period)}
        return Built(metadata, findings, adjustment, blocked)

    def _written(
        self, asset: str, target: Target, frame: pd.DataFrame, fetched: FetchRecord | None, rewrite: bool = True
    ) -> tuple[dict[str, dg.MetadataValue], Finding]:
        """Write `frame` as the partition of `asset`, fetched as `fetched` says (unless it is stored
        already and not to be rewritten), read back; its metadata and its `file_intact` finding."""
        path = self._store.path(asset, target.key)
        if rewrite:
            self._store.write(asset, target.key, frame, read_back=True, fetched=fetched)
        return bars_metadata(frame, path), Finding(True, f"{path} reads back as written")
