"""`python -m market_assets demo`: the close of all three indices against synthetic data on loopback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from market_assets.cli.close import close_indices
from market_assets.sources.indices import INDICES
from stooq_server import StooqServer, generate_synthetic

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_demo(workdir: Path) -> int:
    """Generate the synthetic data set (once), serve it, and close every index into `workdir`."""
    source, lake, home = workdir / "stooq-synthetic", workdir / "lake", workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    if not (source / "d").exists():
        print(f"Generating the synthetic Stooq data set into {source} ...")
        generate_synthetic(source)
    with StooqServer(source) as server:
        os.environ.update(
            {
                "DAGSTER_HOME": str(home),
                "MARKET_ASSETS_DATA_ROOT": str(lake),
                "STOOQ_BASE_URL": server.url,
            }
        )
        print(f"Synthetic Stooq-compatible server at {server.url}; Dagster instance in {home}")
        status = close_indices(list(INDICES), None, False)
    print(f"\nParquet written under {lake}:")
    for folder in sorted(path for path in lake.glob("*/*") if path.is_dir()):
        files = sorted(folder.glob("*.parquet"))
        print(f"  {folder.relative_to(lake)}/  {len(files)} files, e.g. {files[0].name if files else '-'}")
    return status
