"""The local Dagster instance's sqlite storage (`PooledSqliteStorage`, selected in `dagster.yaml`):
Dagster's files and schema, with connections kept open and asset events written in batches.

Why: docs/design.md#the-pooled-sqlite-storage-and-dagster-internals.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from market_assets.dagster_internals import (
    ASSET_CHECK_EVENTS,
    ASSET_EVENTS,
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    AssetCheckExecutionRecordStatus,
    AssetCheckExecutionsTable,
    ConcurrencySlotsTable,
    ConcurrencySlotStatus,
    ConfigurableClassData,
    DagsterEventType,
    DagsterSqliteStorage,
    EventLogEntry,
    PartitionKeyFilter,
    RunTagsTable,
    SqlEventLogStorageTable,
    SqliteEventLogStorage,
    SqliteRunStorage,
    SqliteScheduleStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
    create_db_conn_string,
)

_OPEN_SHARDS = 16
"""Event log databases (one per run, plus the index) kept open per process. A run writes to its
own and the index; the webserver and the daemon read many runs', so older ones are closed."""

_BATCHED = frozenset(
    {
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        DagsterEventType.ASSET_CHECK_EVALUATION,
        DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
    }
)
"""The events of a run that are written in batches: a close run stores several per symbol."""

_BATCH_EVENTS = 500
"""Batched events held at most before they are written."""

_CHECK_RESULT_KEY = ("asset_key", "check_name", "run_id", "partition")
_CHECK_RESULT_COLUMNS = (
    "execution_status",
    "evaluation_event",
    "evaluation_event_timestamp",
    "evaluation_event_storage_id",
    "materialization_event_storage_id",
)
"""How a check result finds its planned row in the asset check executions, and what it sets there."""


def _engine(conn_string: str) -> sa.Engine:
    """An engine over one sqlite database, with a few connections kept open between uses."""
    engine = sa.create_engine(
        conn_string,
        pool_size=1,
        max_overflow=4,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
    )

    @sa.event.listens_for(engine, "connect")
    def _synchronous_normal(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` with an engine per shard, the last `_OPEN_SHARDS` ones kept open."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, sa.Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        self._schema: set[str] = set()
        """Tables (and `asset_keys.<column>`) known to exist."""
        self._pending: list[EventLogEntry] = []
        """Batched events not written yet, in the order they came."""
        self._pending_lock = threading.RLock()
        self._writing = threading.local()
        super().__init__(base_dir, inst_data)

    def _shard_engine(self, shard: str) -> sa.Engine:
        with self._engines_lock:
            engine = self._engines.pop(shard, None) or _engine(self.conn_string_for_shard(shard))
            self._engines[shard] = engine
            while len(self._engines) > _OPEN_SHARDS:
                self._engines.popitem(last=False)[1].dispose()
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sa.Connection]:
        # Whatever is read or written next sees the events held for a batch.
        if not getattr(self._writing, "batch", False):
            self.flush()
        # The same transaction per connection, under the same process-wide lock, as the original.
        with self._db_lock:
            engine = self._shard_engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    # --- Events written in batches ---------------------------------------------------------------

    def store_event(self, event: EventLogEntry) -> None:
        """Store `event`; a run's materializations, check results and their planned events are
        held and written `_BATCH_EVENTS` at a time, or as soon as anything else is stored or
        read in this process (see `flush`)."""
        if event.is_dagster_event and event.run_id and event.dagster_event_type in _BATCHED:
            with self._pending_lock:
                self._pending.append(event)
                if len(self._pending) >= _BATCH_EVENTS:
                    self.flush()
            return
        super().store_event(event)  # through `_connect`, which writes the held events first

    def flush(self) -> None:
        """Write the held events, each once into its run's database and once into the index, one
        transaction per database. Any other call into this storage (a read, another kind of
        event) flushes first, so a process reads back what it stored."""
        with self._pending_lock:
            events, self._pending = self._pending, []
            if not events:
                return
            self._writing.batch = True
            try:
                self._write_batch(events)
            finally:
                self._writing.batch = False

    def _write_batch(self, events: Sequence[EventLogEntry]) -> None:
        rows = [self._event_to_row(event) for event in events]  # each event serialized once
        by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event, row in zip(events, rows):
            by_run[event.run_id].append(row)
        for run_id, run_rows in by_run.items():
            with self.run_connection(run_id) as conn:
                conn.execute(SqlEventLogStorageTable.insert(), run_rows)
        with self.index_transaction() as conn:
            inserted = conn.execute(
                SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True),
                rows,
            )
            ids = [row.id for row in inserted]
            assets = [(event, event_id) for event, event_id in zip(events, ids) if event.dagster_event_type in ASSET_EVENTS]
            self._store_asset_event_tags(conn, [event for event, _ in assets], [event_id for _, event_id in assets])
            # An asset's row keeps its latest event of each kind: only those are written.
            latest = {(event.dagster_event.asset_key, event.dagster_event_type): (event, event_id) for event, event_id in assets}
            for event, event_id in sorted(latest.values(), key=lambda item: item[1]):
                self._store_asset_event(conn, event, event_id)
            checks = [
                (event, event_id, row["event"])
                for event, event_id, row in zip(events, ids, rows)
                if event.dagster_event_type in ASSET_CHECK_EVENTS
            ]
            self._store_check_events(conn, checks)

    def _store_check_events(self, conn: sa.Connection, checks: Sequence[tuple[EventLogEntry, int, str]]) -> None:
        """The asset check executions' rows of planned checks (one per partition) and of check
        results (the planned row updated), as Dagster's storage writes them, with each event's
        serialization made once and the rows written together."""
        table = AssetCheckExecutionsTable
        planned, results = [], []
        for event, event_id, serialized in checks:
            data = event.dagster_event.event_specific_data
            common = {
                "asset_key": data.asset_key.to_string(),
                "check_name": data.check_name,
                "run_id": event.run_id,
                "evaluation_event": serialized,
                "evaluation_event_timestamp": datetime.fromtimestamp(event.timestamp, UTC).replace(tzinfo=None),
                "evaluation_event_storage_id": event_id,
            }
            if event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
                keys = data.partitions_subset.get_partition_keys() if data.partitions_subset else [None]
                status = AssetCheckExecutionRecordStatus.PLANNED.value
                planned += [{**common, "execution_status": status, "partition": key} for key in keys]
                continue
            status = AssetCheckExecutionRecordStatus.SUCCEEDED if data.passed else AssetCheckExecutionRecordStatus.FAILED
            target = data.target_materialization_data
            results.append(
                {
                    **common,
                    "execution_status": status.value,
                    "materialization_event_storage_id": target.storage_id if target else None,
                    "partition": data.partition,
                }
            )
        if planned:
            conn.execute(table.insert(), planned)
        partitioned = [row for row in results if row["partition"] is not None]
        if partitioned:
            update = (
                table.update()
                .where(
                    table.c.asset_key == sa.bindparam("b_asset_key"),
                    table.c.check_name == sa.bindparam("b_check_name"),
                    table.c.run_id == sa.bindparam("b_run_id"),
                    table.c.partition == sa.bindparam("b_partition"),
                )
                .values({name: sa.bindparam(name) for name in _CHECK_RESULT_COLUMNS})
            )
            params = [{**row, **{f"b_{name}": row[name] for name in _CHECK_RESULT_KEY}} for row in partitioned]
            if conn.execute(update, params).rowcount == len(params):
                results = [row for row in results if row["partition"] is None]
        for row in results:  # one by one where a planned row may be missing, as Dagster does
            self._store_check_result(conn, row)

    def _store_check_result(self, conn: sa.Connection, row: dict[str, Any]) -> None:
        table = AssetCheckExecutionsTable
        key = [table.c[name] == row[name] for name in ("asset_key", "check_name", "run_id")]
        partition = self._get_asset_check_partition_filter_clause(PartitionKeyFilter(key=row["partition"]))
        values = {name: row[name] for name in _CHECK_RESULT_COLUMNS}
        if not conn.execute(table.update().where(*key, partition).values(**values)).rowcount:
            conn.execute(table.insert().values(**row))

    def has_table(self, table_name: str) -> bool:
        """Whether the index database has `table_name`, asked once per process (see `_exists`)."""
        return self._exists(table_name, partial(super().has_table, table_name))

    def _has_asset_key_col_on_connection(self, conn: sa.Connection, column_name: str) -> bool:
        """Whether the asset keys table has `column_name`, asked once per process (see `_exists`):
        the original inspects the table's columns on every stored materialization."""
        probe = partial(super()._has_asset_key_col_on_connection, conn, column_name)
        return self._exists(f"asset_keys.{column_name}", probe)

    def _exists(self, name: str, probe: Callable[[], bool]) -> bool:
        """Whether the table or column `name` exists, by `probe` until it says so, then kept."""
        if name not in self._schema:
            if not probe():
                return False
            self._schema.add(name)
        return True

    def _claim_concurrency_slot(self, concurrency_key: str, run_id: str, step_key: str) -> ConcurrencySlotStatus:
        """Dagster's claim of a free slot of a pool, made a compare-and-set: the slot is updated
        only while still free, so a process that lost the race sees it taken, and waits."""
        with self.index_connection() as conn:
            free = conn.execute(
                sa.select(ConcurrencySlotsTable.c.id)
                .where(
                    ConcurrencySlotsTable.c.concurrency_key == concurrency_key,
                    ConcurrencySlotsTable.c.step_key.is_(None),
                    ConcurrencySlotsTable.c.deleted.is_(False),
                )
                .limit(1)
            ).scalar()
            if free is None:
                return ConcurrencySlotStatus.BLOCKED
            taken = conn.execute(
                ConcurrencySlotsTable.update()
                .values(run_id=run_id, step_key=step_key)
                .where(ConcurrencySlotsTable.c.id == free, ConcurrencySlotsTable.c.step_key.is_(None))
            ).rowcount
            return ConcurrencySlotStatus.CLAIMED if taken else ConcurrencySlotStatus.BLOCKED

    def delete_events(self, run_id: str) -> None:
        """Dagster's deletion of a run's events, then of its database file, which it leaves empty
        on disk (one file per run ever deleted)."""
        super().delete_events(run_id)
        with self._engines_lock:
            engine = self._engines.pop(run_id, None)
        if engine is not None:
            engine.dispose()
        self._initialized_dbs.discard(run_id)
        path = self.path_for_shard(run_id)
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)

    def vacuum(self) -> None:
        """Rewrite the index database, giving the pages of deleted events back to the file system."""
        self.flush()
        with self._db_lock:
            _vacuum(self._shard_engine(INDEX_SHARD_NAME))

    def dispose(self) -> None:
        self.flush()
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
        super().dispose()


class _PooledConnect:
    """`connect()` of the run and schedule storages (one database each) on one kept engine, and
    their database's schema checked once per process rather than for every instance."""

    _conn_string: str
    _pooled: sa.Engine | None = None
    _checked: set[str] = set()
    """Databases whose schema this process has checked (or created) already."""

    @classmethod
    def from_local(cls, base_dir: str, inst_data: ConfigurableClassData | None = None) -> Any:
        """Dagster's `from_local`, which checks the database's schema revision, the first time in
        a process; the storage alone afterwards."""
        if base_dir in cls._checked:
            return cls(create_db_conn_string(base_dir, cls._DATABASE), inst_data)
        storage = super().from_local(base_dir, inst_data)  # type: ignore[misc]
        cls._checked.add(base_dir)
        return storage

    @property
    def _kept_engine(self) -> sa.Engine:
        """The kept engine of this storage's database, made on first use."""
        if self._pooled is None:
            self._pooled = _engine(self._conn_string)
        return self._pooled

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        with self._kept_engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        if self._pooled is not None:
            self._pooled.dispose()
        super().dispose()  # type: ignore[misc]


def _vacuum(engine: sa.Engine) -> None:
    """`VACUUM` the database of `engine` (outside a transaction, as sqlite requires), then empty its
    write-ahead log, which the rewrite filled with the whole database."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM")
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


class PooledSqliteRunStorage(_PooledConnect, SqliteRunStorage):
    _DATABASE = "runs"
    _checked: set[str] = set()

    def delete_run(self, run_id: str) -> None:
        """Dagster's deletion of a run's row, and of its tags, which the schema's cascade would
        remove but sqlite, enforcing no foreign keys, keeps."""
        super().delete_run(run_id)
        with self.connect() as conn:
            conn.execute(RunTagsTable.delete().where(RunTagsTable.c.run_id == run_id))

    def vacuum(self) -> None:
        """Rewrite the runs database, giving the pages of deleted runs back to the file system."""
        _vacuum(self._kept_engine)


class PooledSqliteScheduleStorage(_PooledConnect, SqliteScheduleStorage):
    _DATABASE = "schedules"
    _checked: set[str] = set()


class PooledSqliteStorage(DagsterSqliteStorage):
    """Dagster's sqlite storage under `base_dir` (`$DAGSTER_HOME`), with pooled connections."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self.base_dir = base_dir
        self._run_storage = PooledSqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = PooledSqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData, config_value: dict[str, str]
    ) -> PooledSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
