"""`python -m market_assets`: close indices for a session, or run the whole demo.

    python -m market_assets close DJI NDX --session 2026-11-20 [--force] [--full-history]
    python -m market_assets plan DJI NDX --session 2026-11-20 [--json]
    python -m market_assets demo [--sessions 21]
    python -m market_assets ui [--port 3000]
    python -m market_assets read {daily,weekly,monthly} SYMBOL... [--index DJI] [--as-of D]
        [--known-at T] [--prices as_traded|adjusted_as_of:D] [--start D] [--end D]
        [--format table|csv|parquet] [-o FILE]
    python -m market_assets factors SYMBOL... [--format table|csv|parquet] [-o FILE]
    python -m market_assets sql "SELECT ..." [--format table|csv|parquet] [-o FILE]
    python -m market_assets verify DJI NDX [--session 2026-11-20] [--repair]
    python -m market_assets compact [--dry-run]
    python -m market_assets migrate [--dry-run]

Settings come from the environment (README.md#configuration): the instance at $DAGSTER_HOME, the
lake at MARKET_ASSETS_DATA_ROOT. read, factors, sql and the dry runs of compact and migrate load no Dagster.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from market_assets.cli.configuration import REFUSED
from market_assets.cli.read import FORMATS, read_bars, read_factors, run_sql
from market_assets.lake.reader import KINDS
from market_assets.settings import ConfigurationError


def main(argv: list[str] | None = None) -> int:
    """Run the command of `argv`; a `ConfigurationError` is one line on stderr and `REFUSED`."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "read" and not args.symbols and not args.index:
        parser.error("read: name at least one SYMBOL or an --index")
    try:
        return _run(args)
    except ConfigurationError as error:
        print(error, file=sys.stderr)
        return REFUSED


def _run(args: argparse.Namespace) -> int:
    """The command's exit status. The modules of the commands that load Dagster are imported only
    when one of them runs; the followed indices are read only when a command needs them."""
    if args.command == "read":
        query = (args.kind, args.symbols, args.index, args.as_of, args.start, args.end, args.known_at, args.prices)
        return read_bars(*query, args.format, args.output)
    if args.command == "factors":
        return read_factors(args.symbols, args.format, args.output)
    if args.command == "sql":
        return run_sql(args.query, args.format, args.output)
    if args.command == "compact":
        from market_assets.cli.compact import compact_lake

        return compact_lake(args.dry_run)
    if args.command == "migrate":
        from market_assets.cli.migrate import migrate_lake

        return migrate_lake(args.dry_run)
    if args.command == "demo":
        from market_assets.cli.demo import run_demo

        return run_demo(args.workdir.resolve(), args.sessions)
    if args.command == "ui":
        from market_assets.cli.ui import run_ui

        return run_ui(args.workdir.resolve(), args.port)
    indices = args.indices or _followed()
    if args.command == "plan":
        from market_assets.cli.plan import print_plan

        return print_plan(indices, args.session, args.json)
    if args.command == "verify":
        from market_assets.cli.verify import verify_indices

        return verify_indices(indices, args.session, args.repair)
    from market_assets.cli.close import close_indices

    return close_indices(indices, args.session, args.force, args.full_history)


def _followed() -> list[str]:
    """The followed indices, the default of the commands that take indices."""
    from market_assets.sources.indices import followed_indices

    return list(followed_indices())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m market_assets", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    close = commands.add_parser("close", help="close indices for one session")
    close.add_argument("indices", nargs="*", help="default: all followed")
    close.add_argument("--session", help="YYYY-MM-DD; default: each exchange's latest closed session")
    close.add_argument("--force", action="store_true", help="fetch again what is already stored")
    close.add_argument(
        "--full-history",
        action="store_true",
        help="download whole histories, even where the previous snapshot is stored (default: the new bars only)",
    )
    plan = commands.add_parser("plan", help="print the `dagster job execute` commands of a close")
    plan.add_argument("indices", nargs="*", help="default: all followed")
    plan.add_argument("--session", help="YYYY-MM-DD; default: each exchange's latest closed session")
    plan.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    demo = commands.add_parser("demo", help="close all indices against synthetic data on loopback")
    demo.add_argument("--workdir", type=Path, default=Path("demo"), help="default: ./demo")
    demo.add_argument(
        "--sessions", type=int, default=1, help="close each of the last N sessions in turn, each served as its own day"
    )
    ui = commands.add_parser("ui", help="the Dagster UI on the demo's instance, its synthetic data served")
    ui.add_argument("--workdir", type=Path, default=Path("demo"), help="default: ./demo")
    ui.add_argument("--port", type=int, default=3000, help="the webserver's port on 127.0.0.1 (default: 3000)")
    read = commands.add_parser("read", help="bars of symbols or of an index, as of a session")
    read.add_argument("kind", choices=list(KINDS))
    read.add_argument("symbols", nargs="*", metavar="SYMBOL")
    read.add_argument("--index", help="the members of this index on --as-of (default: its newest composition)")
    read.add_argument("--as-of", help="YYYY-MM-DD: each symbol's snapshot of that session, or its newest before")
    read.add_argument(
        "--known-at",
        help="an instant (YYYY-MM-DDTHH:MM, UTC unless it says +HH:MM): each symbol's newest snapshot fetched by then",
    )
    read.add_argument(
        "--prices",
        help="daily bars only: as_traded, or adjusted_as_of:YYYY-MM-DD (default: as stored, adjusted as of the snapshot)",
    )
    read.add_argument("--start", help="YYYY-MM-DD: no bar before")
    read.add_argument("--end", help="YYYY-MM-DD: no bar after")
    factors = commands.add_parser("factors", help="the adjustment factors of symbols, from the adjustments recorded")
    factors.add_argument("symbols", nargs="+", metavar="SYMBOL")
    sql = commands.add_parser("sql", help="SQL over the lake's views (DuckDB)")
    sql.add_argument("query")
    for reading in (read, factors, sql):
        reading.add_argument("--format", choices=FORMATS, default="table", help="default: table")
        reading.add_argument("-o", "--output", type=Path, help="write to FILE instead of the terminal")
    verify = commands.add_parser("verify", help="read a session's bars files back and compare them with what was written")
    verify.add_argument("indices", nargs="*", help="default: all followed")
    verify.add_argument("--session", help="YYYY-MM-DD; default: each exchange's latest closed session")
    verify.add_argument("--repair", action="store_true", help="load the damaged partitions again (a forced close of them)")
    compacting = commands.add_parser("compact", help="remove the snapshots that can be rebuilt from others")
    compacting.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    migrate = commands.add_parser("migrate", help="move a lake of the earlier layout into today's")
    migrate.add_argument("--dry-run", action="store_true", help="only say what would move")
    return parser
