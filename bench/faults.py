"""Closes under random faults, bounded in time and requests, checked against fault-free closes.

    .venv/bin/python bench/faults.py                      # about 5 minutes
    .venv/bin/python bench/faults.py --seconds 60 --seed 7

Everything runs on loopback against the project's Stooq-compatible server with the synthetic data
set. Each round picks an index, one of its last sessions and a random mix of faults (5xx, resets,
slow answers, a damaged or missing CSV for some symbols, the hits limit or the browser check), and
closes the session through Dagster, fetching and writing everything again (`force`), in this process
or in a `python -m market_assets close` process killed with SIGKILL at a random moment, so faults
and kills also hit files being replaced. A third of the rounds also fill the data root (a tmpfs
of its own, when this user may mount one) to a random few hundred kB before the close, so that it
runs out of space in the middle, and some damage bars files after the close (truncated,
overwritten by another file, removed), which `verify --repair` must find, every one, and load
again. A round that fails is
closed again without faults, as an operator would, and the time that takes is its recovery time.
Then HSI's latest session is closed three times more through the real `dagster-daemon` (its
schedule, sensor and run retries), each time killing one of its processes with SIGKILL in the
middle: the run worker, the code server, the daemon itself (started again as a supervisor would);
these must complete with nobody's help, and their recovery time runs from the kill to the last
file written. Last, DJI's latest session is closed into an object store (moto's S3 server on
loopback) that starts answering uploads with errors, then with nothing, at a random upload, and
closed again once it is back.
At the end every parquet file under the data root is read back and every bar compared with a
fault-free close of the same session into a second data root.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import random
import shutil
import signal
import statistics
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
from market_assets.cli.verify import verify_index  # noqa: E402
from market_assets.domain.exchange_sessions import calendar, latest_closed_session  # noqa: E402
from market_assets.lake.datasets import BARS, MONTHLY_BARS  # noqa: E402
from market_assets.sources.indices import followed_indices  # noqa: E402
from market_assets_tests.daemon_processes import VICTIMS, kill, start_daemon  # noqa: E402
from market_assets_tests.lake_files import bars_frames  # noqa: E402
from market_assets_tests.polling import wait_for  # noqa: E402
from market_assets_tests.small_volume import fill, mount_tmpfs, unmount  # noqa: E402
from stooq_server import Fault, FaultKind, StooqServer, generate_synthetic  # noqa: E402

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

    def verify_and_repair(self, index: str, session: str) -> tuple[int, int]:
        """`verify --repair` of the session: files found damaged, and still damaged after."""
        with self.instance() as instance, contextlib.redirect_stdout(io.StringIO()):
            return verify_index(instance, index, session, repair=True)

    def close_killed(self, index: str, session: str, after: float) -> bool:
        """Close (again: `--force`) in a process of its own, killed with SIGKILL `after` seconds
        in; False when it was killed or failed."""
        process = subprocess.Popen(
            [sys.executable, "-m", "market_assets", "close", index, "--session", session, "--force"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
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


def damage_files(rng: random.Random, lake: Path, session: str, members: list[str]) -> Counter[str]:
    """Damage one to three bars files of `members` for `session`, each truncated, overwritten by
    another member's file of the same asset, or removed; the damages by kind."""
    files = sorted(
        path
        for asset in BARS
        for symbol in members
        if (path := lake / asset / f"session={session}" / f"{symbol}.parquet").exists()
    )
    done: Counter[str] = Counter()
    for path in rng.sample(files, k=min(len(files), rng.randint(1, 3))):
        kind = rng.choice(["truncated", "overwritten", "removed"])
        if kind == "truncated":
            path.write_bytes(path.read_bytes()[: rng.randint(0, path.stat().st_size - 1)])
        elif kind == "overwritten":
            other = next(p for p in files if p.parent == path.parent and p != path and p.stat().st_size > 0)
            shutil.copyfile(other, path)
        else:
            path.unlink()
        done[f"file {kind}"] += 1
    return done


def close_through_the_daemon(work: Path, data_dir: Path, victim: str) -> tuple[close_runs.Platform, str, float]:
    """Close HSI's latest session through the real daemon (schedule, sensor, run retries), killing
    `victim` (see `market_assets_tests.daemon_processes`) with SIGKILL once 20 symbols are in; the
    platform, the session and the seconds from the kill to the last file written."""
    now = pd.Timestamp.now(tz="UTC")
    session = latest_closed_session("XHKG", now)
    delay = math.ceil((now + pd.Timedelta(seconds=75) - calendar("XHKG").session_close(session)) / pd.Timedelta(minutes=1))
    day = f"{session:%Y-%m-%d}"
    with StooqServer(data_dir, latency=0.1) as server:
        platform = close_runs.Platform(work / f"daemon-{victim.replace(' ', '-')}", server)
        env = {**platform.env, "MARKET_ASSETS_CLOSE_DELAY_MINUTES": str(delay), "MARKET_ASSETS_CATCH_UP_SESSIONS": "1"}
        daemon = start_daemon(env, cwd=platform.home)
        try:
            wait_for(lambda: server.stats()["by_route"].get("download", 0) >= 20, 300, "the first downloads", 0.2)
            daemon = kill(victim, daemon, env)
            killed = time.time()
            with platform.instance() as instance:
                expected = {f"{day}|{symbol}" for symbol in instance.get_dynamic_partitions("xhkg_symbols")}
                wait_for(lambda: _complete(instance, expected), 600, "the close to complete by itself", 1)
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=60)
    last_write = max(path.stat().st_mtime for path in platform.lake.rglob("*.parquet"))
    return platform, day, last_write - killed


def close_into_a_failing_store(work: Path, server: StooqServer, session: str, rng: random.Random):
    """Close DJI for `session` into a bucket of moto's S3 server behind a proxy that, from a random
    upload on, answers errors or nothing (`market_assets_tests.object_store`), then close it again
    once the store is back; the bars in the bucket (by path), each outage's kind, whether the
    faulty close failed and the uploads failed, and the re-runs' times."""
    import boto3
    import fsspec.config
    import s3fs

    from market_assets.lake.store import ParquetStore
    from market_assets_tests.object_store import CREDENTIALS, FaultyObjectStore, s3_server

    # Give up on a request after a second and one attempt, so that an outage is told in seconds.
    fsspec.config.conf["s3"] = {"config_kwargs": {"read_timeout": 1, "connect_timeout": 1, "retries": {"max_attempts": 1}}}
    s3fs.S3FileSystem.retries = 1
    with s3_server() as endpoint, FaultyObjectStore(endpoint) as proxy:
        os.environ.update({**CREDENTIALS, "AWS_ENDPOINT_URL": proxy.url})
        boto3.client("s3").create_bucket(Bucket="lake")
        platform = Platform(work / "object-store", server)
        platform.env["MARKET_ASSETS_DATA_ROOT"] = "s3://lake/lake"
        outcomes, times = [], []
        for kind in ("error", "hang"):
            proxy.fail(kind, after=rng.randint(1, 60))
            failed = not platform.close("DJI", session, force=True)
            outcomes.append((kind, failed, proxy.faults))
            proxy.heal()
            began = time.monotonic()
            if not platform.close("DJI", session):
                raise RuntimeError(f"the close of DJI {session} into the object store failed once it was back")
            times.append(time.monotonic() - began)
        return bars_frames(ParquetStore("s3://lake/lake"), session), outcomes, times


def _complete(instance, expected: set[str]) -> bool:
    import dagster as dg

    from market_assets.defs.bars.keys import bars_asset_key
    from market_assets.defs.runs import IN_FLIGHT

    stored = instance.get_materialized_partitions(bars_asset_key("XHKG", MONTHLY_BARS))
    return expected <= stored and not instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT))


def files_of(universe, pairs: set[tuple[str, str]], expected: dict[str, Path]) -> set[str]:
    """The reference's bars files of the members of each (index, session) of `pairs`."""
    names = {(session, symbol) for index, session in pairs for symbol in universe.members(index, pd.Timestamp(session))}
    return {name for name in expected if (name.split("/")[1][len("session=") :], Path(name).stem) in names}


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
    recovery: dict[str, list[float]] = {}
    damaged = {"injected": 0, "found": 0, "left": 0}
    requests_made = 0
    volume = work / "faulty" / "lake"
    if mount_tmpfs(volume, 2**30) is not None:
        volume = None
    try:
        universe = generate_synthetic(work / "stooq")
        with StooqServer(universe.data_dir) as server:
            platform, reference = Platform(work / "faulty", server), Platform(work / "reference", server)
            if volume is None:
                print("(no tmpfs can be mounted here: no round runs out of space)")
            indices = followed_indices()
            closed: set[tuple[str, str]] = set()
            started = time.monotonic()
            while time.monotonic() - started < args.seconds and requests_made < args.max_requests:
                index = rng.choice(list(indices))
                code = indices[index].calendar
                sessions = calendar(code).sessions_in_range(
                    universe.last_session[code] - pd.Timedelta(days=14), universe.last_session[code]
                )[-args.sessions :]
                session = f"{rng.choice(list(sessions)):%Y-%m-%d}"
                members = universe.members(index, pd.Timestamp(session))
                server.reset_stats()
                server.set_faults(random_faults(rng, members))
                filler = None
                if volume is not None and rng.random() < 0.35:
                    filler = fill(volume, rng.randint(100_000, 1_500_000))
                    faults["disk full"] += 1
                if rng.random() < 0.25:
                    kind = "killed" if not platform.close_killed(index, session, rng.uniform(1.0, 6.0)) else "succeeded"
                else:
                    kind = "succeeded" if platform.close(index, session, force=True) else "failed"
                if filler is not None:
                    filler.unlink()
                stats = server.stats()
                faults.update(stats["faults"])
                server.clear_faults()
                server.reset_stats()
                if kind != "succeeded":
                    began = time.monotonic()
                    if platform.close(index, session):
                        recovery.setdefault(kind, []).append(time.monotonic() - began)
                    else:
                        kind = "not completed by a fault-free re-run"
                rounds[kind] += 1
                if kind != "not completed by a fault-free re-run" and rng.random() < 0.3:
                    done = damage_files(rng, platform.lake, session, members)
                    faults.update(done)
                    began = time.monotonic()
                    found, left = platform.verify_and_repair(index, session)
                    recovery.setdefault("damaged files", []).append(time.monotonic() - began)
                    damaged["injected"] += sum(done.values())
                    damaged["found"] += found
                    damaged["left"] += left
                requests_made += stats["total"] + server.stats()["total"]
                closed.add((index, session))
            rounds_closed = set(closed)
            dji_session = f"{universe.last_session['XNYS']:%Y-%m-%d}"
            in_the_bucket, outages, outage_times = close_into_a_failing_store(work, server, dji_session, rng)
            for kind, failed, count in outages:
                faults[f"object store {'errors' if kind == 'error' else 'timeouts'} (uploads)"] += count
                rounds["object store: succeeded" if not failed else "object store: failed"] += 1
            recovery["object store failing"] = outage_times
            closed.add(("DJI", dji_session))
            by_the_daemon = {}
            for victim in VICTIMS:
                daemon_platform, day, seconds = close_through_the_daemon(work, universe.data_dir, victim)
                faults[f"SIGKILL of the {victim}"] += 1
                recovery.setdefault(f"{victim} killed (from the kill to the last file)", []).append(seconds)
                by_the_daemon[victim] = daemon_platform
                closed.add(("HSI", day))
            for index, session in sorted(closed):
                if not reference.close(index, session):
                    raise RuntimeError(f"the fault-free close of {index} {session} failed")

        expected = bars_files(reference.lake)
        corrupt = differing = missing = extra = 0
        lakes = [
            (platform.lake, files_of(universe, rounds_closed, expected)),
            *((p.lake, files_of(universe, {("HSI", day)}, expected)) for p in by_the_daemon.values()),
        ]
        written_files = 0
        for lake, wanted in lakes:
            written = bars_files(lake)
            written_files += len(written)
            for name, path in written.items():
                try:
                    frame = pq.read_table(path).to_pandas()
                except Exception:  # any unreadable file counts, whatever pyarrow raises
                    corrupt += 1
                    continue
                if name in expected:
                    differing += differing_bars(frame, pd.read_parquet(expected[name]))
            missing += len(wanted - set(written))
            extra += len(set(written) - wanted)
        half_written = [p for lake, _ in lakes for p in lake.rglob("*.parquet") if p.stat().st_size == 0]
        written_files += len(in_the_bucket)
        wanted = files_of(universe, {("DJI", dji_session)}, expected)
        missing += len(wanted - set(in_the_bucket))
        extra += len(set(in_the_bucket) - wanted)
        differing += sum(
            differing_bars(frame, pd.read_parquet(expected[name])) for name, frame in in_the_bucket.items() if name in expected
        )

        print(
            f"rounds: {sum(rounds.values())} closes of {len(closed)} (index, session) pairs: "
            + ", ".join(f"{count} {kind}" for kind, count in sorted(rounds.items()))
        )
        print(f"requests: {requests_made}")
        print("faults injected: " + (", ".join(f"{kind} {count}" for kind, count in sorted(faults.items())) or "none"))
        print(
            f"runs succeeded: {rounds['succeeded'] + rounds['object store: succeeded']} at once, "
            f"{rounds['failed'] + rounds['killed'] + rounds['object store: failed']} after a fault-free re-run "
            f"({rounds['killed']} of them killed with SIGKILL first), "
            f"{len(by_the_daemon)} through the daemon after a SIGKILL, by themselves"
        )
        print(
            f"closes through the daemon: {len(by_the_daemon)} completed by themselves after a SIGKILL of "
            + ", ".join(f"the {victim}" for victim in by_the_daemon)
        )
        print(
            f"damaged files: {damaged['injected']} injected, {damaged['found']} found by verify, "
            f"{damaged['left']} still damaged after verify --repair   (found must equal injected, 0 left)"
        )
        print(
            "recovery, seconds from the fault-free re-run's start to its end: "
            + (
                "; ".join(
                    f"{kind} {len(times)}x median {statistics.median(times):.1f} max {max(times):.1f}"
                    for kind, times in sorted(recovery.items())
                )
                or "none needed"
            )
        )
        print(
            f"partitions written: {written_files} bars files, {missing} missing, {extra} unexpected "
            f"(the rounds' data root, one per close through the daemon, the bucket)"
        )
        print(f"partitions corrupt: {corrupt + len(half_written)}   (must be 0)")
        print(f"bars differing from the fault-free reference: {differing}   (must be 0)")
        intact = corrupt + len(half_written) + differing + missing + extra + damaged["left"] == 0
        return (
            0 if intact and damaged["found"] == damaged["injected"] and not rounds["not completed by a fault-free re-run"] else 1
        )
    finally:
        if volume is not None:
            unmount(volume)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
