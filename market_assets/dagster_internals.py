"""The Dagster internals market_assets relies on, in one place: the sqlite storage classes, the
check result's pointer to its materialization, a run's asset check executions and the freshness
state. `market_assets_tests/test_dagster_internals.py` guards them; the list to go through on an
upgrade. Why each: docs/design.md#the-pooled-sqlite-storage-and-dagster-internals.
"""

from collections.abc import Sequence

from dagster import AssetKey, DagsterInstance
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.base import EventLogStorage
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
