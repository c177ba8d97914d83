"""How close the close runs come to the physical limit, measured in one run of this script.

    .venv/bin/python bench/close_runs.py                 # everything (about 20 minutes)
    .venv/bin/python bench/close_runs.py --sizes ""      # without the 100/300/1,000/3,000-symbol scale runs

Everything runs on loopback against the project's Stooq-compatible server, with synthetic data
(daily history from 2004, over 20 years per symbol) and `--latency-ms` (200) added to every answer,
in fresh temporary `DAGSTER_HOME`s and data roots:

1. baseline: the old flow's plain sequential loop (composition, then per symbol: fetch, write daily,
   resample and write weekly and monthly), for the three indices;
2. platform: the real `dagster-daemon` with the project's `dagster.yaml`, in the steady state of a
   daily close (the previous session's compositions and bars are stored, so symbols are downloaded
   incrementally); both exchanges' sessions are published at the same minute (their delays are
   set so), the close schedules and the sensor launch the runs a head start ahead as they do
   every day, and the time runs from the publication (the "tick": when the old flow could have
   started) to the end of the last run;
3. limit: requests x latency / allowed requests in flight (the `stooq` pool), plus the CPU time
   of parsing, resampling and writing the same symbols measured alone in this process; the pure
   request time is its first term;
4. CI: the README's CI path, `python -m market_assets plan | sh` twice, on an instance of its own in
   the same steady state, from the first command to the last file written (and to the end of the
   second `plan`).

It prints the bytes a close downloads (the server's composition and download routes) from scratch
(the previous session, on empty instances) and in the steady state; re-runs the session (nothing
may be fetched), fails k symbols of another session and re-runs it (exactly k may be fetched),
times the daemon path on universes of 100, 300, 1,000 and 3,000 symbols (seconds per 100
symbols), and prints the peak memory of every process involved. Each target is one line,
`name: value (target <= X) met` or `NOT MET`.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from market_assets.domain.candles import resample, snapshot, with_symbol  # noqa: E402
from market_assets.domain.exchange_sessions import calendar, latest_closed_session  # noqa: E402
from market_assets.lake.store import ParquetStore  # noqa: E402
from market_assets.sources.indices import (
    exchange_of,  # noqa: E402
    followed_indices,  # noqa: E402
)
from market_assets.sources.parsing import parse_composition_page, parse_history_csv  # noqa: E402
from market_assets.sources.request_budget import POOL  # noqa: E402
from stooq_server import Fault, FaultKind, StooqServer, generate_synthetic  # noqa: E402

SCALE_SIZES = {
    100: {"DJI": 30, "NDX": 40, "HSI": 40},
    300: {"DJI": 30, "NDX": 130, "HSI": 150},
    1000: {"DJI": 30, "NDX": 480, "HSI": 500},
    3000: {"DJI": 30, "NDX": 1480, "HSI": 1500},
}
"""Member counts giving 100, 300, 1,000 and 3,000 distinct symbols (DJI and NDX share 10)."""

DOWNLOADED_ROUTES = ("composition", "download")
"""The server's routes whose answers a close downloads: composition pages and CSV histories."""

BIN = Path(sys.executable).parent


class ProcessUsage:
    """Peak resident memory and CPU seconds of every process of a process group, polled from /proc.

    CPU is summed by role (the daemon, its code server, each kind of run worker), so the output
    says where the platform's CPU went; a process's last 0.1 s before it exits may be missed.
    """

    TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, pgid: int) -> None:
        self.pgid, self.peak_kib, self.peak_name = pgid, 0, ""
        self._cpu: dict[int, tuple[str, float]] = {}
        self._marked: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.1):
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    pid = int(proc.name)
                    if os.getpgid(pid) != self.pgid:
                        continue
                    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                    cpu = (int(fields[11]) + int(fields[12])) / self.TICKS
                    status = dict(
                        line.split(":", 1) for line in (proc / "status").read_text().splitlines()
                    )
                    peak = int(status["VmHWM"].split()[0])
                    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    self._cpu[pid] = (_role(cmd), cpu)
                    if peak > self.peak_kib:
                        self.peak_kib, self.peak_name = peak, cmd[:60]
                except (OSError, KeyError, ValueError, IndexError, ProcessLookupError):
                    continue

    def mark(self) -> None:
        """Count CPU from now on in `cpu_by_role(since_mark=True)`."""
        self._marked = {pid: cpu for pid, (_, cpu) in self._cpu.items()}

    def cpu_by_role(self, since_mark: bool = False) -> dict[str, tuple[int, float]]:
        """`{role: (processes, CPU seconds)}`, since the process started or since `mark()`."""
        roles: dict[str, tuple[int, float]] = {}
        for pid, (role, cpu) in self._cpu.items():
            spent = cpu - self._marked.get(pid, 0.0) if since_mark else cpu
            if since_mark and spent <= 0:
                continue
            count, total = roles.get(role, (0, 0.0))
            roles[role] = (count + 1, total + spent)
        return roles

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _role(cmdline: str) -> str:
    if "dagster-daemon" in cmdline:
        return "daemon"
    if "api grpc" in cmdline or "code-server" in cmdline:
        return "code server"
    if "execute_run" in cmdline or "api execute" in cmdline or "multiprocessing" in cmdline:
        return "run workers"
    return "other"


def baseline(server: StooqServer, workdir: Path) -> tuple[float, int]:
    """The old flow: everything one after the other, with plain pandas."""
    store = workdir / "baseline"
    session = requests.Session()
    started, symbols = time.perf_counter(), 0
    for name, index in followed_indices().items():
        url = f"{server.url}/t/?i={index.stooq_id}"
        first, pages = parse_composition_page(session.get(url, timeout=30).text, name, url)
        frames = [first] + [
            parse_composition_page(session.get(f"{url}&l={page}", timeout=30).text, name, url)[0]
            for page in pages
            if page != 1
        ]
        for symbol in pd.concat(frames)["symbol"]:
            url = f"{server.url}/q/d/l/?s={symbol.lower()}&i=d"
            daily = pd.read_csv(pd.io.common.StringIO(session.get(url, timeout=30).text), parse_dates=["Date"])
            daily = daily.set_index("Date")
            folder = store / name
            folder.mkdir(parents=True, exist_ok=True)
            daily.to_parquet(folder / f"{symbol}.daily.parquet")
            for rule, label in (("W-SUN", "weekly"), ("ME", "monthly")):
                bars = daily.resample(rule).agg(
                    {"Open": "first", "High": "max", "Low": "min", "Close": "last", "Volume": "sum"}
                ).dropna(subset=["Close"])
                bars.to_parquet(folder / f"{symbol}.{label}.parquet")
            symbols += 1
    return time.perf_counter() - started, symbols


def cpu_alone(data_dir: Path, symbols: list[str], session: pd.Timestamp, workdir: Path) -> float:
    """CPU seconds of parsing, snapshotting, resampling and writing `symbols`, done here alone."""
    store = ParquetStore(str(workdir / "cpu_alone"))
    texts = {symbol: (data_dir / "d" / f"{symbol.lower()}.csv").read_text() for symbol in symbols}
    started = time.process_time()
    for symbol, text in texts.items():
        day = min(session, pd.Timestamp(latest_closed_session(exchange_of(symbol))))
        daily = snapshot(parse_history_csv(text, symbol, "file"), day)
        key = f"{day:%Y-%m-%d}|{symbol}"
        store.write("daily_bars", key, with_symbol(daily, symbol))
        for period in ("week", "month"):
            store.write(f"{period}ly_bars", key, with_symbol(resample(daily, period, day, exchange_of(symbol)), symbol))
    return time.process_time() - started


class Platform:
    """A fresh instance and data root, driven by the real daemon."""

    def __init__(self, workdir: Path, server: StooqServer) -> None:
        self.home, self.lake = workdir / "dagster_home", workdir / "lake"
        self.home.mkdir(parents=True)
        shutil.copy(PROJECT_ROOT / "dagster.yaml", self.home / "dagster.yaml")
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "MARKET_ASSETS_DATA_ROOT": str(self.lake),
            "STOOQ_BASE_URL": server.url,
            "MARKET_ASSETS_CATCH_UP_SESSIONS": "1",
        }

    def instance(self):
        import dagster as dg

        os.environ.update({k: self.env[k] for k in ("DAGSTER_HOME", "MARKET_ASSETS_DATA_ROOT", "STOOQ_BASE_URL")})
        return dg.DagsterInstance.get()

    def previous_session_loaded(self) -> None:
        """The steady state of a daily close: the previous session is loaded, compositions and bars."""
        from market_assets.cli.close import close_index

        with self.instance() as instance:
            for name, index in followed_indices().items():
                previous = calendar(index.calendar).previous_session(latest_closed_session(index.calendar))
                close_index(instance, name, f"{previous:%Y-%m-%d}")

    def close_by_plan(self) -> dict[str, float]:
        """The README's CI path: `plan | sh`, twice, with the `dagster` of this interpreter. Timed
        from the first command to the last file written in the lake and to the end of the second
        `plan`; each plan's commands are kept for the output."""
        env = {**self.env, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        started, scripts = time.time(), []
        for _ in range(2):
            script = subprocess.run(
                [sys.executable, "-m", "market_assets", "plan"],
                env=env, cwd=self.home, capture_output=True, text=True, check=True,
            ).stdout
            scripts.append([line[2:] for line in script.splitlines() if line.startswith("# ")])
            executed = subprocess.run(["sh"], input=script, env=env, cwd=self.home, capture_output=True, text=True)
            if executed.returncode != 0:
                raise RuntimeError(f"plan | sh failed:\n{executed.stderr[-3000:]}")
        ended = time.time()
        last_file = max(path.stat().st_mtime for path in self.lake.rglob("*") if path.is_file())
        return {"seconds": last_file - started, "to_the_end": ended - started, "plans": scripts}

    def close_by_schedule(self, expected: set[str], verbose: bool = False) -> dict[str, float]:
        """Publish both exchanges' sessions at a minute after the head start; wait for the last run;
        time it from the publication."""
        from market_assets.domain.close_timing import lead
        from market_assets.settings import head_start

        now = pd.Timestamp.now(tz="UTC")
        tick = (now + lead(head_start()) + pd.Timedelta(seconds=40)).ceil("min")
        delays = []
        for code in ("XNYS", "XHKG"):
            close = calendar(code).session_close(latest_closed_session(code, now))
            delays.append(f"{code}={math.ceil((tick - close) / pd.Timedelta(minutes=1))}")
        env = {**self.env, "MARKET_ASSETS_CLOSE_DELAY_MINUTES": ",".join(delays)}
        with self.instance() as instance:  # (creating the storage in two processes at once can corrupt it)
            earlier = {record.dagster_run.run_id for record in instance.get_run_records()}
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-m", "market_assets"],
            env=env, cwd=self.home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        memory = ProcessUsage(daemon.pid)
        try:
            with self.instance() as instance:
                runs = self._wait_for_close(instance, expected, earlier, tick, on_tick=memory.mark)
        finally:
            os.killpg(daemon.pid, 15)
            daemon.wait(timeout=60)
            memory.stop()
        ends = [run.end_time for run in runs]
        starts = {run.dagster_run.job_name: run.start_time for run in runs}
        if verbose:
            with self.instance() as instance:
                for run in sorted(runs, key=lambda r: r.start_time):
                    print(f"    {run.dagster_run.job_name:20s} queued {run.create_timestamp.timestamp() - tick.timestamp():6.1f}"
                          f"  start {run.start_time - tick.timestamp():6.1f}  end {run.end_time - tick.timestamp():6.1f}"
                          f"  steps: {_step_times(instance, run.dagster_run.run_id, tick.timestamp())}")
        return {
            "seconds": max(ends) - tick.timestamp(),
            "runs": len(runs),
            "first_run_start": min(starts.values()) - tick.timestamp(),
            "peak_mib": memory.peak_kib / 1024,
            "peak_process": memory.peak_name,
            "cpu_by_role": memory.cpu_by_role(),
            "cpu_after_publication": memory.cpu_by_role(since_mark=True),
        }

    def _wait_for_close(self, instance, expected: set[str], earlier: set[str], tick: pd.Timestamp, on_tick):
        """Wait (15 minutes at most after `tick`) until every `expected` monthly partition is stored
        and no new run is unfinished; call `on_tick` once `tick` has come."""
        import dagster as dg

        from market_assets.defs.bars.keys import MONTHLY, bars_asset_key

        deadline = tick + pd.Timedelta(minutes=15)
        while pd.Timestamp.now(tz="UTC") < deadline:
            if on_tick is not None and pd.Timestamp.now(tz="UTC") >= tick:
                on_tick()
                on_tick = None
            records = [r for r in instance.get_run_records() if r.dagster_run.run_id not in earlier]
            busy = [r for r in records if not r.dagster_run.is_finished]
            failed = [r for r in records if r.dagster_run.status == dg.DagsterRunStatus.FAILURE]
            if failed:
                raise RuntimeError(f"run {failed[0].dagster_run.run_id} ({failed[0].dagster_run.job_name}) failed")
            monthly = [instance.get_materialized_partitions(bars_asset_key(code, MONTHLY)) for code in ("XNYS", "XHKG")]
            if expected <= set().union(*monthly) and not busy:
                return [r for r in records if r.dagster_run.job_name != "refresh_membership"]
            time.sleep(0.1 if on_tick is not None else 0.5)
        raise TimeoutError("the close did not finish in 15 minutes")


def _step_times(instance, run_id: str, since: float) -> str:
    """`step start-end` of each step of a run, when its last answer was in and when each asset's
    files were written, in seconds after `since`."""
    import dagster as dg

    starts, text = {}, []
    for entry in instance.all_logs(run_id):
        if " fetched, " in entry.user_message:  # the last answer is in
            text.append(f"fetched {entry.timestamp - since:.1f}")
        elif " written under " in entry.user_message:  # the IO manager wrote an asset's files
            text.append(f"{entry.user_message.split(':')[0]} written {entry.timestamp - since:.1f}")
        elif entry.dagster_event_type == dg.DagsterEventType.STEP_START:
            starts[entry.step_key] = entry.timestamp - since
        elif entry.dagster_event_type == dg.DagsterEventType.STEP_SUCCESS:
            text.append(f"{entry.step_key} {starts[entry.step_key]:.1f}-{entry.timestamp - since:.1f}")
    return ", ".join(text)


def rerun_and_failures(platform: Platform, server: StooqServer, k: int) -> dict[str, float]:
    """Re-run the loaded session, then fail k symbols of an earlier HSI session and re-run it."""
    from market_assets.cli.close import CloseFailed, close_index

    out: dict[str, float] = {}
    with platform.instance() as instance:
        server.reset_stats()
        started = time.perf_counter()
        for index in followed_indices():
            close_index(instance, index)
        out["rerun_seconds"] = time.perf_counter() - started
        out["rerun_requests"] = server.stats()["total"]

        hkex = calendar("XHKG")  # a session not loaded yet: two before the latest
        session = hkex.previous_session(hkex.previous_session(latest_closed_session("XHKG")))
        day = f"{session:%Y-%m-%d}"
        victims = tuple(sorted(server_members(platform, "HSI"))[:k])
        server.set_faults([Fault(FaultKind.NO_DATA, symbols=victims)])
        try:
            close_index(instance, "HSI", day)
        except CloseFailed:
            pass
        server.clear_faults()
        server.reset_stats()
        close_index(instance, "HSI", day)
        out["failed_rerun_downloads"] = server.stats()["by_route"]["download"]
        out["failed_rerun_symbols"] = ",".join(sorted(server.stats()["by_symbol"]))
        out["victims"] = ",".join(victims)
    return out


def server_members(platform: Platform, index: str) -> list[str]:
    store = ParquetStore(str(platform.lake))
    keys = [key for key in store.partition_keys("index_composition") if key.endswith(f"|{index}")]
    return list(store.read("index_composition", sorted(keys)[-1])["symbol"])


def universe_symbols(universe, sessions: dict[str, pd.Timestamp]) -> list[str]:
    indices = followed_indices()
    return sorted({s for name, index in indices.items() for s in universe.members(name, sessions[index.calendar])})


def session_keys(symbols: list[str], sessions: dict[str, pd.Timestamp]) -> set[str]:
    """The (session, symbol) partitions a close of `sessions` stores."""
    return {f"{sessions[exchange_of(symbol)]:%Y-%m-%d}|{symbol}" for symbol in symbols}


def downloaded(stats: dict) -> int:
    """Bytes the server answered on the routes a close downloads from."""
    return sum(stats["bytes_by_route"].get(route, 0) for route in DOWNLOADED_ROUTES)


def target(name: str, value: float, limit: float, unit: str = "", digits: int = 3) -> None:
    """One target's line: `name: value (target <= limit) met` or `NOT MET`."""
    verdict = "met" if value <= limit else "NOT MET"
    print(f"{name}: {value:.{digits}f}{unit} (target <= {limit:g}{unit}) {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--sizes", default="100,300,1000", help="scale runs; empty for none")
    parser.add_argument("--failures", type=int, default=3, help="k symbols failed, then re-run")
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    work = Path(tempfile.mkdtemp(prefix="bench-close-"))
    print(f"work folder: {work}")
    try:
        universe = generate_synthetic(work / "stooq")
        sessions = {code: latest_closed_session(code) for code in ("XNYS", "XHKG")}
        symbols = universe_symbols(universe, sessions)
        with StooqServer(universe.data_dir, latency=latency) as server:
            base_seconds, base_symbols = baseline(server, work)
            platform = Platform(work / "platform", server)
            server.reset_stats()
            platform.previous_session_loaded()
            scratch_bytes = downloaded(server.stats())
            server.reset_stats()
            result = platform.close_by_schedule(session_keys(symbols, sessions), verbose=True)
            stats = server.stats()
            ci_platform = Platform(work / "ci", server)
            ci_platform.previous_session_loaded()
            server.reset_stats()
            ci = ci_platform.close_by_plan()
            ci_bytes = downloaded(server.stats())
            with platform.instance() as instance:
                slots = instance.event_log_storage.get_concurrency_info(POOL).slot_count
            extra = rerun_and_failures(platform, server, args.failures)
        cpu = cpu_alone(universe.data_dir, symbols, max(sessions.values()), work)
        requests_made = stats["total"]
        network = requests_made * latency / slots
        limit = network + cpu
        steady_bytes = downloaded(stats)

        print(f"\nuniverse: {len(symbols)} symbols, {requests_made} requests, latency {args.latency_ms:.0f} ms, "
              f"pool '{POOL}' = {slots} requests in flight (server saw at most {stats['peak_in_flight']})")
        print(f"(1) baseline, sequential old flow : {base_seconds:7.1f} s  ({base_symbols} symbol downloads)")
        print(f"(2) platform, publication -> last run: {result['seconds']:4.1f} s  ({result['runs']} runs; "
              f"the first started {-result['first_run_start']:.1f} s before the publication)")
        print(f"(3) limit = {requests_made} x {latency:.3f} s / {slots} + CPU alone {cpu:.1f} s = {limit:7.1f} s")
        print(f"(4) CI, plan | sh twice: {ci['seconds']:.1f} s to the last file written, {ci['to_the_end']:.1f} s "
              "to the end of the second plan")
        for number, lines in enumerate(ci["plans"], 1):
            print(f"    plan {number}: " + "; ".join(lines))
        print(f"bytes downloaded per close: from scratch {scratch_bytes:,}, steady state {steady_bytes:,} "
              f"(daemon), {ci_bytes:,} (CI)")
        print(f"    peak memory: {result['peak_mib']:.0f} MiB ({result['peak_process']})")
        print("    CPU seconds by process (from the daemon's start): " + ", ".join(
            f"{role} {cpu:.1f} ({count} processes)" for role, (count, cpu) in sorted(result["cpu_by_role"].items())
        ))
        print("    CPU seconds by process from the publication to the end: " + ", ".join(
            f"{role} {cpu:.1f}" for role, (count, cpu) in sorted(result["cpu_after_publication"].items())
        ))
        print(f"re-run of the loaded session: {extra['rerun_seconds']:.1f} s, {extra['rerun_requests']} requests")
        print(f"{args.failures} symbols failed ({extra['victims']}); the re-run downloaded "
              f"{extra['failed_rerun_downloads']} ({extra['failed_rerun_symbols']})")

        print("\ntargets:")
        target("daemon path / old loop, (2)/(1)", result["seconds"] / base_seconds, 0.15)
        target("daemon path / pure request time (requests x latency / in flight)", result["seconds"] / network, 1.3)
        target("CI path / old loop, (4)/(1)", ci["seconds"] / base_seconds, 0.3)
        target("steady-state close bytes / from-scratch close bytes (daemon)", steady_bytes / scratch_bytes, 0.05)
        target("steady-state close bytes / from-scratch close bytes (CI)", ci_bytes / scratch_bytes, 0.05)
        target("re-run of the loaded session / the close", extra["rerun_seconds"] / result["seconds"], 0.1)
        target("re-run of the loaded session, requests", extra["rerun_requests"], 0, digits=0)
        target("3 failed symbols, re-run downloads", extra["failed_rerun_downloads"], args.failures, digits=0)
        peaks = [result["peak_mib"]]

        per_100 = {}
        sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
        for size in sizes:
            scale_dir = work / f"scale-{size}"
            scaled = generate_synthetic(scale_dir / "stooq", sizes=SCALE_SIZES[size])
            scaled_symbols = universe_symbols(scaled, sessions)
            count = len(scaled_symbols)
            with StooqServer(scaled.data_dir, latency=latency) as server:
                scale_platform = Platform(scale_dir / "platform", server)
                scale_platform.previous_session_loaded()
                run = scale_platform.close_by_schedule(session_keys(scaled_symbols, sessions))
            per_100[size] = run["seconds"] / count * 100
            peaks.append(run["peak_mib"])
            print(f"scale {count:5d} symbols: {run['seconds']:6.1f} s = {per_100[size]:5.2f} s per 100 "
                  f"symbols ({run['runs']} runs, peak {run['peak_mib']:.0f} MiB)")
            shutil.rmtree(scale_dir, ignore_errors=True)
        if 1000 in per_100 and 3000 in per_100:
            target("scale, s per 100 symbols at 3,000 / at 1,000", per_100[3000] / per_100[1000], 1.0)
        target("peak memory of any process", max(peaks), 1024, " MiB", digits=0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
