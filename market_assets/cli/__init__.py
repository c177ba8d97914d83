"""`python -m market_assets`: close indices for a session, or run the whole demo.

    python -m market_assets close DJI NDX --session 2026-11-20 [--force] [--full-history]
    python -m market_assets plan DJI NDX --session 2026-11-20 [--json]
    python -m market_assets demo
    python -m market_assets ui [--port 3000]
    python -m market_assets read {daily,weekly,monthly} SYMBOL... [--index DJI] [--as-of D]
        [--start D] [--end D] [--format table|csv|parquet] [-o FILE]
    python -m market_assets sql "SELECT ..." [--format table|csv|parquet] [-o FILE]
    python -m market_assets verify DJI NDX [--session 2026-11-20] [--repair]
    python -m market_assets compact [--dry-run]
    python -m market_assets migrate [--dry-run]

`close` uses the instance at $DAGSTER_HOME and the source and data root of the environment
(MARKET_ASSETS_SOURCE with STOOQ_BASE_URL and STOOQ_API_KEY, or MARKET_ASSETS_FILES;
MARKET_ASSETS_DATA_ROOT; see market_assets/settings.py); `plan` prints the `dagster job execute`
commands of that close, from the same instance and lake. `demo` needs nothing: it generates the
synthetic data set, serves it on loopback with the project's Stooq-compatible server, and closes all
three indices for their latest sessions into ./demo; `ui` serves that data set again and starts
`dagster dev` on the demo's instance. `migrate` moves a lake written in the earlier layout (bare
date folders, no `symbol` column) into today's, at the data root. `read` and `sql` read the lake at
the data root (`market_assets/lake/reader.py`, `sql.py`); `verify` reads back a session's bars
files and compares them with what was written, and with `--repair` loads damaged ones again
(`market_assets/defs/bars/integrity.py`); `compact` removes the snapshots that can
be rebuilt from others (`market_assets/lake/compaction.py`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from market_assets.cli.close import close_indices
from market_assets.cli.compact import compact_lake
from market_assets.cli.migrate import migrate_lake
from market_assets.cli.plan import print_plan
from market_assets.cli.read import FORMATS, read_bars, run_sql
from market_assets.cli.verify import verify_indices
from market_assets.lake.reader import KINDS
from market_assets.sources.indices import followed_indices


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m market_assets", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    close = commands.add_parser("close", help="close indices for one session")
    close.add_argument("indices", nargs="*", default=list(followed_indices()), help="default: all")
    close.add_argument("--session", help="YYYY-MM-DD; default: each exchange's latest closed session")
    close.add_argument("--force", action="store_true", help="fetch again what is already stored")
    close.add_argument(
        "--full-history",
        action="store_true",
        help="download whole histories, even where the previous snapshot is stored (default: the new bars only)",
    )
    plan = commands.add_parser("plan", help="print the `dagster job execute` commands of a close")
    plan.add_argument("indices", nargs="*", default=list(followed_indices()), help="default: all")
    plan.add_argument("--session", help="YYYY-MM-DD; default: each exchange's latest closed session")
    plan.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    demo = commands.add_parser("demo", help="close all indices against synthetic data on loopback")
    demo.add_argument("--workdir", type=Path, default=Path("demo"), help="default: ./demo")
    ui = commands.add_parser("ui", help="the Dagster UI on the demo's instance, its synthetic data served")
    ui.add_argument("--workdir", type=Path, default=Path("demo"), help="default: ./demo")
    ui.add_argument("--port", type=int, default=3000, help="the webserver's port on 127.0.0.1 (default: 3000)")
    read = commands.add_parser("read", help="bars of symbols or of an index, as of a session")
    read.add_argument("kind", choices=list(KINDS))
    read.add_argument("symbols", nargs="*", metavar="SYMBOL")
    read.add_argument("--index", help="the members of this index on --as-of (default: its newest composition)")
    read.add_argument("--as-of", help="YYYY-MM-DD: each symbol's snapshot of that session, or its newest before")
    read.add_argument("--start", help="YYYY-MM-DD: no bar before")
    read.add_argument("--end", help="YYYY-MM-DD: no bar after")
    sql = commands.add_parser("sql", help="SQL over the lake's views (DuckDB)")
    sql.add_argument("query")
    for reading in (read, sql):
        reading.add_argument("--format", choices=FORMATS, default="table", help="default: table")
        reading.add_argument("-o", "--output", type=Path, help="write to FILE instead of the terminal")
    verify = commands.add_parser("verify", help="read a session's bars files back and compare them with what was written")
    verify.add_argument("indices", nargs="*", default=list(followed_indices()), help="default: all")
    verify.add_argument("--session", help="YYYY-MM-DD; default: each exchange's latest closed session")
    verify.add_argument("--repair", action="store_true", help="load the damaged partitions again (a forced close of them)")
    compacting = commands.add_parser("compact", help="remove the snapshots that can be rebuilt from others")
    compacting.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    migrate = commands.add_parser("migrate", help="move a lake of the earlier layout into today's")
    migrate.add_argument("--dry-run", action="store_true", help="only say what would move")
    args = parser.parse_args(argv)
    if args.command == "read":
        if not args.symbols and not args.index:
            parser.error("read: name at least one SYMBOL or an --index")
        query = (args.kind, args.symbols, args.index, args.as_of, args.start, args.end)
        return read_bars(*query, args.format, args.output)
    if args.command == "sql":
        return run_sql(args.query, args.format, args.output)
    if args.command == "plan":
        return print_plan(args.indices, args.session, args.json)
    if args.command == "verify":
        return verify_indices(args.indices, args.session, args.repair)
    if args.command == "compact":
        return compact_lake(args.dry_run)
    if args.command == "migrate":
        return migrate_lake(args.dry_run)
    if args.command == "demo":
        # Imported here: the demo needs the Stooq-compatible server, which the code location's
        # image does not carry.
        from market_assets.cli.demo import run_demo

        return run_demo(args.workdir.resolve())
    if args.command == "ui":
        from market_assets.cli.ui import run_ui  # (as for the demo: the server)

        return run_ui(args.workdir.resolve(), args.port)
    return close_indices(args.indices, args.session, args.force, args.full_history)
