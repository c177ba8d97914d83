"""The Dagster internals market_assets relies on, in one place, because dagster 1.13.27 has no
public API for what they do. `market_assets_tests/test_dagster_internals.py` fails, naming the
member, when the pinned Dagster changes any of them, and is the list to go through on an upgrade.

- **The sqlite storage** that `market_assets.instance.pooled_sqlite` extends to keep its database
  connections open: Dagster's sqlite storages open a SQLAlchemy engine for every connection, and on
  a close run that was half the run's CPU time (docs/performance.md). A custom storage can only be
  written by subclassing these classes; there is no public storage API below `DagsterInstance`.
- **`AssetCheckEvaluationTargetMaterializationData`**, the pointer an asset check's result carries
  to the materialization it checked. `dg.AssetCheckEvaluation` takes it, but Dagster does not export
  its type; `dg.AssetCheckResult`, which fills it in by itself, reports only the partition of a
  single-partition step, and a close step covers hundreds (`market_assets.defs.bars.checks`).
  Without the pointer the UI shows each partition's check as not run on its latest materialization.
- **The asset check executions of a run**, which `DagsterInstance.delete_run` leaves behind (it
  removes the run's row and events only): retention (`market_assets.instance.retention`) removes
  them with `delete_check_executions`, and the pooled sqlite storage the run's tags, which sqlite,
  enforcing no foreign keys, keeps when the run's row goes.
- **The freshness state** of an asset as the daemon last evaluated its freshness policy
  (`DagsterInstance.get_freshness_state_records`, `FreshnessState`), which the `freshness_alerts`
  sensor turns into an alert: Dagster 1.13 has no public reader of it, and alerts on freshness only
  in Dagster+.
"""

from collections.abc import Sequence

from dagster import AssetKey, DagsterInstance
from dagster._core.storage.event_log.base import EventLogStorage
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    ConcurrencySlotsTable,
    SqlEventLogStorageTable,
)
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.schema import RunTagsTable
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite import create_db_conn_string
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from dagster._utils.concurrency import ConcurrencySlotStatus

__all__ = [
    "ASSET_CHECK_EVENTS",
    "ASSET_EVENTS",
    "INDEX_SHARD_NAME",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "AssetCheckExecutionRecordStatus",
    "AssetCheckExecutionsTable",
    "AssetCheckEvaluationTargetMaterializationData",
    "ConcurrencySlotStatus",
    "ConcurrencySlotsTable",
    "ConfigurableClassData",
    "DagsterEventType",
    "DagsterSqliteStorage",
    "EventLogEntry",
    "FreshnessState",
    "FreshnessStateChange",
    "PartitionKeyFilter",
    "RunTagsTable",
    "SqlEventLogStorageTable",
    "SqliteEventLogStorage",
    "SqliteRunStorage",
    "SqliteScheduleStorage",
    "_event_logs_directory",
    "_runs_directory",
    "_schedule_directory",
    "create_db_conn_string",
    "delete_check_executions",
    "freshness_states",
]


def freshness_states(instance: DagsterInstance, keys: Sequence[AssetKey]) -> dict[AssetKey, tuple[FreshnessState, float]]:
    """The freshness state of each of `keys` that has one, and when it changed to it (a timestamp)."""
    records = instance.get_freshness_state_records(keys)
    return {key: (record.freshness_state, record.updated_at.timestamp()) for key, record in records.items()}


def delete_check_executions(storage: EventLogStorage, run_id: str) -> None:
    """Remove the asset check executions (planned and evaluated) of the run `run_id` from a SQL
    event log storage (sqlite's index database, or PostgreSQL)."""
    with storage.index_connection() as conn:  # type: ignore[attr-defined]
        conn.execute(AssetCheckExecutionsTable.delete().where(AssetCheckExecutionsTable.c.run_id == run_id))
