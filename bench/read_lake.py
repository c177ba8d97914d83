"""How fast does the lake's reader read snapshots, against reading the same files with pandas, and
against ArcticDB keeping every session's version?

    .venv/bin/python bench/read_lake.py [--sessions 20] [--repeat 5] [--only pandas|arcticdb]

Writes a synthetic lake into a temporary folder: 210 symbols (DJI 30 and NDX 100 sharing 10 on
XNYS, HSI 90 on XHKG), each with a daily snapshot for each of its exchange's last `--sessions`
sessions, through the lake's own code (the files a close writes). Then, `--repeat` times, in
alternation:

- newest: `LakeReader.bars("daily")`, every symbol's newest snapshot, against `pandas.read_parquet`
  of the same files, one by one, concatenated;
- as of: `LakeReader.bars("daily", as_of=...)` of the middle session, against pandas reading the
  files that read returned.

pandas is given the file list; the reader finds it from the session folders. It prints the
median seconds of each and the ratios (target: each <= 1.5), then removes the folder.

Against ArcticDB: the data set of `as_of_dataset.py` (40 symbols x 120 sessions, 20 adjustments)
is loaded into the lake (each snapshot with its fetch record, then compacted) and, by
`arcticdb_reads.py` in ArcticDB's own interpreter (`.venv-arcticdb`, made on first use from
`bench/arcticdb-requirements.txt`: ArcticDB needs pandas < 3), into an LMDB library with one
version per session. Both then time the same reads of one symbol and of all 40, newest, as of the
middle session and as known at an instant, from the OS cache. It prints both stores' sizes, the
median milliseconds side by side, and the lake's against the targets (one symbol <= 2 ms, the
40-symbol panel <= 30 ms).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from as_of_dataset import write_dataset  # noqa: E402

from market_assets.domain.candles import snapshot, with_symbol  # noqa: E402
from market_assets.domain.exchange_sessions import calendar, latest_closed_session  # noqa: E402
from market_assets.lake.compaction import compact  # noqa: E402
from market_assets.lake.fetch_record import FetchRecord  # noqa: E402
from market_assets.lake.reader import LakeReader  # noqa: E402
from market_assets.lake.store import ParquetStore  # noqa: E402
from market_assets.sources.indices import exchange_of  # noqa: E402
from market_assets.sources.parsing import parse_history_csv  # noqa: E402
from stooq_server import generate_synthetic  # noqa: E402

SIZES = {"DJI": 30, "NDX": 100, "HSI": 90}
ARCTICDB_VENV = PROJECT_ROOT / ".venv-arcticdb"
TARGETS = {"one symbol": 0.002, "40-symbol panel": 0.030}


def write_lake(workdir: Path, sessions: int) -> tuple[ParquetStore, str]:
    """The lake of `sessions` closes of every symbol; returns it and the middle XNYS session."""
    universe = generate_synthetic(workdir / "stooq", first_session="2006-01-03", sizes=SIZES)
    store = ParquetStore(str(workdir / "lake"))
    symbols = sorted(
        {
            symbol
            for index in SIZES
            for symbol in universe.members(index, universe.last_session["XNYS" if index != "HSI" else "XHKG"])
        }
    )
    days = {
        code: calendar(code).sessions_window(pd.Timestamp(latest_closed_session(code)), -sessions) for code in ("XNYS", "XHKG")
    }
    for symbol in symbols:
        daily = parse_history_csv((universe.data_dir / "d" / f"{symbol.lower()}.csv").read_text(), symbol, "file")
        for day in days[exchange_of(symbol)]:
            frame = snapshot(daily, day)
            if len(frame):
                store.write("daily_bars", f"{day:%Y-%m-%d}|{symbol}", with_symbol(frame, symbol))
    return store, f"{days['XNYS'][sessions // 2]:%Y-%m-%d}"


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def pandas_read(store: ParquetStore, chosen: dict[str, str]) -> pd.DataFrame:
    return pd.concat(
        [pd.read_parquet(store.file("daily_bars", f"{session}|{symbol}")) for symbol, session in chosen.items()],
        ignore_index=True,
    )


def against_pandas(sessions: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="read-lake-") as folder:
        started = time.perf_counter()
        store, middle = write_lake(Path(folder), sessions)
        reader = LakeReader(store)
        newest = reader.snapshots("daily")
        as_of = reader.snapshots("daily", as_of=middle)
        files = sum(len(store.stored_names("daily_bars", s)) for s in store.stored_sessions("daily_bars"))
        print(f"lake: {len(newest)} symbols, {files} daily snapshots, written in {time.perf_counter() - started:.1f} s")
        times: dict[str, list[float]] = {"newest": [], "newest pandas": [], "as of": [], "as of pandas": []}
        for _ in range(repeat):
            seconds, ours = timed(lambda: reader.bars("daily"))
            times["newest"].append(seconds)
            seconds, theirs = timed(lambda: pandas_read(store, newest))
            times["newest pandas"].append(seconds)
            assert len(ours) == len(theirs)
            seconds, ours = timed(lambda: reader.bars("daily", as_of=middle))
            times["as of"].append(seconds)
            seconds, theirs = timed(lambda: pandas_read(store, as_of))
            times["as of pandas"].append(seconds)
            assert len(ours) == len(theirs)
        median = {name: statistics.median(values) for name, values in times.items()}
        rows = len(reader.bars("daily"))
        print(
            f"newest snapshot of every symbol ({rows:,} rows): reader {median['newest']:.3f} s, "
            f"pandas {median['newest pandas']:.3f} s, ratio {median['newest'] / median['newest pandas']:.2f} "
            "(target <= 1.5)"
        )
        print(
            f"as of {middle}: reader {median['as of']:.3f} s, pandas {median['as of pandas']:.3f} s, "
            f"ratio {median['as of'] / median['as of pandas']:.2f} (target <= 1.5)"
        )


def arcticdb_python() -> Path:
    """ArcticDB's interpreter, its environment made on first use."""
    python = ARCTICDB_VENV / "bin" / "python"
    if not python.exists():
        print(f"making {ARCTICDB_VENV} for ArcticDB (once)")
        subprocess.run([sys.executable, "-m", "venv", str(ARCTICDB_VENV)], check=True)
        requirements = PROJECT_ROOT / "bench" / "arcticdb-requirements.txt"
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True)
    return python


def lake_reads(root: str, info: dict, known_at: pd.Timestamp, repeat: int) -> dict[str, float]:
    """The median seconds of the reads `arcticdb_reads.py` times, by the lake's reader at `root`."""
    reader = LakeReader(root)
    symbols, middle = info["symbols"], info["sessions"][len(info["sessions"]) // 2]
    one = [symbols[7]]
    reads = {
        "one symbol, newest": lambda: reader.bars("daily", one),
        "one symbol, as of a session": lambda: reader.bars("daily", one, as_of=middle),
        "one symbol, as known at an instant": lambda: reader.bars("daily", one, known_at=known_at),
        "40-symbol panel, newest": lambda: reader.bars("daily", symbols),
        "40-symbol panel, as of a session": lambda: reader.bars("daily", symbols, as_of=middle),
        "40-symbol panel, as known at an instant": lambda: reader.bars("daily", symbols, known_at=known_at),
    }
    seconds = {}
    for name, read in reads.items():
        read()
        seconds[name] = statistics.median(timed(read)[0] for _ in range(repeat))
    return seconds


def against_arcticdb(repeat: int) -> None:
    python = arcticdb_python()
    with tempfile.TemporaryDirectory(prefix="read-lake-arcticdb-") as folder:
        work = Path(folder)
        universe = generate_synthetic(work / "stooq", first_session="2006-01-03", sizes={"DJI": 30, "NDX": 20, "HSI": 1})
        exchange = calendar("XNYS")
        sessions = list(exchange.sessions_window(universe.last_session["XNYS"], -120))
        dataset = work / "dataset"
        info = write_dataset(universe.data_dir / "d", sessions, [exchange.session_close(day) for day in sessions], dataset)
        (dataset / "info.json").write_text(json.dumps(info))
        fetched = json.loads((dataset / "fetched_at.json").read_text())
        store = ParquetStore(str(work / "lake"))
        for session in info["sessions"]:
            record = FetchRecord(pd.Timestamp(fetched[session]), pd.Timestamp(session))
            for path in sorted((dataset / session).glob("*.parquet")):
                frame = with_symbol(pd.read_parquet(path), path.stem)
                store.write("daily_bars", f"{session}|{path.stem}", frame, fetched=record)
        files = shutil.copytree(work / "lake", work / "lake-files")
        compact(store)
        middle = info["sessions"][len(info["sessions"]) // 2]
        known_at = pd.Timestamp(fetched[middle]) + pd.Timedelta(minutes=1)
        print(
            f"data set: {len(info['symbols'])} symbols x {len(info['sessions'])} sessions, "
            f"{info['events']} adjustments; the lake compacted: {_mib(work / 'lake')}, before: {_mib(files)}"
        )
        lmdb = work / "lmdb"
        lmdb.mkdir()
        answer = subprocess.run(
            [str(python), str(PROJECT_ROOT / "bench" / "arcticdb_reads.py"), str(dataset), str(lmdb), str(repeat)],
            check=True,
            capture_output=True,
            text=True,
        )
        arctic = json.loads(answer.stdout.strip().splitlines()[-1])
        print(f"ArcticDB (LMDB, a version per session, a snapshot per session): {arctic['bytes'] / 2**20:.1f} MiB")
        compacted = lake_reads(str(work / "lake"), info, known_at, repeat)
        uncompacted = lake_reads(str(files), info, known_at, repeat)
        print(f"{'median ms':40s} {'ArcticDB':>9s} {'lake':>9s} {'lake, files':>12s}  target")
        for name, seconds in compacted.items():
            target = next(value for key, value in TARGETS.items() if name.startswith(key))
            verdict = "met" if seconds <= target else "NOT MET"
            print(
                f"{name:40s} {arctic['seconds'][name] * 1e3:9.2f} {seconds * 1e3:9.2f} "
                f"{uncompacted[name] * 1e3:12.2f}  <= {target * 1e3:.0f} ms {verdict}"
            )


def _mib(folder: Path) -> str:
    return f"{sum(path.stat().st_size for path in folder.rglob('*') if path.is_file()) / 2**20:.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=["pandas", "arcticdb"])
    args = parser.parse_args()
    if args.only != "arcticdb":
        against_pandas(args.sessions, args.repeat)
    if args.only != "pandas":
        against_arcticdb(max(args.repeat, 20))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
