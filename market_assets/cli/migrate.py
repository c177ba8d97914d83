"""`python -m market_assets migrate`: bring a lake written in the earlier layout into today's, at the
data root (README.md#files; `market_assets/lake/migration.py` says what changes)."""

from __future__ import annotations

import sys

from market_assets.cli.configuration import close_in_flight, existing_lake
from market_assets.lake.migration import migrate
from market_assets.sources.indices import exchange_of


def migrate_lake(dry_run: bool) -> int:
    """Migrate the lake at the configured data root, or say what would move (`dry_run`).

    Refused while a close is queued or running on the instance at `$DAGSTER_HOME`: its runs would
    write the new layout beside files still being moved.
    """
    store = existing_lake()
    if not dry_run and close_in_flight():
        print("a close run is queued or running on the instance at $DAGSTER_HOME: migrate once it has ended", file=sys.stderr)
        return 1
    try:
        report = migrate(store, exchange_of, dry_run=dry_run)
    except (OSError, ValueError) as error:
        print(f"migration of {store.root} stopped: {error}", file=sys.stderr)
        return 1
    print(f"lake at {store.root}:")
    for line in report.lines(dry_run):
        print(f"  {line}")
    return 0
