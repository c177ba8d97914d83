"""What a close costs, in time and in CPU, against baselines measured in the same run of this script.

    .venv/bin/python bench/close_runs.py                          # everything (about 70 minutes)
    .venv/bin/python bench/close_runs.py --sizes 1000             # a whole market of 1,000 only
    .venv/bin/python bench/close_runs.py --sizes "" --indices     # the three indices only
    .venv/bin/python bench/close_runs.py --storage postgres ...   # the instance in PostgreSQL

Everything runs on loopback against the project's Stooq-compatible server, with synthetic data
(daily history from 2004, over 20 years per symbol) and `--latency-ms` (200) added to every answer,
in fresh temporary `DAGSTER_HOME`s and data roots, with the project's `dagster.yaml` (or, with
`--storage postgres`, deploy/dagster.postgres.yaml against a PostgreSQL server started here).

**A whole market** (`--sizes`, 1,000 and 10,000): the index `US_MARKET` of bench/indices.yaml,
generated with that many members on XNYS and followed alone, closed through the real
`dagster-daemon` as every day: its session published a minute after the daemon starts, the
schedule and the `close_bars` sensor launching the runs a head start ahead, the `stooq` pool at 6.

- steady state: the previous session stored (loaded in this process first, without latency), so
  each symbol's new bars are downloaded incrementally;
- from scratch: an empty instance and lake, whole histories;
- the files source: the steady state's instance and lake, the session read from a bulk archive of
  every history (`MARKET_ASSETS_SOURCE=files`), as a whole market is loaded in practice.

For each it prints the seconds from the publication to the last file written, the seconds per 100
symbols, the peak memory of any process, and the CPU per symbol of the run workers, the code
servers and the daemon, from the publication on, beside the CPU per symbol of the work alone:
the same symbols parsed, appended to their previous snapshot (steady state) or not (from scratch),
resampled and written by the lake's code in this process, with no Dagster.

**The three indices** (`--indices`, on unless `--sizes` is given alone): DJI, NDX and HSI as
followed by default, in the steady state through the daemon, against the old flow's sequential
loop and the pure request time (requests x latency / requests in flight); the README's CI path
(`python -m market_assets plan | sh`, twice) from scratch and in the steady state; a re-run of a
stored session (nothing fetched) and of one where k symbols failed (exactly k fetched).

Each target is one line, `name: value (target <= X) met` or `NOT MET`.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import requests
import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from market_assets.domain.candles import resample, snapshot, with_symbol  # noqa: E402
from market_assets.domain.exchange_sessions import calendar, latest_closed_session  # noqa: E402
from market_assets.domain.incremental_history import extend, overlap_start  # noqa: E402
from market_assets.lake.store import ParquetStore  # noqa: E402
from market_assets.sources.indices import exchange_of, followed_indices  # noqa: E402
from market_assets.sources.parsing import parse_composition_page, parse_history_csv  # noqa: E402
from market_assets.sources.request_budget import POOL  # noqa: E402
from stooq_server import Fault, FaultKind, StooqServer, generate_synthetic  # noqa: E402
from stooq_server.bulk import write_bulk_archive  # noqa: E402

BENCH_INDICES = PROJECT_ROOT / "bench" / "indices.yaml"
MARKET = "US_MARKET"
DOWNLOADED_ROUTES = ("composition", "download")
"""The server's routes whose answers a close downloads: composition pages and CSV histories."""
WORK_SAMPLE = 1000
"""Symbols the work alone is measured on (evenly spread): its CPU per symbol does not need them all."""
BIN = Path(sys.executable).parent


# --- Processes -------------------------------------------------------------------------------------


class ProcessUsage:
    """Peak resident memory and CPU seconds of every process of a process group, polled from /proc.

    CPU is summed by role (the daemon, its code servers, the run workers), so the output says where
    the platform's CPU went; a process's last 0.2 s before it exits may be missed.
    """

    TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, *pgids: int) -> None:
        self.pgids, self.peak_kib, self.peak_name = set(pgids), 0, ""
        self._cpu: dict[int, tuple[str, float]] = {}
        self._marked: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    pid = int(proc.name)
                    if os.getpgid(pid) not in self.pgids:
                        continue
                    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                    cpu = (int(fields[11]) + int(fields[12])) / self.TICKS
                    status = dict(line.split(":", 1) for line in (proc / "status").read_text().splitlines())
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
        """`{role: (processes, CPU seconds)}`, since each process started or since `mark()`."""
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
    if "api grpc" in cmdline or "code-server" in cmdline or "code_server" in cmdline:
        return "code servers"
    if "execute_run" in cmdline or "api execute" in cmdline or "multiprocessing" in cmdline:
        return "run workers"
    return "other"


ROLES = ("run workers", "code servers", "daemon")


# --- Instances -------------------------------------------------------------------------------------


@dataclass
class Postgres:
    """A PostgreSQL server of the benchmark's own, on loopback, with one database per instance."""

    bin_dir: Path
    base: Path
    port: int
    databases: int = 0

    @classmethod
    def start(cls) -> Postgres:
        """Start a cluster in a folder of its own, which the `postgres` user can reach when run as root."""
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
        if not found:
            raise SystemExit("--storage postgres: no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)")
        base = Path(tempfile.mkdtemp(prefix="bench-postgres-"))
        server = cls(found[-1].parent, base, _free_port())
        (base / "password").write_text("bench\n")
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to Debian's `postgres` user
            shutil.chown(base, "postgres")
            shutil.chown(base / "password", "postgres")
        server._run(
            "initdb",
            "-D",
            str(base / "data"),
            "-U",
            "dagster",
            f"--pwfile={base / 'password'}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        # The settings of a small deployment; fsync stays on, as in production.
        options = f"-p {server.port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=300"
        server._run("pg_ctl", "-D", str(base / "data"), "-o", options, "-l", str(base / "log"), "-w", "start")
        return server

    def _run(self, program: str, *args: str) -> None:
        as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_owner, str(self.bin_dir / program), *args], check=True, capture_output=True, timeout=300)

    def new_database(self) -> dict[str, str]:
        """A fresh database; the environment deploy/dagster.postgres.yaml reads its connection from."""
        import psycopg2

        self.databases += 1
        name = f"instance{self.databases}"
        admin = psycopg2.connect(host="127.0.0.1", port=self.port, user="dagster", password="bench", dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        admin.close()
        return {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": "dagster",
            "DAGSTER_PG_PASSWORD": "bench",
            "DAGSTER_PG_DB": name,
        }

    def rows(self, database: str) -> dict[str, int]:
        """Rows per table of `database`, the largest first."""
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="dagster", password="bench", dbname=database)
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT relname, n_live_tup FROM pg_stat_user_tables ORDER BY n_live_tup DESC")
            found = dict(cursor.fetchall())
        connection.close()
        return found

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.base / "data"), "-m", "fast", "stop")
        shutil.rmtree(self.base, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """Stop the process group of `process`: SIGTERM, then SIGKILL after a minute."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)


def _wait_for_port(port: int, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"no code server on port {port} after {seconds:g} s")


class Platform:
    """A fresh instance and data root, closed in this process or driven by the real daemon."""

    def __init__(self, workdir: Path, server: StooqServer, postgres: Postgres | None = None, **env: str) -> None:
        self.workdir = workdir
        self.home, self.lake = workdir / "dagster_home", workdir / "lake"
        self.home.mkdir(parents=True)
        instance_yaml = PROJECT_ROOT / ("deploy/dagster.postgres.yaml" if postgres else "dagster.yaml")
        shutil.copy(instance_yaml, self.home / "dagster.yaml")
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "MARKET_ASSETS_DATA_ROOT": str(self.lake),
            "STOOQ_BASE_URL": server.url,
            "MARKET_ASSETS_CATCH_UP_SESSIONS": "1",
            **(postgres.new_database() if postgres else {}),
            **env,
        }

    def copy(self, workdir: Path, **env: str) -> Platform:
        """The same instance and lake in `workdir` (sqlite only): the lake's files hard-linked, as the
        store replaces a file rather than change it, the instance copied."""
        other = object.__new__(Platform)
        other.workdir, other.home, other.lake = workdir, workdir / "dagster_home", workdir / "lake"
        workdir.mkdir(parents=True)
        shutil.copytree(self.home, other.home)
        subprocess.run(["cp", "-al", str(self.lake), str(other.lake)], check=True)
        other.env = {**self.env, "DAGSTER_HOME": str(other.home), "MARKET_ASSETS_DATA_ROOT": str(other.lake), **env}
        return other

    def instance(self):
        import dagster as dg

        os.environ.update({k: v for k, v in self.env.items() if k.startswith(("DAGSTER_", "MARKET_ASSETS_", "STOOQ_"))})
        return dg.DagsterInstance.get()

    def close_in_process(self, index: str, session: pd.Timestamp) -> None:
        from market_assets.cli.close import close_index

        with self.instance() as instance:
            close_index(instance, index, f"{session:%Y-%m-%d}")

    def close_by_plan(self, session: pd.Timestamp | None = None) -> dict[str, object]:
        """The README's CI path: `plan | sh`, twice, with the `dagster` of this interpreter (for
        `session`, by default each exchange's latest). Timed from the first command to the last
        file written and to the end of the second `plan`."""
        env = {**self.env, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        started, scripts = time.time(), []
        sessions = [] if session is None else ["--session", f"{session:%Y-%m-%d}"]
        for _ in range(2):
            script = subprocess.run(
                [sys.executable, "-m", "market_assets", "plan", *sessions],
                env=env,
                cwd=self.home,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            scripts.append([line[2:] for line in script.splitlines() if line.startswith("# ")])
            executed = subprocess.run(["sh"], input=script, env=env, cwd=self.home, capture_output=True, text=True)
            if executed.returncode != 0:
                causes = [line for line in executed.stderr.splitlines() if "Error" in line and not line.startswith(" ")]
                raise RuntimeError("plan | sh failed:\n" + "\n".join(causes[-20:]) + executed.stderr[-2000:])
        ended = time.time()
        return {"seconds": self.last_file() - started, "to_the_end": ended - started, "plans": scripts}

    def last_file(self) -> float:
        """When the last bars file was written."""
        return max(
            path.stat().st_mtime
            for name in ("daily", "weekly", "monthly")
            for path in (self.lake / f"{name}_bars").rglob("*.parquet")
        )

    def close_by_schedule(self, expected: int, exchanges: tuple[str, ...]) -> Close:
        """Publish the exchanges' latest sessions a minute after the daemon starts; wait until
        `expected` monthly partitions of the session are stored and no run is in flight."""
        from market_assets.domain.close_timing import lead
        from market_assets.settings import head_start

        now = pd.Timestamp.now(tz="UTC")
        tick = (now + lead(head_start()) + pd.Timedelta(seconds=40)).ceil("min")
        delays = []
        for code in exchanges:
            close = calendar(code).session_close(latest_closed_session(code, now))
            delays.append(f"{code}={math.ceil((tick - close) / pd.Timedelta(minutes=1))}")
        env = {**self.env, "MARKET_ASSETS_CLOSE_DELAY_MINUTES": ",".join(delays)}
        with self.instance() as instance:  # (creating the storage in two processes at once can corrupt it)
            earlier = {record.dagster_run.run_id for record in instance.get_run_records()}
        # The code location served by a code server of its own, as a deployment (and `dagster dev`)
        # serves it: a daemon given the module instead starts its own and replaces it every minute.
        port = _free_port()
        server = subprocess.Popen(
            [str(BIN / "dagster"), "code-server", "start", "-m", "market_assets", "-h", "127.0.0.1", "-p", str(port)],
            env=env,
            cwd=self.home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_for_port(port)
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "--grpc-host", "127.0.0.1", "--grpc-port", str(port)],
            env=env,
            cwd=self.home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        usage = ProcessUsage(daemon.pid, server.pid)
        try:
            with self.instance() as instance:
                runs = _wait_for_close(instance, expected, exchanges, earlier, tick, usage.mark)
                events = _event_counts(instance, [run.dagster_run.run_id for run in runs])
        finally:
            for process in (daemon, server):
                _stop(process)
            usage.stop()
        publication = tick.timestamp()
        return Close(
            seconds=self.last_file() - publication,
            to_the_end=max(run.end_time for run in runs) - publication,
            runs=len(runs),
            first_start=min(run.start_time for run in runs) - publication,
            peak_mib=usage.peak_kib / 1024,
            peak_process=usage.peak_name,
            cpu=usage.cpu_by_role(since_mark=True),
            cpu_since_start=usage.cpu_by_role(),
            events=events,
        )


@dataclass
class Close:
    """One close through the daemon, timed from the publication."""

    seconds: float
    """To the last file written."""
    to_the_end: float
    """To the end of the last run."""
    runs: int
    first_start: float
    peak_mib: float
    peak_process: str
    cpu: dict[str, tuple[int, float]]
    """CPU seconds by role from the publication on."""
    cpu_since_start: dict[str, tuple[int, float]]
    events: dict[str, int] = field(default_factory=dict)

    def cpu_of(self, role: str) -> float:
        return self.cpu.get(role, (0, 0.0))[1]


def _wait_for_close(instance, expected: int, exchanges: tuple[str, ...], earlier: set[str], tick: pd.Timestamp, on_tick):
    """The runs of the close, once (at most 60 minutes after `tick`) `expected` monthly partitions
    of the exchanges' sessions are stored and no new run is unfinished; `on_tick` is called when
    `tick` comes."""
    import dagster as dg

    from market_assets.defs.bars.keys import bars_asset_key
    from market_assets.lake.datasets import MONTHLY_BARS

    sessions = {code: f"{latest_closed_session(code, tick):%Y-%m-%d}" for code in exchanges}
    deadline = tick + pd.Timedelta(minutes=60)
    while pd.Timestamp.now(tz="UTC") < deadline:
        if on_tick is not None and pd.Timestamp.now(tz="UTC") >= tick:
            on_tick()
            on_tick = None
        if on_tick is None:
            records = [r for r in instance.get_run_records() if r.dagster_run.run_id not in earlier]
            failed = [r for r in records if r.dagster_run.status == dg.DagsterRunStatus.FAILURE]
            if failed:
                run = failed[0].dagster_run
                errors = [
                    entry.dagster_event.event_specific_data.error.message
                    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
                ]
                raise RuntimeError(f"run {run.run_id} ({run.job_name}) failed: {' / '.join(errors) or 'see its events'}")
            if records and all(r.dagster_run.is_finished for r in records):
                stored = sum(
                    sum(
                        1
                        for key in instance.get_materialized_partitions(bars_asset_key(code, MONTHLY_BARS))
                        if key.startswith(sessions[code])
                    )
                    for code in exchanges
                )
                if stored >= expected:
                    return [r for r in records if r.dagster_run.job_name != "refresh_membership"]
        time.sleep(0.05 if on_tick is not None else 1.0)
    raise TimeoutError("the close did not finish in 60 minutes")


def _event_counts(instance, run_ids: list[str]) -> dict[str, int]:
    """Events the close's runs stored, by type."""
    counts: dict[str, int] = {}
    for run_id in run_ids:
        for record in instance.get_records_for_run(run_id, limit=1_000_000).records:
            kind = record.event_log_entry.dagster_event_type
            name = kind.value if kind is not None else "LOG"
            counts[name] = counts.get(name, 0) + 1
    return counts


# --- The work alone --------------------------------------------------------------------------------


def work_alone(
    server: StooqServer, symbols: list[str], session: pd.Timestamp, previous: ParquetStore | None, workdir: Path
) -> float:
    """CPU seconds per symbol of the work alone, on an even sample of `symbols`, in a fresh
    process as a run worker is (this one holds the server's renderings, whose size would slow
    its garbage collection down): each symbol's bars fetched from `server` with a plain `requests`
    session (from the fifth-last stored bar of its snapshot in `previous`, or the whole history
    when `previous` is None), parsed, appended to that snapshot, resampled into weeks and months
    and written as three files by the lake's code, one after the other, with no Dagster. The
    thread's own CPU is counted, not the server's, which answers in this process."""
    sample = symbols[:: max(1, len(symbols) // WORK_SAMPLE)]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as child:
        seconds = child.submit(
            _plain_loop, server.url, sample, session, previous.root if previous else None, str(workdir)
        ).result()
    shutil.rmtree(workdir, ignore_errors=True)
    return seconds / len(sample)


def _plain_loop(url: str, symbols: list[str], session: pd.Timestamp, previous_root: str | None, workdir: str) -> float:
    """The work alone of `work_alone`, in the process that calls it; its CPU seconds."""
    day = f"{session:%Y-%m-%d}"
    before = f"{calendar('XNYS').previous_session(session):%Y-%m-%d}"
    previous = ParquetStore(previous_root) if previous_root else None
    store = ParquetStore(workdir)
    started = time.thread_time()
    with requests.Session() as http:
        for symbol in symbols:
            code = exchange_of(symbol)
            address = f"{url}/q/d/l/?s={symbol.lower()}&i=d"
            stored = previous.read("daily_bars", f"{before}|{symbol}") if previous is not None else None
            if stored is not None:
                address += f"&d1={overlap_start(stored):%Y%m%d}"
            bars = parse_history_csv(http.get(address, timeout=60).text, symbol, address)
            bars = snapshot(bars, session)
            daily = bars if stored is None else extend(stored, bars, overlap_start(stored))
            key = f"{day}|{symbol}"
            store.write("daily_bars", key, with_symbol(daily, symbol))
            for period in ("week", "month"):
                store.write(f"{period}ly_bars", key, with_symbol(resample(daily, period, session, code), symbol))
    return time.thread_time() - started


def baseline(server: StooqServer, workdir: Path) -> tuple[float, int]:
    """The old flow: everything one after the other, with plain pandas."""
    store = workdir / "baseline"
    session = requests.Session()
    started, symbols = time.perf_counter(), 0
    for name, index in followed_indices().items():
        url = f"{server.url}/t/?i={index.stooq_id}"
        first, pages = parse_composition_page(session.get(url, timeout=30).text, name, url)
        frames = [first] + [
            parse_composition_page(session.get(f"{url}&l={page}", timeout=30).text, name, url)[0] for page in pages if page != 1
        ]
        for symbol in pd.concat(frames)["symbol"]:
            url = f"{server.url}/q/d/l/?s={symbol.lower()}&i=d"
            daily = pd.read_csv(pd.io.common.StringIO(session.get(url, timeout=30).text), parse_dates=["Date"])
            daily = daily.set_index("Date")
            folder = store / name
            folder.mkdir(parents=True, exist_ok=True)
            daily.to_parquet(folder / f"{symbol}.daily.parquet")
            for rule, label in (("W-SUN", "weekly"), ("ME", "monthly")):
                bars = (
                    daily.resample(rule)
                    .agg({"Open": "first", "High": "max", "Low": "min", "Close": "last", "Volume": "sum"})
                    .dropna(subset=["Close"])
                )
                bars.to_parquet(folder / f"{symbol}.{label}.parquet")
            symbols += 1
    return time.perf_counter() - started, symbols


# --- Reporting -------------------------------------------------------------------------------------


def target(name: str, value: float, limit: float, unit: str = "", digits: int = 3) -> None:
    """One target's line: `name: value (target <= limit) met` or `NOT MET`."""
    verdict = "met" if value <= limit else "NOT MET"
    print(f"{name}: {value:.{digits}f}{unit} (target <= {limit:g}{unit}) {verdict}", flush=True)


def report_close(label: str, close: Close, symbols: int, work: float) -> float:
    """The lines of one close through the daemon; returns everything's CPU per symbol / the work's."""
    per_symbol = {role: close.cpu_of(role) / symbols for role in ROLES}
    total = sum(per_symbol.values())
    print(
        f"{label}: {close.seconds:.1f} s from the publication to the last file ({close.to_the_end:.1f} s to the "
        f"end of the last run), {close.seconds / symbols * 100:.2f} s per 100 symbols, {close.runs} runs "
        f"(the first started {-close.first_start:.1f} s before the publication), peak {close.peak_mib:.0f} MiB "
        f"({close.peak_process.strip()})",
        flush=True,
    )
    print(
        "    CPU per symbol from the publication on: "
        + ", ".join(f"{role} {1000 * per_symbol[role]:.1f} ms" for role in ROLES)
        + f"; together {1000 * total:.1f} ms; the work alone {1000 * work:.1f} ms; ratio {total / work:.2f}",
        flush=True,
    )
    print(
        "    CPU seconds by process from its start: "
        + ", ".join(f"{role} {cpu:.1f} ({count} processes)" for role, (count, cpu) in sorted(close.cpu_since_start.items())),
        flush=True,
    )
    print(
        "    events stored by the close's runs: "
        + ", ".join(f"{kind} {count}" for kind, count in sorted(close.events.items(), key=lambda item: -item[1])),
        flush=True,
    )
    return total / work


def downloaded(stats: dict) -> int:
    """Bytes the server answered on the routes a close downloads from."""
    return sum(stats["bytes_by_route"].get(route, 0) for route in DOWNLOADED_ROUTES)


# --- A whole market --------------------------------------------------------------------------------


def market_indices_file(workdir: Path) -> Path:
    """An indices file following `US_MARKET` of bench/indices.yaml alone."""
    entries = [entry for entry in yaml.safe_load(BENCH_INDICES.read_text())["indices"] if entry["name"] == MARKET]
    path = workdir / "indices.yaml"
    path.write_text(yaml.safe_dump({"indices": entries}))
    return path


def saved_files(server: StooqServer, folder: Path, symbols: list[str], session: pd.Timestamp) -> Path:
    """What a user saves from stooq.com for the files source: the market's bulk archive as of
    `session` and the index's composition page."""
    folder.mkdir(parents=True)
    served = server.store
    write_bulk_archive(folder / "d_us_txt.zip", {symbol: served.history(symbol, session) for symbol in symbols})
    url = f"{server.url}/t/?i={followed_indices()[MARKET].stooq_id}"
    to_save, saved = {1}, set()
    while to_save - saved:  # every page the saved ones link to, as a user saves them
        page = min(to_save - saved)
        text = requests.get(url if page == 1 else f"{url}&l={page}", timeout=600).text
        (folder / (f"{MARKET.lower()}.html" if page == 1 else f"{MARKET.lower()}_{page}.html")).write_text(text)
        saved.add(page)
        to_save.update(int(linked) for linked in re.findall(r"/t/\?i=\d+&l=(\d+)", text))
    return folder


def market(size: int, args: argparse.Namespace, work: Path, postgres: Postgres | None) -> dict[str, float]:
    """The closes of a whole market of `size` members; returns seconds per 100 symbols and the CPU
    ratio by mode."""
    scale = work / f"market-{size}"
    scale.mkdir()
    os.environ["MARKET_ASSETS_INDICES_FILE"] = str(market_indices_file(scale))
    started = time.perf_counter()
    universe = generate_synthetic(scale / "stooq", sizes={MARKET: size})
    session = universe.last_session["XNYS"]
    previous = calendar("XNYS").previous_session(session)
    symbols = universe.members(MARKET)
    print(
        f"\nUS_MARKET of {len(symbols):,} symbols on XNYS, session {session:%Y-%m-%d} "
        f"(generated in {time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    results: dict[str, float] = {}
    with StooqServer(universe.data_dir) as server:
        modes = args.modes.split(",")
        steady = Platform(scale / "steady", server, postgres)
        started = time.perf_counter()
        steady.close_by_plan(previous)  # the previous session, without latency
        print(f"the previous session stored in {time.perf_counter() - started:.0f} s", flush=True)
        files = steady.copy(scale / "files") if "files" in modes and postgres is None else None
        latency = args.latency_ms / 1000
        pure = len(symbols) * latency / 6
        if "steady" in modes:
            server.latency = latency
            server.reset_stats()
            close = steady.close_by_schedule(len(symbols), ("XNYS",))
            stats = server.stats()
            server.latency = 0.0
            cost = work_alone(server, symbols, session, ParquetStore(str(steady.lake)), scale / "work")
            results["steady"] = report_close("steady state", close, len(symbols), cost)
            results["steady_per_100"] = close.seconds / len(symbols) * 100
            print(
                f"    downloaded {downloaded(stats):,} bytes in {stats['total']} requests; the pure request time {pure:.0f} s",
                flush=True,
            )
            target(f"US_MARKET {size}: steady state, publication to the last file / pure request time", close.seconds / pure, 1.3)
            target(f"US_MARKET {size}: steady state, everything's CPU per symbol / the work alone's", results["steady"], 2.0)
            target(f"US_MARKET {size}: peak memory of any process", close.peak_mib, 1024, " MiB", digits=0)
            if postgres is not None:
                rows = postgres.rows(steady.env["DAGSTER_PG_DB"])
                print("    PostgreSQL rows: " + ", ".join(f"{table} {count:,}" for table, count in list(rows.items())[:8]))
        if "scratch" in modes:
            server.latency = latency
            server.reset_stats()
            fresh = Platform(scale / "scratch", server, postgres)
            close = fresh.close_by_schedule(len(symbols), ("XNYS",))
            stats = server.stats()
            server.latency = 0.0
            cost = work_alone(server, symbols, session, None, scale / "work")
            results["scratch"] = report_close("from scratch", close, len(symbols), cost)
            print(f"    downloaded {downloaded(stats):,} bytes in {stats['total']} requests", flush=True)
            shutil.rmtree(fresh.workdir, ignore_errors=True)
        if files is not None:
            started = time.perf_counter()
            server.latency = 0.0
            folder = saved_files(server, scale / "saved", symbols, session)
            print(
                f"the bulk archive of {len(symbols):,} histories, {(folder / 'd_us_txt.zip').stat().st_size / 2**20:.0f} MiB, "
                f"written in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            files.env.update({"MARKET_ASSETS_SOURCE": "files", "MARKET_ASSETS_FILES": str(folder)})
            close = files.close_by_schedule(len(symbols), ("XNYS",))
            cost = work_alone(server, symbols, session, None, scale / "work")
            results["files"] = report_close("files source, steady state", close, len(symbols), cost)
    shutil.rmtree(scale, ignore_errors=True)
    return results


# --- The three indices -----------------------------------------------------------------------------


def three_indices(args: argparse.Namespace, work: Path, postgres: Postgres | None) -> None:
    """DJI, NDX and HSI: the daemon path and the CI path against the old loop."""
    os.environ.pop("MARKET_ASSETS_INDICES_FILE", None)
    latency = args.latency_ms / 1000
    universe = generate_synthetic(work / "stooq")
    sessions = {code: latest_closed_session(code) for code in ("XNYS", "XHKG")}
    symbols = sorted({s for name, index in followed_indices().items() for s in universe.members(name, sessions[index.calendar])})
    with StooqServer(universe.data_dir, latency=latency) as server:
        base_seconds, base_symbols = baseline(server, work)
        platform = Platform(work / "platform", server, postgres)
        server.reset_stats()
        _previous_sessions_loaded(platform)
        scratch_bytes = downloaded(server.stats())
        server.reset_stats()
        close = platform.close_by_schedule(len(symbols), ("XNYS", "XHKG"))
        stats = server.stats()
        ci_scratch = Platform(work / "ci-scratch", server, postgres).close_by_plan()
        ci_platform = Platform(work / "ci", server, postgres)
        _previous_sessions_loaded(ci_platform)
        server.reset_stats()
        ci = ci_platform.close_by_plan()
        ci_bytes = downloaded(server.stats())
        extra = rerun_and_failures(platform, server, args.failures)
    requests_made = stats["total"]
    network = requests_made * latency / 6
    print(
        f"\nDJI, NDX, HSI: {len(symbols)} symbols, {requests_made} requests, latency {args.latency_ms:.0f} ms, "
        f"pool '{POOL}' = 6 requests in flight (the server saw at most {stats['peak_in_flight']})"
    )
    print(f"(1) the old flow's sequential loop: {base_seconds:.1f} s ({base_symbols} symbol downloads)")
    print(
        f"(2) the daemon path, publication to the last file: {close.seconds:.1f} s ({close.runs} runs; the first "
        f"started {-close.first_start:.1f} s before the publication)"
    )
    print(f"(3) the pure request time: {requests_made} x {latency:.3f} s / 6 = {network:.1f} s")
    print(
        f"(4) the CI path, plan | sh twice, from scratch: {ci_scratch['seconds']:.1f} s to the last file, "
        f"{ci_scratch['to_the_end']:.1f} s to the end of the second plan"
    )
    print(
        f"(5) the CI path, plan | sh twice, steady state: {ci['seconds']:.1f} s to the last file, "
        f"{ci['to_the_end']:.1f} s to the end of the second plan"
    )
    for number, lines in enumerate(ci["plans"], 1):
        print(f"    steady plan {number}: " + "; ".join(lines))
    print("    CPU seconds from the publication on: " + ", ".join(f"{role} {close.cpu_of(role):.1f}" for role in ROLES))
    print(f"    peak memory {close.peak_mib:.0f} MiB ({close.peak_process.strip()})")
    print(
        f"bytes downloaded per close: from scratch {scratch_bytes:,}, steady state {downloaded(stats):,} "
        f"(daemon), {ci_bytes:,} (CI)"
    )
    print(f"re-run of the stored session: {extra['rerun_seconds']:.1f} s, {extra['rerun_requests']} requests")
    print(
        f"{args.failures} symbols failed ({extra['victims']}); the re-run downloaded "
        f"{extra['failed_rerun_downloads']} ({extra['failed_rerun_symbols']})"
    )
    target("three indices: daemon path / old loop, (2)/(1)", close.seconds / base_seconds, 0.15)
    target("three indices: daemon path / pure request time, (2)/(3)", close.seconds / network, 1.3)
    target("three indices: CI path from scratch / old loop, (4)/(1)", ci_scratch["seconds"] / base_seconds, 0.3)
    target("three indices: CI path steady state / old loop, (5)/(1)", ci["seconds"] / base_seconds, 0.3)
    target("three indices: steady-state close bytes / from-scratch bytes (daemon)", downloaded(stats) / scratch_bytes, 0.05)
    target("three indices: re-run of the stored session, requests", extra["rerun_requests"], 0, digits=0)
    target(
        f"three indices: {args.failures} failed symbols, re-run downloads",
        extra["failed_rerun_downloads"],
        args.failures,
        digits=0,
    )


def _previous_sessions_loaded(platform: Platform) -> None:
    """The steady state of a daily close: each index's previous session stored."""
    for name, index in followed_indices().items():
        platform.close_in_process(name, calendar(index.calendar).previous_session(latest_closed_session(index.calendar)))


def rerun_and_failures(platform: Platform, server: StooqServer, k: int) -> dict[str, object]:
    """Re-run the stored session, then fail k symbols of an earlier HSI session and re-run it."""
    from market_assets.cli.close import CloseFailed, close_index

    out: dict[str, object] = {}
    with platform.instance() as instance:
        server.reset_stats()
        started = time.perf_counter()
        for index in followed_indices():
            close_index(instance, index)
        out["rerun_seconds"] = time.perf_counter() - started
        out["rerun_requests"] = server.stats()["total"]
        hkex = calendar("XHKG")  # a session not stored yet: two before the latest
        session = hkex.previous_session(hkex.previous_session(latest_closed_session("XHKG")))
        store = ParquetStore(str(platform.lake))
        keys = sorted(key for key in store.partition_keys("index_composition") if key.endswith("|HSI"))
        victims = tuple(sorted(store.read("index_composition", keys[-1])["symbol"])[:k])
        server.set_faults([Fault(FaultKind.NO_DATA, symbols=victims)])
        try:
            close_index(instance, "HSI", f"{session:%Y-%m-%d}")
        except CloseFailed:
            pass
        server.clear_faults()
        server.reset_stats()
        close_index(instance, "HSI", f"{session:%Y-%m-%d}")
        out["failed_rerun_downloads"] = server.stats()["by_route"]["download"]
        out["failed_rerun_symbols"] = ",".join(sorted(server.stats()["by_symbol"]))
        out["victims"] = ",".join(victims)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument(
        "--sizes", default=None, help="members of US_MARKET, comma-separated (default 1000,10000); empty for none"
    )
    parser.add_argument("--modes", default="steady,scratch,files", help="closes of US_MARKET: steady, scratch, files")
    parser.add_argument("--indices", action="store_true", help="the three indices (on by default when --sizes is not given)")
    parser.add_argument("--storage", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--failures", type=int, default=3, help="k symbols failed, then re-run")
    args = parser.parse_args()
    sizes = [int(size) for size in (args.sizes if args.sizes is not None else "1000,10000").split(",") if size.strip()]
    work = Path(tempfile.mkdtemp(prefix="bench-close-"))
    print(f"work folder: {work}; instance: {args.storage}", flush=True)
    postgres = Postgres.start() if args.storage == "postgres" else None
    try:
        if args.indices or args.sizes is None:
            three_indices(args, work / "indices", postgres)
        per_100 = {}
        for size in sizes:
            results = market(size, args, work, postgres)
            if "steady_per_100" in results:
                per_100[size] = results["steady_per_100"]
        if len(per_100) > 1:
            small, large = min(per_100), max(per_100)
            target(
                f"US_MARKET: steady state, seconds per 100 symbols at {large:,} / at {small:,}",
                per_100[large] / per_100[small],
                1.0,
            )
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
