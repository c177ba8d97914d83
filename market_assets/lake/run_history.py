"""The history of the runs that instance retention removes from Dagster, kept in the lake: one row per
run in `<root>/run_history/session=<date>/<index or job>.parquet`, read by the DuckDB view
`run_history`. Why: docs/design.md#the-instance-keeps-its-size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import pandas as pd

from market_assets.lake.store import ParquetStore

RUN_HISTORY = "run_history"


@dataclass(frozen=True)
class RunHistoryRow:
    """What a run was, once Dagster no longer holds it."""

    run_id: str
    job: str
    index: str | None
    session: str
    """`YYYY-MM-DD`: the session it loaded, or the day it started."""
    symbols: list[str]
    status: str
    started: pd.Timestamp | None
    ended: pd.Timestamp | None
    failures: str
    """What failed, as the run's failure events said it; empty for a run that did not fail."""

    @property
    def name(self) -> str:
        """The file the row goes to in its session's folder."""
        return self.index or self.job


COLUMNS = ["run_id", "job", "index", "symbols", "status", "started", "ended", "duration_seconds", "failures"]


def history_frame(rows: Iterable[RunHistoryRow]) -> pd.DataFrame:
    """`rows` as the table's columns (the session is the file's folder), ordered by start."""
    records = [{k: v for k, v in asdict(row).items() if k != "session"} for row in rows]
    frame = pd.DataFrame.from_records(records, columns=[c for c in COLUMNS if c != "duration_seconds"])
    for column in ("started", "ended"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["duration_seconds"] = (frame["ended"] - frame["started"]).dt.total_seconds()
    return _in_order(frame[COLUMNS])


def _in_order(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["started", "run_id"], kind="stable").reset_index(drop=True)


def write_run_history(store: ParquetStore, rows: Iterable[RunHistoryRow]) -> list[str]:
    """Add `rows` to the history files of their sessions (a run already there is replaced, so
    writing the same runs again changes nothing) and return the paths written."""
    by_file: dict[str, list[RunHistoryRow]] = {}
    for row in rows:
        by_file.setdefault(f"{row.session}|{row.name}", []).append(row)
    written = []
    for key, added in sorted(by_file.items()):
        frame = history_frame(added)
        if store.exists(RUN_HISTORY, key):
            kept = store.read(RUN_HISTORY, key)
            frame = _in_order(pd.concat([kept[~kept["run_id"].isin(frame["run_id"])], frame], ignore_index=True))
        written.append(store.write(RUN_HISTORY, key, frame))
    return written
