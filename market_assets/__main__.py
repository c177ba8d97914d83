"""`python -m market_assets`: close indices for a session, or run the whole demo.

    python -m market_assets close DJI NDX --session 2026-11-20 [--force]
    python -m market_assets demo

`close` uses the instance at $DAGSTER_HOME and the source and data root of the environment
(MARKET_ASSETS_SOURCE with STOOQ_BASE_URL and STOOQ_API_KEY, or MARKET_ASSETS_FILES;
MARKET_ASSETS_DATA_ROOT). `demo` needs nothing: it generates the
synthetic data set, serves it on loopback with the project's Stooq-compatible server, and closes all
three indices for their latest sessions into ./demo.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import dagster as dg

from market_assets.runner import CloseFailed, close_index
from market_assets.stooq.indices import INDICES

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
        return _demo(args.workdir.resolve())
    return _close(args.indices, args.session, args.force)


def _close(indices: list[str], session: str | None, force: bool) -> int:
    instance = dg.DagsterInstance.get()
    status = 0
    for index in indices:
        started = time.perf_counter()
        try:
            outcome = close_index(instance, index, session, force=force)
        except (CloseFailed, ValueError) as error:
            print(f"{index}: FAILED\n{error}", file=sys.stderr)
            status = 1
            continue
        symbols = sum(len(run.symbols) for run in outcome.runs)
        print(
            f"{outcome.index} {outcome.session}: {len(outcome.members)} constituents, "
            f"{symbols} loaded in {len(outcome.runs)} run(s), "
            f"{len(outcome.members) - symbols} already stored ({time.perf_counter() - started:.1f} s)"
        )
    return status


def _demo(workdir: Path) -> int:
    from market_assets.stooq_server import StooqServer, generate_synthetic

    source, lake, home = workdir / "stooq-synthetic", workdir / "lake", workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    if not (source / "d").exists():
        print(f"Generating the synthetic Stooq data set into {source} ...")
        generate_synthetic(source)
    with StooqServer(source) as server:
        os.environ.update(
            {
                "DAGSTER_HOME": str(home),
                "MARKET_ASSETS_DATA_ROOT": str(lake),
                "STOOQ_BASE_URL": server.url,
            }
        )
        print(f"Synthetic Stooq-compatible server at {server.url}; Dagster instance in {home}")
        status = _close(list(INDICES), None, False)
    print(f"\nParquet written under {lake}:")
    for folder in sorted(path for path in lake.glob("*/*") if path.is_dir()):
        files = sorted(folder.glob("*.parquet"))
        print(f"  {folder.relative_to(lake)}/  {len(files)} files, e.g. {files[0].name if files else '-'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
