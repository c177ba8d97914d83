"""The ArcticDB half of `read_lake.py`'s comparison, run by ArcticDB's own interpreter (it needs
pandas < 3, the project pins pandas 3): loads the data set of `as_of_dataset.py` into an LMDB
library, one version per session (appended when the snapshot only adds rows, written whole when an
adjustment rewrote the past, a snapshot named after each session), then times the same reads as the
lake's and prints them as JSON.

    python bench/arcticdb_reads.py DATASET LMDB_FOLDER REPEAT
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
from arcticdb import Arctic
from arcticdb.version_store.library import ReadRequest


def main(dataset: Path, folder: Path, repeat: int) -> dict:
    info = json.loads((dataset / "info.json").read_text())
    symbols, sessions = info["symbols"], info["sessions"]
    library = Arctic(f"lmdb://{folder}?map_size=4GB").get_library("bars", create_if_missing=True)
    written_at: dict[str, pd.Timestamp] = {}
    previous: dict[str, pd.DataFrame] = {}
    started = time.perf_counter()
    for session in sessions:
        for symbol in symbols:
            frame = pd.read_parquet(dataset / session / f"{symbol}.parquet").set_index("date")
            before = previous.get(symbol)
            if before is not None and len(frame) > len(before) and frame.iloc[: len(before)].equals(before):
                library.append(symbol, frame.iloc[len(before) :])
            else:
                library.write(symbol, frame)
            previous[symbol] = frame
        library.snapshot(f"s{session}")
        written_at[session] = pd.Timestamp.now(tz="UTC")
    loaded = time.perf_counter() - started
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())

    middle = sessions[len(sessions) // 2]
    one, known = symbols[7], written_at[middle].to_pydatetime()
    reads = {
        "one symbol, newest": lambda: library.read(one).data,
        "one symbol, as of a session": lambda: library.read(one, as_of=f"s{middle}").data,
        "one symbol, as known at an instant": lambda: library.read(one, as_of=known).data,
        "40-symbol panel, newest": lambda: [item.data for item in library.read_batch(symbols)],
        "40-symbol panel, as of a session": lambda: [
            item.data for item in library.read_batch([ReadRequest(s, as_of=f"s{middle}") for s in symbols])
        ],
        "40-symbol panel, as known at an instant": lambda: [
            item.data for item in library.read_batch([ReadRequest(s, as_of=known) for s in symbols])
        ],
    }
    seconds = {}
    for name, read in reads.items():
        read()
        times = []
        for _ in range(repeat):
            begun = time.perf_counter()
            read()
            times.append(time.perf_counter() - begun)
        seconds[name] = statistics.median(times)
    rows = len(library.read(one, as_of=f"s{middle}").data)
    return {"loaded_seconds": loaded, "bytes": size, "seconds": seconds, "rows_one_as_of": rows}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))))
