"""The metadata of a bars materialization, so the UI tells what a partition holds without opening
the file: rows, dates, last close, path, the last rows as a table and a chart of the year's closes."""

from __future__ import annotations

import base64
import math

import dagster as dg
import numpy as np
import pandas as pd

from market_assets.defs.metadata import table_preview
from market_assets.lake.fingerprint import fingerprint

CHART_WIDTH, CHART_HEIGHT = 240, 60
"""Size of the price chart in pixels."""

CHART_POINTS = 52
"""Closes drawn at most, one per week of the year: enough for 240 pixels, and few enough for the
chart's Markdown to stay under `INLINE_MARKDOWN`."""

INLINE_MARKDOWN = 1000
"""Markdown metadata shorter than this many characters shows inline in the UI's partition view
(Dagster 1.13); a longer one hides behind a "[Show Markdown]" link."""


FINGERPRINT = "fingerprint"
"""The entry holding the fingerprint of what is written (`market_assets.lake.fingerprint`), which
the `file_intact` check compares the file with (`market_assets.defs.bars.integrity`)."""


def bars_metadata(frame: pd.DataFrame, path: str) -> dict[str, dg.MetadataValue]:
    """Rows, date range, last close, where the file is, the fingerprint of what it holds, the last
    rows as a table and a chart of the last year's closes."""
    return {
        "rows": dg.MetadataValue.int(len(frame)),
        "first_date": dg.MetadataValue.text(_day(frame["date"].min()) if len(frame) else "-"),
        "last_date": dg.MetadataValue.text(_day(frame["date"].max()) if len(frame) else "-"),
        "last_close": dg.MetadataValue.float(float(frame["close"].iloc[-1]) if len(frame) else float("nan")),
        "path": dg.MetadataValue.path(path),
        FINGERPRINT: dg.MetadataValue.text(fingerprint(frame)),
        # The partition names the symbol: the preview shows the columns that vary.
        "preview": table_preview(frame.drop(columns="symbol", errors="ignore").tail(5)),
        "price_chart": dg.MetadataValue.md(price_chart(frame)),
    }


def price_chart(frame: pd.DataFrame) -> str:
    """The closes of the year up to the last bar as a small line chart, in Markdown.

    The UI's Markdown renderer shows an image whose source is a `data:` URI but drops inline
    `<svg>` and HTML, so the chart is an SVG polyline drawn here and embedded in base64: under
    1 kB (see `INLINE_MARKDOWN`) and a fraction of a millisecond per partition, with no plotting
    library in the run's process. The image's text names the period; a caption below gives the
    first and last close, the low and the high.
    """
    closes = frame["close"].to_numpy(dtype=float)
    dates = frame["date"].to_numpy(dtype="datetime64[ns]")
    drawable = ~np.isnan(closes)
    if not drawable.any():
        return "no closes to draw"
    end = pd.Timestamp(dates[drawable][-1])
    start = pd.Timestamp(dates[drawable & (dates > np.datetime64(end - pd.DateOffset(years=1)))][0])
    closes = closes[drawable & (dates >= np.datetime64(start))]
    # Every n-th close counted back from the last, so the chart always ends at the latest one.
    drawn = closes[::-1][:: math.ceil(len(closes) / CHART_POINTS)][::-1]
    low, high = float(closes.min()), float(closes.max())
    margin = 3
    scale = (CHART_HEIGHT - 2 * margin) / (high - low) if high > low else 0.0
    xs = np.linspace(0, CHART_WIDTH, len(drawn)) if len(drawn) > 1 else np.array([CHART_WIDTH / 2])
    ys = CHART_HEIGHT - margin - (drawn - low) * scale if scale else np.full(len(drawn), CHART_HEIGHT / 2)
    points = " ".join(f"{x:.0f},{y:.0f}" for x, y in zip(xs, ys))
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{CHART_HEIGHT}">'
        f'<polyline fill="none" stroke="#4f43dd" stroke-width="1.5" points="{points}"/>'
        f'<circle cx="{xs[-1]:.0f}" cy="{ys[-1]:.0f}" r="2.5" fill="#4f43dd"/></svg>'
    )
    period = f"close {_day(start)} to {_day(end)}"
    return (
        f"![{period}](data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()})\n\n"
        f"{_number(closes[0])} → {_number(closes[-1])}, low {_number(low)}, high {_number(high)}"
    )


def _number(value: float) -> str:
    """A price as the caption shows it: four decimals at most, four significant digits from a million."""
    return f"{value:,.4g}" if abs(value) >= 1e6 else f"{value:.4f}".rstrip("0").rstrip(".")


def _day(value: pd.Timestamp) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")
