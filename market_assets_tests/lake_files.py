"""The bars a test's lake holds, as frames by path, and how they are compared with a fault-free
close's (the `dji_reference` fixture)."""

from __future__ import annotations

import pandas as pd

from market_assets.lake.store import ParquetStore

BARS = ("daily_bars", "weekly_bars", "monthly_bars")


def bars_frames(store: ParquetStore, session: str | None = None) -> dict[str, pd.DataFrame]:
    """Every stored bars partition (of `session` only, if given) by its path under the root
    (`daily_bars/session=2026-12-02/SYNU001.US.parquet`), on local disk or in an object store."""
    return {
        store.path(asset, key)[len(store.root) + 1 :]: store.read(asset, key)
        for asset in BARS
        for key in store.partition_keys(asset)
        if session is None or key.startswith(f"{session}|")
    }


def assert_same_bars(stored: dict[str, pd.DataFrame], reference: dict[str, pd.DataFrame]) -> None:
    """The same partitions, each frame equal to the reference's."""
    assert sorted(stored) == sorted(reference)
    for path, frame in reference.items():
        pd.testing.assert_frame_equal(stored[path], frame, obj=path)
