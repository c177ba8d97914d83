"""Command line: serve a data directory on Stooq's URLs, or generate synthetic data into one.

python -m stooq_server serve --data-dir data/stooq --synthetic
python -m stooq_server generate --data-dir data/stooq --sizes NDX=500
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from dataclasses import replace
from datetime import date
from pathlib import Path

from .faults import Fault, FaultKind
from .server import DAILY_DIR, StooqServer
from .synthetic import DEFAULT_SIZES, generate_synthetic


def parse_fault(spec: str) -> Fault:
    """`KIND[:RATE][@SYM1,SYM2]`, e.g. `http_503:0.3@SYNU001.US,SYNU002.US`, on downloads."""
    head, _, symbols = spec.partition("@")
    kind, _, rate = head.partition(":")
    try:
        return Fault(
            FaultKind(kind),
            symbols=symbols.split(",") if symbols else None,
            rate=float(rate) if rate else 1.0,
        )
    except ValueError as error:
        kinds = ", ".join(kind.value for kind in FaultKind)
        raise argparse.ArgumentTypeError(f"bad fault {spec!r} ({error}); kinds: {kinds}") from None


def parse_sizes(text: str) -> dict[str, int]:
    """`DJI=30,NDX=100,HSI=82` (any subset)."""
    try:
        pairs = (item.split("=") for item in text.split(","))
        return {name.strip().upper(): int(size) for name, size in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=COUNT[,NAME=COUNT...], got {text!r}") from None


def parse_day(text: str) -> date:
    """A `YYYY-MM-DD` date."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _has_data(data_dir: Path) -> bool:
    return any((data_dir / DAILY_DIR).glob("*.csv"))


def _write_ready_file(path: Path, url: str) -> None:
    # Written under a temporary name and renamed, so a waiting script never reads half a URL.
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(url + "\n")
    os.replace(temporary, path)


def serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; stdout gets exactly one line, the address (for scripts)."""
    data_dir: Path = args.data_dir
    if args.synthetic and not _has_data(data_dir):
        print(f"Generating synthetic Stooq data into {data_dir} (seed {args.seed})...", file=sys.stderr)
        generate_synthetic(data_dir, seed=args.seed)
    if not _has_data(data_dir):
        print(f"No daily files in {data_dir / DAILY_DIR}; --synthetic generates some.", file=sys.stderr)
        return 2
    server = StooqServer(
        data_dir,
        host=args.host,
        port=args.port,
        latency=args.latency_ms / 1000,
        api_key=args.api_key,
        as_of=args.as_of,
    )
    for fault in args.fault:
        server.inject(replace(fault, delay=args.slow_delay) if fault.kind is FaultKind.SLOW else fault)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with server:
        kind = "synthetic Stooq-compatible" if server.synthetic else "Stooq-compatible"
        print(f"Serving {kind} data from {data_dir} at {server.url}", flush=True)
        if args.ready_file is not None:
            _write_ready_file(args.ready_file, server.url)
        stop.wait()
    print("Stopped.", file=sys.stderr)
    return 0


def generate(args: argparse.Namespace) -> int:
    universe = generate_synthetic(
        args.data_dir,
        seed=args.seed,
        first_session=args.first_session,
        last_session=args.last_session,
        sizes=args.sizes,
        dividends=args.dividends,
    )
    counts = ", ".join(f"{len(symbols)} {code}" for code, symbols in universe.symbols.items())
    last = ", ".join(f"{code} {day.date()}" for code, day in universe.last_session.items())
    print(f"Generated synthetic Stooq data in {args.data_dir}: {counts} symbols; last sessions {last}.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stooq_server",
        description="A Stooq-compatible HTTP server for offline tests and demos, and its synthetic data.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser(
        "serve",
        help="serve a data directory on stooq.com's URLs",
        description="Serve composition pages (/t/?i=ID) and CSV downloads (/q/d/l/?s=SYMBOL&i=d) "
        "from a data directory until SIGINT or SIGTERM. Prints one line with the address.",
    )
    add = serve_parser.add_argument
    add("--data-dir", type=Path, required=True, metavar="DIR", help="directory with d/, t/, splits.csv")
    add("--synthetic", action="store_true", help="first generate synthetic data into DIR if it has none")
    add("--seed", type=int, default=7, help="seed of the --synthetic data (default: 7)")
    add("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    add("--port", type=int, default=8765, help="port to bind, 0 for any free one (default: 8765)")
    add("--latency-ms", type=float, default=0.0, metavar="MS", help="delay added to every answer (default: 0)")
    add("--api-key", metavar="KEY", help="require this apikey on CSV downloads, as stooq.com does")
    add("--as-of", type=parse_day, metavar="DATE", help="serving date: replay what Stooq showed on that day")
    add(
        "--fault",
        action="append",
        type=parse_fault,
        default=[],
        metavar="KIND[:RATE][@SYM,...]",
        help="inject a fault on downloads, e.g. http_503:0.3@SYNU001.US; repeatable; kinds: "
        + ", ".join(kind.value for kind in FaultKind),
    )
    add("--slow-delay", type=float, default=2.0, metavar="SECONDS", help="wait of `slow` faults (default: 2)")
    add("--ready-file", type=Path, metavar="PATH", help="write the server's URL here once it serves")
    serve_parser.set_defaults(run=serve)

    generate_parser = commands.add_parser(
        "generate",
        help="write a synthetic universe into a data directory",
        description="Write synthetic daily histories, index memberships and splits in Stooq's "
        "formats. Deterministic: the same arguments write byte-identical files.",
    )
    add = generate_parser.add_argument
    default_sizes = ",".join(f"{name}={size}" for name, size in DEFAULT_SIZES.items())
    add("--data-dir", type=Path, required=True, metavar="DIR", help="directory to write into")
    add("--seed", type=int, default=7, help="random seed (default: 7)")
    add(
        "--first-session",
        type=parse_day,
        default="2004-01-02",
        metavar="DATE",
        help="first day of the histories (default: 2004-01-02)",
    )
    add(
        "--last-session",
        type=parse_day,
        metavar="DATE",
        help="last day of the histories (default: each exchange's latest session already closed)",
    )
    add("--sizes", type=parse_sizes, metavar="NAME=COUNT,...", help=f"members per index ({default_sizes})")
    add("--dividends", action="store_true", help="also quarterly dividends of a quarter of the stocks (dividends.csv)")
    generate_parser.set_defaults(run=generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
