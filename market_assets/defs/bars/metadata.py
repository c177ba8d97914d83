"""The metadata of a bars materialization, so the UI tells what a partition holds without opening
the file: rows, dates, last close, path, the fingerprint of what was written and the last rows as a
table. Each entry is part of an event Dagster stores for every (session, symbol) and asset: what
else was measured and left out is in docs/performance.md."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from market_assets.defs.metadata import table_preview
from market_assets.lake.fingerprint import fingerprint

PREVIEW_ROWS = 5
"""The last rows a materialization shows."""

FINGERPRINT = "fingerprint"
"""The entry holding the fingerprint of what is written (`market_assets.lake.fingerprint`), which
the `file_intact` rule compares the file with (`market_assets.defs.bars.integrity`)."""


def bars_metadata(frame: pd.DataFrame, path: str) -> dict[str, dg.MetadataValue]:
    """Rows, date range, last close, where the file is, the fingerprint of what it holds and the
    last rows as a table."""
    return {
        "rows": dg.MetadataValue.int(len(frame)),
        "first_date": dg.MetadataValue.text(_day(frame["date"].min()) if len(frame) else "-"),
        "last_date": dg.MetadataValue.text(_day(frame["date"].max()) if len(frame) else "-"),
        "last_close": dg.MetadataValue.float(float(frame["close"].iloc[-1]) if len(frame) else float("nan")),
        "path": dg.MetadataValue.path(path),
        FINGERPRINT: dg.MetadataValue.text(fingerprint(frame)),
        # The partition names the symbol: the preview shows the columns that vary.
        "preview": table_preview(frame, rows=PREVIEW_ROWS, leave_out=("symbol",)),
    }


def _day(value: pd.Timestamp) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")
