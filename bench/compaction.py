"""How small does compaction keep a year of the lake, does every snapshot still read back as
written, and what does it cost a close?

    .venv/bin/python bench/compaction.py [--sessions 252] [--symbols 210] [--closes 3]

Generates a synthetic universe with quarterly dividends on a quarter of its stocks and a few
splits, then writes a lake as the closes of its last `--sessions` sessions would, the serving
date advancing session by session: for every symbol and session, the daily history the project's
Stooq-compatible server answers for that serving date (its own rendered CSV), parsed as a close
parses it, and the daily, weekly and monthly snapshots written through the lake's own code
(`ParquetStore.write`, `resample`, `with_symbol`: the files a close writes). A history is parsed
once per set of adjustments the server has applied and cut at each serving date; the first
serving date of each set is also parsed whole, and the bench stops if the two differ. Then:

- the size of the bars files before and after `compact` (target: after <= 3 % of before);
- every daily snapshot read back through the reader (an as-of read of every session) and every
  weekly and monthly snapshot through the store, each compared with the file written, kept in an
  uncompacted copy of the lake (hard links: same files, no second copy on disk) (target: 0
  differing);
- real closes of the session after the year (`python -m market_assets close`, each index
  against the server on loopback, a fresh Dagster instance each time) on the compacted lake and
  on the uncompacted copy, alternately, `--closes` times after one close on each to warm up, and
  the lake work alone of the same
  close (reading each symbol's previous snapshot, as the adjustment detector does, and writing
  its three snapshots) (target: compacted <= 1.1x uncompacted).

The work is spread over the machine's cores, a symbol (or a run of sessions) per task. It prints
the figures and the ratios, then removes its folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from itertools import groupby
from pathlib import Path

import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from market_assets.domain.candles import resample, with_symbol  # noqa: E402
from market_assets.domain.exchange_sessions import calendar  # noqa: E402
from market_assets.lake.compaction import compact  # noqa: E402
from market_assets.lake.datasets import BARS  # noqa: E402
from market_assets.lake.reader import LakeReader  # noqa: E402
from market_assets.lake.store import ParquetStore  # noqa: E402
from market_assets.sources.indices import exchange_of, followed_indices  # noqa: E402
from market_assets.sources.parsing import parse_history_csv  # noqa: E402
from stooq_server import StooqServer, generate_synthetic  # noqa: E402
from stooq_server.server import DataStore, csv_header  # noqa: E402

PERIODS = {"weekly_bars": "week", "monthly_bars": "month"}
CORES = os.cpu_count() or 1


# --- Writing the year ----------------------------------------------------------------------------


def download(data: DataStore, symbol: str, session: pd.Timestamp) -> str:
    """The body of the server's daily download of `symbol` with its serving date at `session`."""
    history, rendered = data.history(symbol, session), data.rendered(symbol, session)
    return csv_header(history.volume is not None) + "\r\n" + rendered.rows(0, history.end(session.to_datetime64()))


def served(data: DataStore, symbol: str, sessions: list[pd.Timestamp]) -> dict[pd.Timestamp, pd.DataFrame]:
    """The parsed daily history the server answers for `symbol` on each of `sessions` (none
    before the symbol lists)."""
    frames: dict[pd.Timestamp, pd.DataFrame] = {}
    # Serving dates with the same adjustments applied share one rendering: a day's answer is a
    # prefix of the last day's.
    for _, group in groupby(sessions, key=lambda day: id(data.rendered(symbol, day))):
        days = list(group)
        history = data.history(symbol, days[-1])
        whole = parse_history_csv(download(data, symbol, days[-1]), symbol, "bench")
        for day in days:
            rows = history.end(day.to_datetime64())
            if rows:
                frames[day] = whole.iloc[:rows].reset_index(drop=True)
        first = next((day for day in days if day in frames), None)
        if first is not None and not parse_history_csv(download(data, symbol, first), symbol, "bench").equals(frames[first]):
            raise RuntimeError(f"{symbol}: the answer of {first:%Y-%m-%d} is not a prefix of {days[-1]:%Y-%m-%d}'s")
    return frames


def snapshots(daily: pd.DataFrame, symbol: str, session: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The three frames a close writes for one symbol and session."""
    frames = {"daily_bars": with_symbol(daily, symbol)}
    for asset, period in PERIODS.items():
        frames[asset] = with_symbol(resample(daily, period, session, exchange_of(symbol)), symbol)
    return frames


def write_symbol(data_dir: Path, lake: Path, symbol: str, sessions: list[pd.Timestamp]) -> int:
    """Write the year of `symbol`'s snapshots; the number of files."""
    store, files = ParquetStore(str(lake)), 0
    for day, daily in served(DataStore(data_dir), symbol, sessions).items():
        for asset, frame in snapshots(daily, symbol, day).items():
            store.write(asset, f"{day:%Y-%m-%d}|{symbol}", frame)
            files += 1
    return files


# --- Reading it back -----------------------------------------------------------------------------


def check_as_of(lake: Path, written: Path, sessions: list[str]) -> set[tuple[str, str, bool]]:
    """Each daily snapshot the reader returns as of each of `sessions`: (session, symbol, equal
    to the file written)."""
    reader, original, seen = LakeReader(str(lake)), ParquetStore(str(written)), {}
    for session in sessions:
        for symbol, rows in reader.bars("daily", as_of=session).groupby("symbol"):
            key = f"{rows['session'].iloc[0]:%Y-%m-%d}|{symbol}"
            if key not in seen:
                frame = rows.drop(columns="session").reset_index(drop=True)
                seen[key] = frame.equals(original.read("daily_bars", key))
    return {(*key.split("|"), equal) for key, equal in seen.items()}


def check_symbol(lake: Path, written: Path, symbol: str) -> tuple[int, int]:
    """Every weekly and monthly snapshot of `symbol` read through the store against the file
    written: (compared, differing)."""
    store, original, compared, differing = ParquetStore(str(lake)), ParquetStore(str(written)), 0, 0
    for asset in ("weekly_bars", "monthly_bars"):
        for key in original.file_keys(asset):
            if key.endswith(f"|{symbol}"):
                compared += 1
                differing += not store.read(asset, key).equals(original.read(asset, key))
    return compared, differing


# --- The close -----------------------------------------------------------------------------------


def real_close(lake: Path, home: Path, server_url: str, sessions: dict[str, str]) -> float:
    """Seconds of `python -m market_assets close` of every index for its exchange's session, on a
    fresh instance at `home`; what it wrote is removed afterwards."""
    home.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MARKET_ASSETS_DATA_ROOT": str(lake),
        "STOOQ_BASE_URL": server_url,
        "MARKET_ASSETS_CATCH_UP_SESSIONS": "1",
    }
    started = time.perf_counter()
    for code, session in sessions.items():
        indices = [name for name, index in followed_indices().items() if index.calendar == code]
        command = [sys.executable, "-m", "market_assets", "close", *indices, "--session", session]
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    forget(lake, set(sessions.values()))
    shutil.rmtree(home)
    return seconds


def lake_work(lake: Path, frames: dict[str, dict[str, pd.DataFrame]], previous: str, session: str) -> float:
    """Seconds of a close's lake work for `session`: read each previous snapshot, write three."""
    store = ParquetStore(str(lake))
    started = time.perf_counter()
    for symbol, by_asset in frames.items():
        if store.exists("daily_bars", f"{previous}|{symbol}"):
            store.read("daily_bars", f"{previous}|{symbol}")
        for asset, frame in by_asset.items():
            store.write(asset, f"{session}|{symbol}", frame)
    seconds = time.perf_counter() - started
    forget(lake, {session})
    return seconds


def forget(lake: Path, sessions: set[str]) -> None:
    """Remove every asset's folders of `sessions`: the lake as it was before their close."""
    for session in sessions:
        for folder in lake.glob(f"*/session={session}"):
            shutil.rmtree(folder)


def size(root: Path) -> int:
    """Bytes of the bars files under `root`, and of their manifests."""
    files = [path for asset in BARS for path in (root / asset).rglob("*.parquet")]
    return sum(path.stat().st_size for path in [*files, *(root / "_compacted").glob("*.parquet")])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=252)
    parser.add_argument("--symbols", type=int, default=210, help="DJI 30 + NDX 100 (10 shared) + HSI 90 = 210")
    parser.add_argument("--closes", type=int, default=3, help="real closes on each lake")
    args = parser.parse_args()
    hsi = max(1, args.symbols - 120)
    with tempfile.TemporaryDirectory(prefix="compaction-") as folder, ProcessPoolExecutor(CORES) as pool:
        work = Path(folder)
        universe = generate_synthetic(
            work / "stooq", first_session="2006-01-03", sizes={"DJI": 30, "NDX": 100, "HSI": hsi}, dividends=True
        )
        symbols = sorted({s for code in universe.symbols for s in universe.symbols[code]})
        days = {
            code: list(calendar(code).sessions_window(universe.last_session[code], -(args.sessions + 1)))
            for code in universe.last_session
        }
        lake, written = work / "lake", work / "written"
        started = time.perf_counter()
        jobs = [pool.submit(write_symbol, universe.data_dir, lake, s, days[exchange_of(s)][:-1]) for s in symbols]
        files = sum(job.result() for job in jobs)
        dividends = universe.dividends[universe.dividends["date"] >= days["XNYS"][0]]
        print(
            f"lake: {len(symbols)} symbols x {args.sessions} sessions, {files} files, {len(dividends)} dividends "
            f"and {len(universe.splits)} splits in the year, written in {time.perf_counter() - started:.0f} s "
            f"on {CORES} cores"
        )
        shutil.copytree(lake, written, copy_function=os.link)

        before = size(lake)
        started = time.perf_counter()
        report = compact(ParquetStore(str(lake)))
        print(f"compaction: {time.perf_counter() - started:.0f} s; " + "; ".join(report.lines(False)))
        after = size(lake)
        print(
            f"size: uncompacted {before / 2**20:.1f} MiB, compacted {after / 2**20:.2f} MiB with the manifests, "
            f"ratio {after / before:.4f} (target <= 0.03)"
        )

        started = time.perf_counter()
        every_session = sorted({f"{day:%Y-%m-%d}" for code in days for day in days[code][:-1]})
        runs = [every_session[start :: CORES * 4] for start in range(CORES * 4)]
        daily = set().union(*pool.map(check_as_of, [lake] * len(runs), [written] * len(runs), runs))
        daily_keys = {(session, symbol) for session, symbol, _ in daily}
        daily_differing = sum(not equal for *_, equal in daily)
        missed = len(ParquetStore(str(written)).file_keys("daily_bars")) - len(daily_keys)
        periods = list(pool.map(check_symbol, [lake] * len(symbols), [written] * len(symbols), symbols))
        compared, differing = sum(c for c, _ in periods), sum(d for _, d in periods)
        print(
            f"read back in {time.perf_counter() - started:.0f} s: {len(daily_keys)} daily snapshots through the "
            f"reader's as-of reads of {len(every_session)} sessions ({missed} never returned), "
            f"{compared} weekly and monthly through the store; {daily_differing + differing} differing (target 0)"
        )

        close_sessions = {code: f"{sessions[-1]:%Y-%m-%d}" for code, sessions in days.items()}
        times: dict[str, list[float]] = {"compacted": [], "uncompacted": []}
        lakes = [("compacted", lake), ("uncompacted", written)]
        with StooqServer(universe.data_dir) as server:
            for round_ in range(-1, args.closes):  # round -1 warms both up and is not counted
                for name, root in lakes if round_ % 2 else lakes[::-1]:
                    seconds = real_close(root, work / f"home-{name}-{round_}", server.url, close_sessions)
                    if round_ >= 0:
                        times[name].append(seconds)
        median = {name: statistics.median(values) for name, values in times.items()}
        print(
            f"real closes of {', '.join(f'{c} {s}' for c, s in close_sessions.items())} ({args.closes} each, "
            f"median): compacted {median['compacted']:.1f} s, uncompacted {median['uncompacted']:.1f} s, "
            f"ratio {median['compacted'] / median['uncompacted']:.3f} (target <= 1.1)"
        )

        data = DataStore(universe.data_dir)
        us = [s for s in symbols if exchange_of(s) == "XNYS"]
        session, previous = days["XNYS"][-1], f"{days['XNYS'][-2]:%Y-%m-%d}"
        frames = {s: snapshots(daily, s, session) for s in us for daily in served(data, s, [session]).values()}
        work_times: dict[str, list[float]] = {"compacted": [], "uncompacted": []}
        for round_ in range(args.closes):
            for name, root in lakes if round_ % 2 else lakes[::-1]:
                work_times[name].append(lake_work(root, frames, previous, f"{session:%Y-%m-%d}"))
        median = {name: statistics.median(values) for name, values in work_times.items()}
        print(
            f"the lake work alone of the close ({len(frames)} US symbols): compacted {median['compacted']:.2f} s, "
            f"uncompacted {median['uncompacted']:.2f} s, ratio {median['compacted'] / median['uncompacted']:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
