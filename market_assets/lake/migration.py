"""Moving a lake written in the earlier layout (bare date folders) into today's, in place: each old
file rewritten as a close writes it today, before the old one is removed.

Why and how: docs/design.md#the-lakes-files-say-what-they-hold.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from market_assets.domain.candles import Period, resample, with_symbol
from market_assets.lake.datasets import ADJUSTMENT_EVENTS, DAILY_BARS, INDEX_COMPOSITION, MONTHLY_BARS, WEEKLY_BARS
from market_assets.lake.store import ParquetStore

_DAY_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
BARS_PERIODS: dict[str, Period] = {WEEKLY_BARS: "week", MONTHLY_BARS: "month"}
WITHOUT_SESSION_COLUMN = (INDEX_COMPOSITION, ADJUSTMENT_EVENTS)


@dataclass
class MigrationReport:
    """What a migration moved (or would move), asset by asset, and what it left."""

    moved: dict[str, int] = field(default_factory=dict)
    left: list[str] = field(default_factory=list)

    def lines(self, dry_run: bool) -> list[str]:
        verb = "would move" if dry_run else "moved"
        if not self.moved and not self.left:
            return ["nothing to migrate: the lake is in the current layout"]
        lines = [f"{asset}: {verb} {count} file{'s' if count != 1 else ''}" for asset, count in self.moved.items()]
        return lines + [f"left in place: {reason}" for reason in self.left]


def old_layout_keys(store: ParquetStore, asset: str) -> list[str]:
    """Keys (`date|name`) of the partitions of `asset` stored in the earlier layout, sorted."""
    fs, base = store.filesystem, store.asset_folder(asset)
    if not fs.exists(base):
        return []
    keys = []
    for path in fs.glob(f"{base}/*/*.parquet"):
        folder, name = path[len(base) + 1 : -len(".parquet")].split("/")
        if _DAY_FOLDER.match(folder) and not name.startswith("."):
            keys.append(f"{folder}|{name}")
    return sorted(keys)


def migrate(store: ParquetStore, calendar_of: Callable[[str], str], *, dry_run: bool = False) -> MigrationReport:
    """Rewrite every partition of the earlier layout under `store` in today's; `calendar_of`
    names a symbol's exchange calendar (for the `incomplete` flag of its weekly and monthly bars)."""
    report = MigrationReport()
    for asset in (DAILY_BARS, *BARS_PERIODS, *WITHOUT_SESSION_COLUMN):
        for key in old_layout_keys(store, asset):
            old = _legacy_path(store, asset, key)
            frame = _current_frame(store, asset, key, old, calendar_of, dry_run)
            if frame is None:
                report.left.append(f"{old}: no daily_bars snapshot of {key} to resample it from")
                continue
            report.moved[asset] = report.moved.get(asset, 0) + 1
            if not dry_run:
                store.write(asset, key, frame)
                store.filesystem.rm(old)
        if not dry_run:
            _remove_empty_day_folders(store, asset)
    return report


def _current_frame(
    store: ParquetStore, asset: str, key: str, old: str, calendar_of: Callable[[str], str], dry_run: bool
) -> pd.DataFrame | None:
    session, name = key.split("|")
    if asset in BARS_PERIODS:
        if store.exists(DAILY_BARS, key):
            daily = store.read(DAILY_BARS, key)
        elif dry_run and store.filesystem.exists(_legacy_path(store, DAILY_BARS, key)):
            daily = store.read_file(_legacy_path(store, DAILY_BARS, key))
        else:
            return None
        return with_symbol(resample(daily, BARS_PERIODS[asset], pd.Timestamp(session), calendar_of(name)), name)
    frame = store.read_file(old)
    if asset == DAILY_BARS:
        return with_symbol(frame, name)
    return frame.drop(columns="session", errors="ignore")


def _legacy_path(store: ParquetStore, asset: str, key: str) -> str:
    session, name = key.split("|")
    return f"{store.asset_folder(asset)}/{session}/{name}.parquet"


def _remove_empty_day_folders(store: ParquetStore, asset: str) -> None:
    fs, base = store.filesystem, store.asset_folder(asset)
    if not fs.exists(base):
        return
    for folder in fs.ls(base, detail=False):
        day = folder.rstrip("/").rsplit("/", 1)[-1]
        if _DAY_FOLDER.match(day) and fs.isdir(folder) and not fs.ls(folder, detail=False):
            fs.rmdir(folder)
