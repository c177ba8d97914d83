"""The local Dagster instance's sqlite storage, with its database connections kept open.

Dagster's sqlite storages create a SQLAlchemy engine for every connection they open, so every
event a run stores pays for a new engine, a new sqlite connection and the compilation of its SQL
statements (SQLAlchemy caches compiled statements on the engine, which is thrown away each time).
A close run stores about ten events per (session, symbol): measured on a run of 82 symbols, this
was half of the run's CPU time (docs/performance.md).

`PooledSqliteStorage` is the same storage on the same files and schema (an instance can switch to
it and back) with one engine and a small connection pool per database, and `synchronous=NORMAL`:
the databases are in WAL mode already, in which a commit is then safe against a crash of any
process, and only its last transactions can be lost when the machine itself loses power. Its
claim of a concurrency slot is a compare-and-set (`_claim_concurrency_slot`), so that the `stooq`
pool's limit holds however many processes claim at once. It is selected in `dagster.yaml`:

    storage:
      custom:
        module: market_assets.instance.pooled_sqlite
        class: PooledSqliteStorage
        config:
          base_dir: {env: DAGSTER_HOME}

A deployment uses PostgreSQL instead (deploy/), whose storage pools its connections already.

It extends Dagster's own sqlite storage classes, which are internal (`market_assets.dagster_internals`
says why that is worth it and which test guards them).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import sqlalchemy as sa

from market_assets.dagster_internals import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    ConcurrencySlotsTable,
    ConcurrencySlotStatus,
    ConfigurableClassData,
    DagsterSqliteStorage,
    SqliteEventLogStorage,
    SqliteRunStorage,
    SqliteScheduleStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)

_OPEN_SHARDS = 16
"""Event log databases (one per run, plus the index) kept open per process. A run writes to its
own and the index; the webserver and the daemon read many runs', so older ones are closed."""


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
        # The same transaction per connection, under the same process-wide lock, as the original.
        with self._db_lock:
            engine = self._shard_engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        """Whether the index database has `table_name`, asked once per process (see `_exists`).

        The original opens a new engine and connection to ask, and is asked on every stored
        materialization and check result (about 1 ms each, measured here).
        """
        return self._exists(table_name, partial(super().has_table, table_name))

    def _has_asset_key_col_on_connection(self, conn: sa.Connection, column_name: str) -> bool:
        """Whether the asset keys table has `column_name`, asked once per process (see `_exists`):
        the original inspects the table's columns on every stored materialization."""
        probe = partial(super()._has_asset_key_col_on_connection, conn, column_name)
        return self._exists(f"asset_keys.{column_name}", probe)

    def _exists(self, name: str, probe: Callable[[], bool]) -> bool:
        """Whether the table or column `name` exists, by `probe` until it says so. A table or
        column, once there, stays: only a migration adds one, and none removes one while an
        instance runs."""
        if name not in self._schema:
            if not probe():
                return False
            self._schema.add(name)
        return True

    def _claim_concurrency_slot(self, concurrency_key: str, run_id: str, step_key: str) -> ConcurrencySlotStatus:
        """Dagster's claim of a free slot of a pool, made a compare-and-set.

        The original selects a free slot, then updates it by id. On sqlite the two are not one
        transaction (pysqlite begins one at the update only), so two processes can both find the
        same slot free and the second overwrite the first's claim: then one more request could
        be in flight than the pool allows. Updating the slot only while it is still free makes
        the loser see it taken, and wait.
        """
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

    def dispose(self) -> None:
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
        super().dispose()


class _PooledConnect:
    """`connect()` of the run and schedule storages (one database each) on one kept engine."""

    _conn_string: str
    _pooled: sa.Engine | None = None

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        if self._pooled is None:
            self._pooled = _engine(self._conn_string)
        with self._pooled.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        if self._pooled is not None:
            self._pooled.dispose()
        super().dispose()  # type: ignore[misc]


class PooledSqliteRunStorage(_PooledConnect, SqliteRunStorage):
    pass


class PooledSqliteScheduleStorage(_PooledConnect, SqliteScheduleStorage):
    pass


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
