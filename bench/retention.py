"""The instance keeps its size: 60 consecutive sessions closed, `prune_instance` after each, with a
window of 20 sessions.

    .venv/bin/python bench/retention.py                      # sqlite, then PostgreSQL (about 40 minutes)
    .venv/bin/python bench/retention.py --storage sqlite     # one of them

Each session, DJI and NDX (about 130 symbols) are closed for an XNYS session and HSI (82) for the
XHKG session on or before it, in this process as `python -m market_assets close` does (no latency;
whole histories for the first session, incremental downloads after), against the project's
Stooq-compatible server on loopback. Then `dagster job execute -j prune_instance` runs as the daily
schedule would, in a process whose partition window (`MARKET_ASSETS_PARTITION_DAYS`) starts on the
Monday of the week of the session 19 sessions back: the window the days would have moved to.

The 60 sessions are the latest whose 21st and 41st sessions are Mondays, so that after sessions 40
and 60 the window holds 20 sessions, as the instance does after session 20 (the window starts on a
Monday: on other days it holds up to four sessions more).

After sessions 20, 40 and 60 it prints the instance's size (the bytes of its sqlite files, or of its
PostgreSQL database) and its rows by table. Target: sessions 40 and 60 within 10 % of session 20,
in bytes on sqlite and in event rows on both (PostgreSQL reuses the space of deleted rows but keeps
its files at the largest size they reached).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from close_runs import BIN, PROJECT_ROOT, Platform, Postgres, target  # noqa: E402

from market_assets.domain.exchange_sessions import calendar  # noqa: E402
from stooq_server import StooqServer, generate_synthetic  # noqa: E402

SESSIONS, WINDOW, MEASURED = 60, 20, (20, 40, 60)
TABLES = ("event_logs", "asset_event_tags", "asset_check_executions", "runs", "run_tags", "snapshots")


def chosen_sessions(last: pd.Timestamp) -> list[pd.Timestamp]:
    """The latest `SESSIONS` XNYS sessions up to `last` whose 21st and 41st are Mondays."""
    every = list(calendar("XNYS").sessions_window(last, -(SESSIONS + 120)))
    for end in range(len(every), SESSIONS - 1, -1):
        sessions = every[end - SESSIONS : end]
        if all(sessions[i].weekday() == 0 for i in range(WINDOW, SESSIONS, WINDOW)):
            return sessions
    raise SystemExit("no 60 XNYS sessions in the synthetic data start windows on Mondays")


def sqlite_size(home: Path) -> tuple[int, dict[str, int]]:
    """Bytes of the instance's sqlite files, and rows of the tables that grow with closes."""
    files = [path for path in (home / "history").rglob("*") if path.is_file()] + list((home / "schedules").glob("*"))
    rows = {}
    for database, tables in ((home / "history" / "runs" / "index.db", TABLES[:3]), (home / "history" / "runs.db", TABLES[3:])):
        with sqlite3.connect(database) as connection:
            rows.update({table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables})
    return sum(path.stat().st_size for path in files), rows


def postgres_size(postgres: Postgres, database: str) -> tuple[int, dict[str, int]]:
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=postgres.port, user="dagster", password="bench", dbname=database)
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        size = cursor.fetchone()[0]
        rows = {}
        for table in TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")
            rows[table] = cursor.fetchone()[0]
    connection.close()
    return size, rows


def prune(platform: Platform, first_kept: pd.Timestamp) -> float:
    """`dagster job execute -j prune_instance` with the window starting on `first_kept`'s Monday; its seconds."""
    days = (pd.Timestamp.now().normalize() - first_kept).days
    started = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "dagster"), "job", "execute", "-m", "market_assets", "-j", "prune_instance"],
        env={**platform.env, "MARKET_ASSETS_PARTITION_DAYS": str(days)},
        cwd=platform.home,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"prune_instance failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.perf_counter() - started


def history(platform: Platform) -> str:
    """The output of the README's run-history query on the lake of `platform`."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    query = re.search(r'-m market_assets sql "(SELECT session, .*? FROM run_history .*?)"\n', readme, re.S).group(1)
    done = subprocess.run(
        [sys.executable, "-m", "market_assets", "sql", query.replace('\\"', '"')],
        env=platform.env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    return "\n".join(lines[:6] + ["..."] + lines[-3:]) if len(lines) > 10 else done.stdout


def run(storage: str, work: Path) -> None:
    universe = generate_synthetic(work / "stooq")
    sessions = chosen_sessions(universe.last_session["XNYS"])
    hong_kong = calendar("XHKG")
    wide = (pd.Timestamp.now().normalize() - sessions[0]).days + 7
    os.environ["MARKET_ASSETS_PARTITION_DAYS"] = str(wide)  # before the definitions are first loaded here
    postgres = Postgres.start() if storage == "postgres" else None
    print(f"\n{storage}: sessions {sessions[0]:%Y-%m-%d} to {sessions[-1]:%Y-%m-%d}", flush=True)
    try:
        with StooqServer(universe.data_dir) as server:
            platform = Platform(work / storage, server, postgres, MARKET_ASSETS_PARTITION_DAYS=str(wide))
            sizes: dict[int, int] = {}
            events: dict[int, int] = {}
            closed_hk = None
            for number, session in enumerate(sessions, start=1):
                started = time.perf_counter()
                platform.close_in_process("DJI", session)
                platform.close_in_process("NDX", session)
                hk = hong_kong.date_to_session(session, direction="previous")
                if hk != closed_hk:
                    platform.close_in_process("HSI", hk)
                    closed_hk = hk
                closing = time.perf_counter() - started
                pruning = prune(platform, sessions[max(0, number - WINDOW)])
                if number in MEASURED:
                    size, rows = (
                        sqlite_size(platform.home) if postgres is None else postgres_size(postgres, platform.env["DAGSTER_PG_DB"])
                    )
                    sizes[number], events[number] = size, rows["event_logs"]
                    print(
                        f"after session {number} ({session:%Y-%m-%d}): {size:,} bytes; rows "
                        + ", ".join(f"{table} {count:,}" for table, count in rows.items())
                        + f"; closes {closing:.1f} s, prune {pruning:.1f} s",
                        flush=True,
                    )
            print("the README's run-history query, the first and last rows:\n" + history(platform), flush=True)
            for number in MEASURED[1:]:
                if postgres is None:  # PostgreSQL's files keep their largest size, their space reused
                    target(
                        f"{storage}: instance size after session {number} / after session {MEASURED[0]}",
                        sizes[number] / sizes[MEASURED[0]],
                        1.1,
                    )
                target(
                    f"{storage}: event rows after session {number} / after session {MEASURED[0]}",
                    events[number] / events[MEASURED[0]],
                    1.1,
                )
    finally:
        if postgres is not None:
            postgres.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--storage", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    try:
        for storage in ("sqlite", "postgres") if args.storage == "both" else (args.storage,):
            run(storage, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
