"""Materialization metadata, so the UI tells what a partition holds without opening the file."""

from __future__ import annotations

import dagster as dg
import pandas as pd


def bars_metadata(frame: pd.DataFrame, path: str) -> dict[str, dg.MetadataValue]:
    """Rows, date range, last close, where the file is, and the last rows as a table."""
    return {
        "rows": dg.MetadataValue.int(len(frame)),
        "first_date": dg.MetadataValue.text(_day(frame["date"].min()) if len(frame) else "-"),
        "last_date": dg.MetadataValue.text(_day(frame["date"].max()) if len(frame) else "-"),
        "last_close": dg.MetadataValue.float(float(frame["close"].iloc[-1]) if len(frame) else float("nan")),
        "path": dg.MetadataValue.path(path),
        "preview": dg.MetadataValue.md(markdown_table(frame.tail(5))),
    }


def markdown_table(frame: pd.DataFrame) -> str:
    """A small DataFrame as a Markdown table (the UI renders Markdown metadata)."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(_cell(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _cell(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return _day(value)
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) >= 1e6 else f"{value:.4f}".rstrip("0").rstrip(".")
    return "" if value is pd.NA else str(value)


def _day(value: pd.Timestamp) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")
