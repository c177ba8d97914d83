"""Closes under random faults, bounded in time and requests, checked against fault-free closes.

    .venv/bin/python bench/faults.py                      # about 5 minutes
    .venv/bin/python bench/faults.py --seconds 60 --seed 7

Everything runs on loopback against the project's Stooq-compatible server with the synthetic data
set. Each round picks an index, one of its last sessions and a random mix of faults (5xx, resets,
slow answers, a damaged or missing CSV for some symbols, the hits limit or the browser check), and
closes the session through Dagster, fetching and writing everything again (`force`), in this process
or in a `python -m market_assets close` process killed with SIGKILL at a random moment, so faults
and kills also hit files being replaced. A round that fails is closed again without faults, as an
operator would. At the end every parquet file under the data root is read back and every bar
compared with a fault-free close of the same session into a second data root.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import close_runs  # noqa: E402  (beside this script)

from market_assets.cli.close import CloseFailed, close_index  # noqa: E402
from market_assets.domain.exchange_sessions import calendar  # noqa: E402
from market_assets.sources.indices import followed_indices  # noqa: E402
from stooq_server import Fault, FaultKind, StooqServer, generate_synthetic  # noqa: E402

BARS = ("daily_bars", "weekly_bars", "monthly_bars")
TRANSIENT = (FaultKind.HTTP_500, FaultKind.HTTP_503, FaultKind.RESET, FaultKind.SLOW)
DAMAGED = (FaultKind.TRUNCATED, FaultKind.GARBLED, FaultKind.NO_DATA, FaultKind.EMPTY, FaultKind.BAD_COLUMNS)
SOURCE_WIDE = (FaultKind.HITS_LIMIT, FaultKind.CHALLENGE)


class Platform(close_runs.Platform):
    """A fresh instance and data root (as in `close_runs`), closed in this process or killed."""

    def close(self, index: str, session: str, force: bool = False) -> bool:
        """Close in this process; False when a run of the close failed."""
        with self.instance() as instance:
            try:
                close_index(instance, index, session, force=force)
            except CloseFailed:
                return False
        return True

    def close_killed(self, index: str, session: str, after: float) -> bool:
        """Close (again: `--force`) in a process of its own, killed with SIGKILL `after` seconds
        in; False when it was killed or failed."""
        process = subprocess.Popen(
            [sys.executable, "-m", "market_assets", "close", index, "--session", session, "--force"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            process.wait(timeout=after)
            return process.returncode == 0
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return False


def random_faults(rng: random.Random, members: list[str]) -> list[Fault]:
    """A mix: transient faults on a share of all requests, damage on some symbols, sometimes a
    source-wide refusal starting at some symbol."""
    faults = [
        Fault(kind, rate=rng.uniform(0.05, 0.2), delay=0.5 if kind is FaultKind.SLOW else 0.0)
        for kind in rng.sample(TRANSIENT, k=rng.randint(1, len(TRANSIENT)))
    ]
    victims = rng.sample(members, k=rng.randint(0, 3))
    faults += [Fault(rng.choice(DAMAGED), symbols=frozenset([symbol])) for symbol in victims]
    if rng.random() < 0.2:
        faults.append(Fault(rng.choice(SOURCE_WIDE), symbols=frozenset(rng.sample(members, k=len(members) // 2))))
    return faults


def differing_bars(frame: pd.DataFrame, reference: pd.DataFrame) -> int:
    """Rows of `frame` that are not exactly the reference's (every row, if the shapes differ)."""
    if list(frame.columns) != list(reference.columns) or len(frame) != len(reference):
        return max(len(frame), len(reference))
    same = (frame == reference) | (frame.isna() & reference.isna())
    return int((~same.all(axis=1)).sum())


def bars_files(lake: Path) -> dict[str, Path]:
    return {str(path.relative_to(lake)): path for asset in BARS for path in (lake / asset).glob("*/*.parquet")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=300, help="stop starting rounds after this")
    parser.add_argument("--max-requests", type=int, default=50_000, help="stop starting rounds after this")
    parser.add_argument("--sessions", type=int, default=3, help="how many recent sessions rounds pick from")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    rounds: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    requests_made = 0
    try:
        universe = generate_synthetic(work / "stooq")
        with StooqServer(universe.data_dir) as server:
            platform, reference = Platform(work / "faulty", server), Platform(work / "reference", server)
            indices = followed_indices()
            closed: set[tuple[str, str]] = set()
            started = time.monotonic()
            while time.monotonic() - started < args.seconds and requests_made < args.max_requests:
                index = rng.choice(list(indices))
                code = indices[index].calendar
                sessions = calendar(code).sessions_in_range(
                    universe.last_session[code] - pd.Timedelta(days=14), universe.last_session[code]
                )[-args.sessions:]
                session = f"{rng.choice(list(sessions)):%Y-%m-%d}"
                members = universe.members(index, pd.Timestamp(session))
                server.reset_stats()
                server.set_faults(random_faults(rng, members))
                if rng.random() < 0.25:
                    kind = "killed" if not platform.close_killed(index, session, rng.uniform(1.0, 6.0)) else "succeeded"
                else:
                    kind = "succeeded" if platform.close(index, session, force=True) else "failed"
                stats = server.stats()
                faults.update(stats["faults"])
                server.clear_faults()
                server.reset_stats()
                if kind != "succeeded" and not platform.close(index, session):
                    kind = "not completed by a fault-free re-run"
                rounds[kind] += 1
                requests_made += stats["total"] + server.stats()["total"]
                closed.add((index, session))
            for index, session in sorted(closed):
                if not reference.close(index, session):
                    raise RuntimeError(f"the fault-free close of {index} {session} failed")

        written, expected = bars_files(platform.lake), bars_files(reference.lake)
        corrupt = differing = 0
        for name, path in written.items():
            try:
                frame = pq.read_table(path).to_pandas()
            except Exception:  # any unreadable file counts, whatever pyarrow raises
                corrupt += 1
                continue
            if name in expected:
                differing += differing_bars(frame, pd.read_parquet(expected[name]))
        missing = len(set(expected) - set(written))
        extra = len(set(written) - set(expected))
        half_written = [p for p in platform.lake.rglob("*.parquet") if p.stat().st_size == 0]

        print(f"rounds: {sum(rounds.values())} closes of {len(closed)} (index, session) pairs: "
              + ", ".join(f"{count} {kind}" for kind, count in sorted(rounds.items())))
        print(f"requests: {requests_made}")
        print("faults injected: " + (", ".join(f"{kind} {count}" for kind, count in sorted(faults.items())) or "none"))
        print(f"runs succeeded: {rounds['succeeded']} at once, "
              f"{rounds['failed'] + rounds['killed']} after a fault-free re-run "
              f"({rounds['killed']} of them killed with SIGKILL first)")
        print(f"partitions written: {len(written)} bars files ({len(expected)} expected, {missing} missing, {extra} unexpected)")
        print(f"partitions corrupt: {corrupt + len(half_written)}   (must be 0)")
        print(f"bars differing from the fault-free reference: {differing}   (must be 0)")
        return 0 if corrupt + len(half_written) + differing + missing + extra == 0 and not rounds[
            "not completed by a fault-free re-run"] else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
