"""A Dagster instance in PostgreSQL: deploy/dagster.postgres.yaml against a real server.

The server is Debian's PostgreSQL, started here on loopback in a temporary folder; a close of DJI
runs against the project's Stooq-compatible server, and its runs, events and partitions are then
read back both through Dagster and straight from the database.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from market_assets.cli.close import close_index
from market_assets.defs.bars.keys import bars_asset_key
from market_assets.domain.exchange_sessions import calendar
from market_assets_tests.platform import PROJECT_ROOT

POSTGRES_INSTANCE = PROJECT_ROOT / "deploy" / "dagster.postgres.yaml"


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    password: str
    database: str

    def connect(self):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password, dbname=self.database)


def _postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server binaries (`postgresql` package), newest first."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[Postgres]:
    """A PostgreSQL server of its own on 127.0.0.1, password-protected, stopped afterwards."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        message = "PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # initdb refuses to run as root: the cluster belongs to the `postgres` user Debian creates.
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="market_assets_pg_"))
    data, password_file = base / "data", base / "password"
    password_file.write_text("s3cret-for-tests\n")
    if as_owner:
        shutil.chown(base, "postgres")
        shutil.chown(password_file, "postgres")
    server = Postgres("127.0.0.1", _free_port(), "dagster", "s3cret-for-tests", "postgres")

    def run(*command: str) -> None:
        subprocess.run([*as_owner, *command], check=True, capture_output=True, timeout=120)

    run(
        str(bin_dir / "initdb"),
        "-D",
        str(data),
        "-U",
        server.user,
        f"--pwfile={password_file}",
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--no-sync",
    )
    options = f"-p {server.port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start")
    try:
        yield server
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres(postgres_server: Postgres) -> Postgres:
    """A database of the test's own on the module's server."""
    import psycopg2

    server = replace(postgres_server, database=f"market_assets_{uuid.uuid4().hex[:12]}")
    admin = psycopg2.connect(host=server.host, port=server.port, user=server.user, password=server.password, dbname="postgres")
    admin.autocommit = True  # CREATE DATABASE cannot run in a transaction
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {server.database}")
    admin.close()
    return server


@pytest.fixture
def postgres_instance(postgres, tmp_path, monkeypatch, stooq_server):
    """An instance made from deploy/dagster.postgres.yaml, its connection given by the environment."""
    home, lake = tmp_path / "dagster_home", tmp_path / "lake"
    home.mkdir()
    shutil.copy(POSTGRES_INSTANCE, home / "dagster.yaml")
    for name, value in {
        "DAGSTER_HOME": home,
        "DAGSTER_PG_HOST": postgres.host,
        "DAGSTER_PG_PORT": postgres.port,
        "DAGSTER_PG_USERNAME": postgres.user,
        "DAGSTER_PG_PASSWORD": postgres.password,
        "DAGSTER_PG_DB": postgres.database,
        "MARKET_ASSETS_DATA_ROOT": lake,
        "STOOQ_BASE_URL": stooq_server.url,
    }.items():
        monkeypatch.setenv(name, str(value))
    with dg.DagsterInstance.get() as instance:
        yield instance, home


def test_a_close_runs_to_success_with_runs_events_and_partitions_in_postgres(postgres, postgres_instance, synthetic_universe):
    instance, home = postgres_instance
    storages = (instance.run_storage, instance.event_log_storage, instance.schedule_storage)
    assert [type(storage).__name__ for storage in storages] == [
        "PostgresRunStorage",
        "PostgresEventLogStorage",
        "PostgresScheduleStorage",
    ]
    session = f"{synthetic_universe.last_session['XNYS']:%Y-%m-%d}"
    members = synthetic_universe.members("DJI", pd.Timestamp(session))

    outcome = close_index(instance, "DJI", session)

    expected = {f"{session}|{symbol}" for symbol in members}
    runs = instance.get_runs()
    assert len(runs) == len(outcome.run_ids) == 1 + len(outcome.runs)
    assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
    for asset in ("daily_bars", "weekly_bars", "monthly_bars"):
        assert instance.get_materialized_partitions(bars_asset_key("XNYS", asset)) == expected
    # Nothing was written beside the instance: no sqlite storage fell back under DAGSTER_HOME.
    assert not list(home.rglob("*.db"))

    with postgres.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT run_id, status FROM runs")
        assert dict(cursor.fetchall()) == {run_id: "SUCCESS" for run_id in outcome.run_ids}
        cursor.execute(
            "SELECT partition FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = %s",
            (bars_asset_key("XNYS", "daily_bars").to_string(),),
        )
        assert sorted(row[0] for row in cursor.fetchall()) == sorted(expected)
        cursor.execute(
            "SELECT count(*) FROM event_logs WHERE run_id = ANY(%s) AND dagster_event_type = %s",
            (outcome.run_ids, dg.DagsterEventType.RUN_SUCCESS.value),
        )
        assert cursor.fetchone()[0] == len(outcome.run_ids)
        cursor.execute("SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'xnys_symbols'")
        assert sorted(row[0] for row in cursor.fetchall()) == sorted(members)
        cursor.execute("SELECT to_regclass('instigators'), to_regclass('job_ticks')")
        assert cursor.fetchone() == ("instigators", "job_ticks")


def test_prune_instance_removes_old_runs_and_everything_stored_for_them_from_postgres(
    postgres, postgres_instance, synthetic_universe
):
    instance, _ = postgres_instance
    latest = f"{synthetic_universe.last_session['XNYS']:%Y-%m-%d}"
    old = f"{calendar('XNYS').sessions_window(latest, -45)[0]:%Y-%m-%d}"
    old_runs = close_index(instance, "DJI", old).run_ids
    kept = close_index(instance, "DJI", latest).run_ids

    pruned = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "job", "execute", "-m", "market_assets", "-j", "prune_instance"],
        env={**os.environ, "MARKET_ASSETS_PARTITION_DAYS": "14"},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert pruned.returncode == 0, pruned.stderr[-3000:]
    left = {run.run_id for run in instance.get_runs() if run.job_name != "prune_instance"}
    assert left == set(kept)
    with postgres.connect() as connection, connection.cursor() as cursor:
        for table in ("runs", "run_tags", "event_logs", "asset_check_executions"):
            cursor.execute(f"SELECT count(*) FROM {table} WHERE run_id = ANY(%s)", (old_runs,))
            assert cursor.fetchone()[0] == 0, table
            cursor.execute(f"SELECT count(*) FROM {table} WHERE run_id = ANY(%s)", (kept,))
            assert cursor.fetchone()[0] > 0, table
    for asset in ("daily_bars", "weekly_bars", "monthly_bars"):
        stored = instance.get_materialized_partitions(bars_asset_key("XNYS", asset))
        assert {key.split("|")[0] for key in stored} == {latest}


def test_the_postgres_instance_refuses_to_start_without_its_connection_settings(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(POSTGRES_INSTANCE, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(Exception, match="DAGSTER_PG_"):
        dg.DagsterInstance.get()
