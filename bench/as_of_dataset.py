"""The data set of `read_lake.py`'s comparison with ArcticDB: 40 symbols x 120 sessions of the
synthetic universe, each session's daily snapshot as Stooq would have served it that day, with 20
adjustments (17 dividends, 3 splits) rewriting the past, each snapshot fetched an hour after its
session's close. Written as plain parquet files (`<folder>/<session>/<symbol>.parquet`, with a
`fetched_at.json`), which the lake and ArcticDB each load their own way; no project import, so that
ArcticDB's interpreter (which needs pandas < 3) can read it too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

SYMBOLS, SESSIONS, DIVIDENDS, SPLITS = 40, 120, 17, 3


def write_dataset(raw_folder: Path, sessions: list[pd.Timestamp], closes: list[pd.Timestamp], out: Path) -> dict:
    """Snapshots of the raw histories in `raw_folder` (`<symbol>.csv`, the server's daily files) for
    `sessions` (closing at `closes`), adjusted by 20 events drawn with a fixed seed."""
    files = sorted(raw_folder.glob("*.us.csv"))[:SYMBOLS]
    raw = {path.name.removesuffix(".csv").upper(): _raw(path) for path in files}
    rng = np.random.default_rng(20)
    names = sorted(raw)
    picks = rng.choice(len(names) * (len(sessions) - 1), DIVIDENDS + SPLITS, replace=False)
    events = [
        (
            names[pick // (len(sessions) - 1)],
            sessions[1 + pick % (len(sessions) - 1)],
            float(rng.choice([2.0, 3.0])) if i < SPLITS else float(1 / rng.uniform(0.99, 0.998)),
        )
        for i, pick in enumerate(picks)
    ]
    fetched = {}
    for session, close in zip(sessions, closes):
        folder = out / f"{session:%Y-%m-%d}"
        folder.mkdir(parents=True)
        fetched[f"{session:%Y-%m-%d}"] = (close + pd.Timedelta(hours=1)).isoformat()
        for symbol, history in raw.items():
            snapshot = history[history["date"] <= session].copy()
            for event_symbol, day, ratio in events:
                if event_symbol == symbol and day <= session:
                    before = snapshot["date"] < day
                    snapshot.loc[before, ["open", "high", "low", "close"]] = (
                        snapshot.loc[before, ["open", "high", "low", "close"]] / ratio
                    ).round(4)
                    if ratio >= 2:
                        snapshot.loc[before, "volume"] = snapshot.loc[before, "volume"] * ratio
            snapshot.to_parquet(folder / f"{symbol}.parquet", index=False)
    (out / "fetched_at.json").write_text(json.dumps(fetched))
    return {"symbols": names, "sessions": [f"{s:%Y-%m-%d}" for s in sessions], "events": len(events)}


def _raw(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, parse_dates=["Date"]).rename(columns=str.lower)
    return frame.astype({"volume": "float64"})[["date", "open", "high", "low", "close", "volume"]]
