"""How much memory does the files source need to read a few symbols from a 500 MB bulk archive?

    .venv/bin/python bench/bulk_archive_memory.py [--size-mb 500] [--symbols 5]

Writes a synthetic bulk archive of about `--size-mb` MB into a temporary folder, in the layout
and format of Stooq's `d_us_txt.zip` (one `data/daily/us/nyse stocks/1/<symbol>.txt` per symbol,
8,000 daily rows each, seeded prices: the same bytes on every run), then measures in fresh child
processes, so that writing the archive does not count:

- files source: the peak RSS (`VmHWM`) of a process that imports the platform and opens the
  folder with `StooqFiles` (its RSS then is the baseline, and the peak is reset to it), then
  reads `--symbols` symbols spread over the archive with `daily_history`;
- naive: the peak RSS of a process that loads the whole archive into memory (as a download kept
  in a `BytesIO` would be) and reads the same symbols from it.

It prints both in MiB (archive sizes in MB), the growth over the baseline, and the ratios, then
removes the folder.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

ROWS = 8_000
"""About 32 years of sessions, a long-listed stock's history."""
DISTINCT_BODIES = 16
"""Price histories generated; members reuse them under their own tickers (deflate sees each
member alone, so reuse does not shrink the archive)."""
SESSION = "2026-11-20"


def _symbol(position: int) -> str:
    return f"SYN{position:05d}.US"


def _bodies(seed: int = 20261120) -> list[list[str]]:
    """Rows of the bulk format without their ticker: `,D,<date>,000000,<o>,<h>,<l>,<c>,<v>,0`."""
    rng = np.random.default_rng(seed)
    days = np.busday_offset(np.datetime64(SESSION), -np.arange(ROWS)[::-1], roll="backward")
    dates = np.datetime_as_string(days, unit="D").tolist()
    bodies = []
    for _ in range(DISTINCT_BODIES):
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, ROWS)))
        open_ = close * np.exp(rng.normal(0, 0.01, ROWS))
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.02, ROWS))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.02, ROWS))
        volume = rng.integers(10_000, 50_000_000, ROWS)
        bodies.append(
            [
                f",D,{day.replace('-', '')},000000,{o:.4f},{h:.4f},{lo:.4f},{c:.4f},{v},0"
                for day, o, h, lo, c, v in zip(dates, open_, high, low, close, volume.tolist())
            ]
        )
    return bodies


def write_archive(path: Path, size_mb: int) -> int:
    """Members until the archive reaches `size_mb` MB; returns how many it holds."""
    from market_assets.sources.parsing import BULK_HEADER
    from stooq_server.bulk import bulk_member

    bodies = _bodies()
    target = size_mb * 1_000_000
    members = 0
    with path.open("wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        while raw.tell() < target:
            symbol = _symbol(members)
            rows = bodies[members % DISTINCT_BODIES]
            text = BULK_HEADER + "\r\n" + "".join(f"{symbol}{row}\r\n" for row in rows)
            archive.writestr(bulk_member(symbol), text)
            members += 1
    return members


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # kB to MiB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _baseline_mib() -> float:
    """The RSS now, made the peak to beat: importing pandas and Dagster peaks higher than what
    follows, and would hide the reading's own peak (Linux resets the peak on `5` to clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mib("VmRSS")


def _peak_mib() -> float:
    return _status_mib("VmHWM")


def child(mode: str, folder: Path, symbols: list[str]) -> dict[str, float]:
    """Runs in a fresh process: what one reader costs, without the writer's memory."""
    import pandas as pd

    from market_assets.sources import StooqFiles

    session = pd.Timestamp(SESSION)
    if mode == "files":
        with StooqFiles(folder) as files:
            baseline = _baseline_mib()
            rows = sum(len(files.daily_history(symbol, session)) for symbol in symbols)
        return {"baseline_mib": baseline, "peak_mib": _peak_mib(), "rows": rows}
    from market_assets.sources.parsing import parse_bulk_file
    from stooq_server.bulk import bulk_member

    baseline = _baseline_mib()
    whole = io.BytesIO((folder / "d_us_txt.zip").read_bytes())
    with zipfile.ZipFile(whole) as archive:
        rows = sum(len(parse_bulk_file(archive.read(bulk_member(symbol)).decode(), symbol, "naive")) for symbol in symbols)
    return {"baseline_mib": baseline, "peak_mib": _peak_mib(), "rows": rows}


def _measure(mode: str, folder: Path, symbols: list[str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--folder", str(folder), *symbols],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--symbols", type=int, default=5)
    parser.add_argument("--child", choices=["files", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("names", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.folder, args.names)))
        return

    with tempfile.TemporaryDirectory(prefix="bulk_archive_memory_") as work:
        folder = Path(work)
        archive = folder / "d_us_txt.zip"
        started = time.perf_counter()
        members = write_archive(archive, args.size_mb)
        size_mb = archive.stat().st_size / 1e6
        with zipfile.ZipFile(archive) as written:
            unpacked = sum(info.file_size for info in written.infolist())
            largest = max(info.file_size for info in written.infolist())
        print(
            f"archive: {size_mb:.0f} MB, {members} members, "
            f"{unpacked / 1e6:.0f} MB unpacked, largest member {largest / 1e6:.2f} MB "
            f"(written in {time.perf_counter() - started:.0f} s)"
        )
        step = max(1, members // args.symbols)
        symbols = [_symbol(position) for position in range(0, members, step)][: args.symbols]
        files = _measure("files", folder, symbols)
        naive = _measure("naive", folder, symbols)

    assert files["rows"] == naive["rows"] == ROWS * len(symbols)
    growth = files["peak_mib"] - files["baseline_mib"]
    print(f"read {len(symbols)} symbols ({', '.join(symbols)}), {ROWS} rows each")
    print(f"files source  baseline {files['baseline_mib']:.1f} MiB, peak {files['peak_mib']:.1f} MiB (+{growth:.1f} MiB)")
    print(
        f"naive         baseline {naive['baseline_mib']:.1f} MiB, peak {naive['peak_mib']:.1f} MiB "
        f"(+{naive['peak_mib'] - naive['baseline_mib']:.1f} MiB)"
    )
    print(
        f"ratios        files peak / baseline {files['peak_mib'] / files['baseline_mib']:.2f}, "
        f"naive peak / files peak {naive['peak_mib'] / files['peak_mib']:.2f}, "
        f"files growth / archive size {growth / (size_mb * 1e6 / 2**20):.3f}"
    )


if __name__ == "__main__":
    main()
