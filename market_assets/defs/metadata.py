"""Materialization metadata every asset shares: a preview of the rows as a table the UI renders."""

from __future__ import annotations

import math

import dagster as dg
import pandas as pd


def table_preview(frame: pd.DataFrame) -> dg.MetadataValue:
    """`frame` (a few rows) as a table: dates as `YYYY-MM-DD`, missing values empty, numbers as numbers.

    The UI renders it as a table with its columns' types, where Markdown showed text.
    """
    schema = dg.TableSchema([dg.TableColumn(str(name), _column_type(frame[name])) for name in frame.columns])
    records = [
        dg.TableRecord({str(name): _cell(value) for name, value in row.items()}) for row in frame.to_dict("records")
    ]
    return dg.MetadataValue.table(records, schema=schema)


def _column_type(column: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(column):
        return "bool"
    if pd.api.types.is_integer_dtype(column):
        return "int"
    if pd.api.types.is_float_dtype(column):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(column):
        return "date"
    return "string"


def _cell(value: object) -> str | int | float | bool | None:
    """A value as a table record holds it: a plain Python value, None where it is missing."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d}"
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    return value if isinstance(value, (bool, int, float)) else str(value)
