"""`python -m market_assets compact`: remove the snapshots that can be rebuilt from others, at the
data root (README.md#what-the-lake-keeps, `market_assets/lake/compaction.py`)."""

from __future__ import annotations

import sys

from market_assets.cli.configuration import close_in_flight, existing_lake
from market_assets.lake.compaction import compact


def compact_lake(dry_run: bool) -> int:
    """Compact the lake at the configured data root, or say what would go (`dry_run`).

    Refused while a close is queued or running on the instance at `$DAGSTER_HOME`: a forced re-run
    could replace a snapshot while it is being compared.
    """
    store = existing_lake()
    if not dry_run and close_in_flight():
        print("a close run is queued or running on the instance at $DAGSTER_HOME: compact once it has ended", file=sys.stderr)
        return 1
    print(f"lake at {store.root}:", flush=True)
    try:
        report = compact(store, dry_run=dry_run, progress=lambda line: print(f"  {line}", flush=True))
    except (OSError, ValueError, RuntimeError) as error:
        print(f"compaction of {store.root} stopped: {error}", file=sys.stderr)
        return 1
    for line in report.lines(dry_run):
        print(f"  {line}")
    return 0
