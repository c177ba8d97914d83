"""How small does compaction keep the lake, and does every snapshot still read back as written?

    .venv/bin/python bench/compaction.py [--sessions 252] [--symbols 210]

Generates a synthetic universe with quarterly dividends on a quarter of its stocks and a few
splits, then writes a lake as the closes of its last `--sessions` sessions would, the serving
date advancing session by session: for every symbol and session, the history the project's
Stooq-compatible server answers for that serving date, parsed as a close parses it, and its
daily, weekly and monthly snapshots written through the lake's own code (`ParquetStore.write`,
`resample`, `with_symbol`: the files a close writes). Then:

- the size of the bars files before and after `compact` (target: after <= 3 % of before);
- every daily, weekly and monthly snapshot read back through the store and the reader and
  compared with what was written (target: 0 differing);
- the lake work of a close of one more session (reading each symbol's previous snapshot, as the
  adjustment detector does, and writing its three snapshots) on the compacted lake against the
  same work on an uncompacted copy, alternately, `--repeat` times (target: <= 1.1x).

It prints the figures and the ratios, then removes its folder.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from market_assets.domain.candles import resample, with_symbol  # noqa: E402
from market_assets.domain.exchange_sessions import calendar  # noqa: E402
from market_assets.lake.compaction import compact  # noqa: E402
from market_assets.lake.reader import LakeReader  # noqa: E402
from market_assets.lake.store import ParquetStore  # noqa: E402
from market_assets.sources.indices import exchange_of  # noqa: E402
from market_assets.sources.parsing import parse_history_csv  # noqa: E402
from stooq_server import StooqServer, generate_synthetic  # noqa: E402

BARS = ("daily_bars", "weekly_bars", "monthly_bars")
PERIODS = {"weekly_bars": "week", "monthly_bars": "month"}


def served(server: StooqServer, symbol: str, session: pd.Timestamp) -> pd.DataFrame:
    """The daily history the server answers for `symbol` with its serving date at `session`."""
    history = server.store.history(symbol, session)
    stop = history.end(session.to_datetime64())
    return parse_history_csv(history.rows(0, stop).to_csv(), symbol, "bench")


def snapshots(daily: pd.DataFrame, symbol: str, session: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The three frames a close writes for one symbol and session."""
    frames = {"daily_bars": with_symbol(daily, symbol)}
    for asset, period in PERIODS.items():
        frames[asset] = with_symbol(resample(daily, period, session, exchange_of(symbol)), symbol)
    return frames


def size(root: Path) -> int:
    return sum(path.stat().st_size for asset in BARS for path in (root / asset).rglob("*.parquet"))


def close_work(store: ParquetStore, frames: dict[str, dict[str, pd.DataFrame]], previous: str, session: str) -> float:
    """Seconds of a close's lake work for `session`: read each previous snapshot, write three."""
    started = time.perf_counter()
    for symbol, by_asset in frames.items():
        if store.exists("daily_bars", f"{previous}|{symbol}"):
            store.read("daily_bars", f"{previous}|{symbol}")
        for asset, frame in by_asset.items():
            store.write(asset, f"{session}|{symbol}", frame)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=252)
    parser.add_argument("--symbols", type=int, default=210, help="DJI 30 + NDX 100 (10 shared) + HSI 90 = 210")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    hsi = max(1, args.symbols - 120)
    with tempfile.TemporaryDirectory(prefix="compaction-") as folder:
        work = Path(folder)
        universe = generate_synthetic(
            work / "stooq", first_session="2006-01-03", sizes={"DJI": 30, "NDX": 100, "HSI": hsi}, dividends=True
        )
        server = StooqServer(universe.data_dir)
        symbols = sorted({s for code in universe.symbols for s in universe.symbols[code]})
        days = {
            code: list(calendar(code).sessions_window(universe.last_session[code], -(args.sessions + 1)))
            for code in universe.last_session
        }
        store = ParquetStore(str(work / "lake"))
        written: dict[tuple[str, str], pd.DataFrame] = {}
        started = time.perf_counter()
        last_frames: dict[str, dict[str, pd.DataFrame]] = {}
        for symbol in symbols:
            code = exchange_of(symbol)
            for day in days[code][:-1]:
                daily = served(server, symbol, day)
                if daily.empty:
                    continue
                for asset, frame in snapshots(daily, symbol, day).items():
                    store.write(asset, f"{day:%Y-%m-%d}|{symbol}", frame)
            if code == "XNYS":
                last_frames[symbol] = snapshots(served(server, symbol, days[code][-1]), symbol, days[code][-1])
        files = sum(len(store.file_keys(asset)) for asset in BARS)
        dividends = universe.dividends[universe.dividends["date"] >= days["XNYS"][0]]
        print(
            f"lake: {len(symbols)} symbols x {args.sessions} sessions, {files} files, "
            f"{len(dividends)} dividends and {len(universe.splits)} splits in the data set, "
            f"written in {time.perf_counter() - started:.0f} s"
        )
        for asset in BARS:
            for key in store.file_keys(asset):
                written[asset, key] = store.read(asset, key)
        uncompacted = work / "uncompacted"
        shutil.copytree(work / "lake", uncompacted)

        before = size(work / "lake")
        started = time.perf_counter()
        report = compact(store)
        seconds = time.perf_counter() - started
        after = size(work / "lake") + sum(
            (work / "lake" / "_compacted" / f"{asset}.parquet").stat().st_size
            for asset in BARS
            if (work / "lake" / "_compacted" / f"{asset}.parquet").exists()
        )
        print(f"compaction: {seconds:.1f} s; " + "; ".join(report.lines(False)))
        print(
            f"size: uncompacted {before / 2**20:.1f} MiB, compacted {after / 2**20:.2f} MiB with the manifests, "
            f"ratio {after / before:.4f} (target <= 0.03)"
        )

        started = time.perf_counter()
        fresh = ParquetStore(str(work / "lake"))
        differing = sum(not fresh.read(asset, key).equals(frame) for (asset, key), frame in written.items())
        reader = LakeReader(fresh)
        as_read = 0
        for day in days["XNYS"][:-1:21]:
            session = f"{day:%Y-%m-%d}"
            frame = reader.bars("daily", as_of=session)
            for symbol, rows in frame.groupby("symbol"):
                key = (
                    "daily_bars",
                    f"{rows['session'].iloc[0]:%Y-%m-%d}|{symbol}",
                )
                as_read += 1
                differing += not rows.drop(columns="session").reset_index(drop=True).equals(written[key])
        print(
            f"read back: {len(written)} snapshots through the store and {as_read} through the reader's as-of "
            f"reads in {time.perf_counter() - started:.0f} s, {differing} differing (target 0)"
        )

        previous = f"{days['XNYS'][-2]:%Y-%m-%d}"
        session = f"{days['XNYS'][-1]:%Y-%m-%d}"
        times: dict[str, list[float]] = {"compacted": [], "uncompacted": []}
        for _ in range(args.repeat):
            for name, root in (("compacted", work / "lake"), ("uncompacted", uncompacted)):
                lake = ParquetStore(str(root))
                times[name].append(close_work(lake, last_frames, previous, session))
                for symbol in last_frames:  # undo, for the next round
                    for asset in BARS:
                        Path(lake.path(asset, f"{session}|{symbol}")).unlink()
        median = {name: statistics.median(values) for name, values in times.items()}
        print(
            f"a close's lake work ({len(last_frames)} US symbols of {session}): compacted {median['compacted']:.2f} s, "
            f"uncompacted {median['uncompacted']:.2f} s, ratio {median['compacted'] / median['uncompacted']:.2f} "
            "(target <= 1.1)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
