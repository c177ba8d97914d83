"""A run removed from the instance with everything Dagster stored for it, including what
`DagsterInstance.delete_run` leaves. Why: docs/design.md#the-instance-keeps-its-size.
"""

from __future__ import annotations

import dagster as dg

from market_assets.dagster_internals import delete_check_executions
from market_assets.instance.pooled_sqlite import PooledSqliteEventLogStorage, PooledSqliteRunStorage


def delete_run(instance: dg.DagsterInstance, run_id: str) -> None:
    """Remove run `run_id` and everything stored for it: what `DagsterInstance.delete_run` does,
    with the run's own row last, so that a deletion killed halfway leaves the run to be found and
    deleted again."""
    delete_check_executions(instance.event_log_storage, run_id)
    instance.compute_log_manager.delete_logs(prefix=[run_id])
    instance.event_log_storage.delete_events(run_id)
    instance.run_storage.delete_run(run_id)


def reclaim_space(instance: dg.DagsterInstance) -> None:
    """Give the space of deleted runs back to the file system: sqlite reuses freed pages but never
    shrinks a file by itself (PostgreSQL's autovacuum makes the space reusable by itself)."""
    for storage in (instance.event_log_storage, instance.run_storage):
        if isinstance(storage, (PooledSqliteEventLogStorage, PooledSqliteRunStorage)):
            storage.vacuum()
