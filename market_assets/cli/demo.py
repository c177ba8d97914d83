"""`python -m market_assets demo`: the close of all three indices against synthetic data on loopback."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from market_assets.cli.close import close_indices
from market_assets.sources.indices import followed_indices
from stooq_server import StooqServer, generate_synthetic

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DemoFolders:
    """The demo's synthetic data set, data root and Dagster instance under its folder."""

    source: Path
    lake: Path
    home: Path

    def environment(self, base_url: str) -> dict[str, str]:
        """The variables that point the code location at the demo's instance, lake and server."""
        return {"DAGSTER_HOME": str(self.home), "MARKET_ASSETS_DATA_ROOT": str(self.lake), "STOOQ_BASE_URL": base_url}


def demo_folders(workdir: Path) -> DemoFolders:
    """The demo's folders under `workdir`: the instance holding the project's `dagster.yaml`, and
    the synthetic data set, generated the first time."""
    folders = DemoFolders(workdir / "stooq-synthetic", workdir / "lake", workdir / "dagster_home")
    folders.home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", folders.home / "dagster.yaml")
    if not (folders.source / "d").exists():
        print(f"Generating the synthetic Stooq data set into {folders.source} ...")
        generate_synthetic(folders.source)
    return folders


def run_demo(workdir: Path) -> int:
    """Generate the synthetic data set (once), serve it, and close every index into `workdir`."""
    folders = demo_folders(workdir)
    lake = folders.lake
    with StooqServer(folders.source) as server:
        os.environ.update(folders.environment(server.url))
        print(f"Synthetic Stooq-compatible server at {server.url}; Dagster instance in {folders.home}")
        status = close_indices(list(followed_indices()), None, False)
    print(f"\nParquet written under {lake}:")
    for folder in sorted(path for path in lake.glob("*/*") if path.is_dir()):
        files = sorted(folder.glob("*.parquet"))
        print(f"  {folder.relative_to(lake)}/  {len(files)} files, e.g. {files[0].name if files else '-'}")
    return status
