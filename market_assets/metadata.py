"""Materialization metadata, so the UI tells what a partition holds without opening the file."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
import pandas as pd
from dagster._core.execution.context.metadata_logging import (
    AssetMetadataHandle,
    OutputMetadataAccumulator,
)


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


def add_partition_metadata(
    context: dg.AssetExecutionContext, metadata: Mapping[str, Mapping[str, dg.MetadataValue]]
) -> None:
    """Attach `metadata[key]` to the materialization of each partition `key` of this step.

    `context.add_asset_metadata(..., partition_key=key)` checks `key` by listing every key of the
    step's partition range, reading the dynamic `symbols` partitions from the instance each time:
    one call costs O(symbols) and a database read, so a step over N partitions spends O(N x
    symbols) in validation alone (10 ms a call for 82 symbols, 19 ms for 1,000, measured here).
    The keys here are checked against the step's own `partition_keys` once, and the metadata goes
    to the same per-partition accumulator `add_asset_metadata` writes to (dagster 1.13.27; the
    pinned version and `test_materializations_carry_metadata_a_person_can_read` guard the detail).
    """
    targeted = {str(key) for key in context.partition_keys}
    stray = sorted(set(metadata) - targeted)
    if stray:
        raise ValueError(f"metadata for partitions this step does not materialize: {stray[:5]}")
    step = context.op_execution_context._step_execution_context  # noqa: SLF001
    accumulator = step._metadata_accumulator  # noqa: SLF001
    merged = dict(accumulator.per_output_metadata)
    for key, values in metadata.items():
        handle = AssetMetadataHandle(asset_key=context.asset_key, partition_key=key)
        merged[handle] = {**merged.get(handle, {}), **values}
    step._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata=merged)  # noqa: SLF001


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
