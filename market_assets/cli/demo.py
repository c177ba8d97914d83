"""`python -m market_assets demo`: the close of all three indices against synthetic data on loopback,
for their latest sessions or, with `--sessions N`, for each of their last N sessions in turn, the
server serving each session as its own day (a month of live closes, as the platform would have
made them). Then the membership table, as the daemon's `close_bars` sensor rebuilds it once no close
is in flight, so that every reader and SQL view of the README works on the demo's lake at once."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd

from market_assets import definitions
from market_assets.cli.close import QUIET, close_indices, run_failure
from market_assets.cli.configuration import REFUSED, configured_lake
from market_assets.cli.instance import open_instance
from market_assets.defs.compositions.jobs import membership_job
from market_assets.defs.partitions import require_in_window
from market_assets.defs.runs import process_tags
from market_assets.domain.exchange_sessions import calendar, latest_closed_session
from market_assets.lake.datasets import INDEX_COMPOSITION, INDEX_MEMBERSHIP
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


def run_demo(workdir: Path, sessions: int = 1) -> int:
    """Generate the synthetic data set (once), serve it, and close every index into `workdir` for
    each of its exchange's last `sessions` sessions, oldest first, served as of that session."""
    closes = _closes(sessions)
    try:
        require_in_window(next(iter(closes)), f"demo --sessions {sessions}")
    except ValueError as error:
        print(error, file=sys.stderr)
        return REFUSED
    folders = demo_folders(workdir)
    lake = folders.lake
    with StooqServer(folders.source) as server:
        os.environ.update(folders.environment(server.url))
        print(f"Synthetic Stooq-compatible server at {server.url}; Dagster instance in {folders.home}")
        with open_instance(configured_lake()) as instance:
            if sessions == 1:
                status = close_indices(list(followed_indices()), None, False, instance=instance)
            else:
                status = 0
                for day, indices in closes.items():
                    server.as_of = day
                    status |= close_indices(indices, day, False, instance=instance)
            if any(lake.glob(f"{INDEX_COMPOSITION}/*/*.parquet")):  # not when every composition failed
                status |= materialize_membership(instance)
    print(f"\nParquet written under {lake}:")
    for folder in sorted(path for path in lake.glob("*/*") if path.is_dir()):
        files = sorted(folder.glob("*.parquet"))
        print(f"  {folder.relative_to(lake)}/  {len(files)} files, e.g. {files[0].name if files else '-'}")
    for table in sorted(lake.glob("*.parquet")):
        print(f"  {table.name}")
    print(f"\nTo read it (README.md#reading-the-data):\n  export {_exports(folders)}")
    return status


def materialize_membership(instance: dg.DagsterInstance) -> int:
    """Materialize `index_membership` from the stored compositions on `instance`, as the
    `close_bars` sensor does once no close run is in flight (`refresh_membership`); 1 when it failed."""
    result = (
        definitions.defs()
        .resolve_job_def(membership_job.name)
        .execute_in_process(instance=instance, run_config=QUIET, tags=process_tags(), raise_on_error=False)
    )
    failure = run_failure(result, INDEX_MEMBERSHIP)
    if failure:
        print(failure, file=sys.stderr)
        return 1
    print(f"index_membership rebuilt from the stored compositions (run {result.run_id})")
    return 0


def _exports(folders: DemoFolders) -> str:
    """The variables that point the commands at the demo's lake and instance, for a shell."""
    return f"MARKET_ASSETS_DATA_ROOT={shlex.quote(str(folders.lake))} DAGSTER_HOME={shlex.quote(str(folders.home))}"


def _closes(sessions: int) -> dict[str, list[str]]:
    """The indices to close on each day of their exchanges' last `sessions` sessions, oldest first."""
    days: dict[str, list[str]] = {}
    for name, index in followed_indices().items():
        exchange = calendar(index.calendar)
        for day in exchange.sessions_window(pd.Timestamp(latest_closed_session(index.calendar)), -sessions):
            days.setdefault(f"{day:%Y-%m-%d}", []).append(name)
    return dict(sorted(days.items()))
