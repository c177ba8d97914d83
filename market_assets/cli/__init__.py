"""`python -m market_assets`: close indices for a session, or run the whole demo.

    python -m market_assets close DJI NDX --session 2026-11-20 [--force]
    python -m market_assets demo

`close` uses the instance at $DAGSTER_HOME and the source and data root of the environment
(MARKET_ASSETS_SOURCE with STOOQ_BASE_URL and STOOQ_API_KEY, or MARKET_ASSETS_FILES;
MARKET_ASSETS_DATA_ROOT; see market_assets/settings.py). `demo` needs nothing: it generates the
synthetic data set, serves it on loopback with the project's Stooq-compatible server, and closes all
three indices for their latest sessions into ./demo.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from market_assets.cli.close import close_indices
from market_assets.sources.indices import INDICES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m market_assets", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    close = commands.add_parser("close", help="close indices for one session")
    close.add_argument("indices", nargs="*", default=list(INDICES), help="default: all")
    close.add_argument("--session", help="YYYY-MM-DD; default: each exchange's latest closed session")
    close.add_argument("--force", action="store_true", help="fetch again what is already stored")
    demo = commands.add_parser("demo", help="close all indices against synthetic data on loopback")
    demo.add_argument("--workdir", type=Path, default=Path("demo"), help="default: ./demo")
    args = parser.parse_args(argv)
    if args.command == "demo":
        # Imported here: the demo needs the Stooq-compatible server, which the code location's
        # image does not carry.
        from market_assets.cli.demo import run_demo

        return run_demo(args.workdir.resolve())
    return close_indices(args.indices, args.session, args.force)
