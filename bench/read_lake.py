"""How fast does the lake's reader read snapshots, against reading the same files with pandas?

    .venv/bin/python bench/read_lake.py [--sessions 20] [--repeat 5]

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
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from market_assets.domain.candles import snapshot, with_symbol  # noqa: E402
from market_assets.domain.exchange_sessions import calendar, latest_closed_session  # noqa: E402
from market_assets.lake.reader import LakeReader  # noqa: E402
from market_assets.lake.store import ParquetStore  # noqa: E402
from market_assets.sources.indices import exchange_of  # noqa: E402
from market_assets.sources.parsing import parse_history_csv  # noqa: E402
from stooq_server import generate_synthetic  # noqa: E402

SIZES = {"DJI": 30, "NDX": 100, "HSI": 90}


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
        code: calendar(code).sessions_window(pd.Timestamp(latest_closed_session(code)), -sessions)
        for code in ("XNYS", "XHKG")
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="read-lake-") as folder:
        started = time.perf_counter()
        store, middle = write_lake(Path(folder), args.sessions)
        reader = LakeReader(store)
        newest = reader.snapshots("daily")
        as_of = reader.snapshots("daily", as_of=middle)
        files = sum(len(store.stored_names("daily_bars", s)) for s in store.stored_sessions("daily_bars"))
        print(f"lake: {len(newest)} symbols, {files} daily snapshots, written in {time.perf_counter() - started:.1f} s")
        times: dict[str, list[float]] = {"newest": [], "newest pandas": [], "as of": [], "as of pandas": []}
        for _ in range(args.repeat):
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
