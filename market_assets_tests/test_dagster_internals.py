"""The Dagster internals of `market_assets.dagster_internals`, held to what the pinned Dagster does.

Each test fails, naming what changed, when an upgrade of Dagster changes something the project
relies on: a method that `market_assets.instance.pooled_sqlite` replaces (its source is pinned
here by digest, so that any change in it is read before the override is kept), an attribute it
sets or reads, the slot table it updates, or the check-result pointer the bars' checks build.
"""

import hashlib
import inspect

import dagster as dg
import pytest
import sqlalchemy as sa

from market_assets import dagster_internals as internals
from market_assets.defs.bars.keys import bars_asset_key
from market_assets.instance.pooled_sqlite import PooledSqliteStorage

REPLACED = {
    "SqliteEventLogStorage._connect": (internals.SqliteEventLogStorage._connect, "b8435f2665689760"),
    "SqliteEventLogStorage.has_table": (internals.SqliteEventLogStorage.has_table, "577d801c70b2a4a5"),
    "SqliteEventLogStorage._has_asset_key_col_on_connection": (
        internals.SqliteEventLogStorage._has_asset_key_col_on_connection,
        "981049dfa81d2e47",
    ),
    "SqliteEventLogStorage.store_event": (internals.SqliteEventLogStorage.store_event, "f89aed40602438b9"),
    # Written in batches: the rows of a planned check and of a check's result, as these write them.
    "SqlEventLogStorage._store_asset_check_evaluation_planned": (
        internals.SqliteEventLogStorage._store_asset_check_evaluation_planned,
        "bbecef7ab5ce9d01",
    ),
    "SqlEventLogStorage._update_asset_check_evaluation": (
        internals.SqliteEventLogStorage._update_asset_check_evaluation,
        "961fd6041447b07a",
    ),
    "SqlEventLogStorage._claim_concurrency_slot": (
        internals.SqliteEventLogStorage._claim_concurrency_slot,
        "7628812bbe08bc3e",
    ),
    "SqliteRunStorage.connect": (internals.SqliteRunStorage.connect, "d343abae6e9bea85"),
    "SqliteRunStorage.from_local": (internals.SqliteRunStorage.from_local, "50b4181e14913751"),
    "SqliteScheduleStorage.from_local": (internals.SqliteScheduleStorage.from_local, "06ae7e70b419ac91"),
    "SqliteScheduleStorage.connect": (internals.SqliteScheduleStorage.connect, "d343abae6e9bea85"),
    "DagsterSqliteStorage.__init__": (internals.DagsterSqliteStorage.__init__, "bcf5aa27a5dd083f"),
    # Extended, for retention: what a run's deletion leaves on sqlite (its tags, its database file).
    "SqlEventLogStorage.delete_events": (internals.SqliteEventLogStorage.delete_events, "a14c58828a905817"),
    "SqlRunStorage.delete_run": (internals.SqliteRunStorage.delete_run, "046afe455bdaf90f"),
}
"""Dagster's methods that the pooled storage replaces, and the digest of their source in dagster 1.13.27."""


@pytest.mark.parametrize("name", sorted(REPLACED))
def test_the_methods_the_pooled_storage_replaces_are_those_it_was_written_against(name):
    method, digest = REPLACED[name]

    found = hashlib.sha256(inspect.getsource(method).encode()).hexdigest()[:16]

    assert found == digest, (
        f"dagster {dg.__version__} changed {name}, which market_assets.instance.pooled_sqlite replaces: "
        "read the new source, bring the override in line, then pin the new digest here"
    )


def test_the_pooled_storage_holds_what_dagsters_sqlite_storage_holds(tmp_path):
    """Every attribute Dagster's storage sets up, the pooled one sets up too (it replaces its
    `__init__`), on the same files, and the private state its event log relies on is there."""
    dagster_own = internals.DagsterSqliteStorage.from_local(str(tmp_path / "dagster"))
    pooled = PooledSqliteStorage.from_local(str(tmp_path / "pooled"))

    assert set(vars(pooled)) == set(vars(dagster_own))
    for attribute in ("_run_storage", "_event_log_storage", "_schedule_storage"):
        assert isinstance(getattr(pooled, attribute), type(getattr(dagster_own, attribute)))
    events = pooled.event_log_storage
    assert isinstance(events._db_lock, type(dagster_own.event_log_storage._db_lock))
    assert isinstance(events._initialized_dbs, set)
    assert events.conn_string_for_shard("index").endswith("/history/runs/index.db")
    assert pooled.run_storage._conn_string == dagster_own.run_storage._conn_string.replace("/dagster/", "/pooled/")
    pooled.dispose()
    dagster_own.dispose()


def test_the_concurrency_slot_table_has_the_columns_the_claim_updates():
    columns = set(internals.ConcurrencySlotsTable.c.keys())

    assert {"id", "concurrency_key", "run_id", "step_key", "deleted"} <= columns
    assert {status.name for status in internals.ConcurrencySlotStatus} >= {"CLAIMED", "BLOCKED"}


def test_the_pooled_claim_of_a_slot_is_taken_once(tmp_path, monkeypatch):
    """Two claims of the one slot of a pool: the second is blocked until the first is freed."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "storage:\n  custom:\n    module: market_assets.instance.pooled_sqlite\n    class: PooledSqliteStorage\n"
        "    config:\n      base_dir:\n        env: DAGSTER_HOME\n"
    )
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("pool", 1)

        first = storage.claim_concurrency_slot("pool", "run-a", "step[worker 0]")
        second = storage.claim_concurrency_slot("pool", "run-b", "step[worker 0]")
        storage.free_concurrency_slot_for_step("run-a", "step[worker 0]")
        third = storage.claim_concurrency_slot("pool", "run-b", "step[worker 0]")

        assert (first.is_claimed, second.is_claimed, third.is_claimed) == (True, False, True)
        with storage.index_connection() as conn:
            holders = conn.execute(sa.select(internals.ConcurrencySlotsTable.c.run_id)).scalars().all()
        assert holders == ["run-b"]


def test_a_check_result_carries_the_pointer_to_the_materialization_it_checked():
    target = internals.AssetCheckEvaluationTargetMaterializationData(storage_id=7, run_id="run-a", timestamp=1.5)

    evaluation = dg.AssetCheckEvaluation(
        asset_key=bars_asset_key("XNYS", "daily_bars"),
        check_name="valid_bars",
        passed=True,
        partition="2026-11-20|AAPL.US",
        target_materialization_data=target,
    )

    assert evaluation.target_materialization_data == target
    assert (target.storage_id, target.run_id, target.timestamp) == (7, "run-a", 1.5)
