"""The bars a test's lake holds, as frames by path, and how they are compared with a fault-free
close's (the `dji_reference` fixture)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from market_assets.lake.datasets import BARS
from market_assets.lake.store import ParquetStore


def lake_command(root: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m market_assets ARGS` on the lake at `root`, with no other setting (no instance)."""
    env = {"PATH": "/usr/bin:/bin", "MARKET_ASSETS_DATA_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "market_assets", *args], env=env, capture_output=True, text=True, timeout=300)


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
