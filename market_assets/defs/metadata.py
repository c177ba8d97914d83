"""Materialization metadata every asset shares: a preview of the rows as a table the UI renders."""

from __future__ import annotations

import math

import dagster as dg
import numpy as np
import pandas as pd


def table_preview(frame: pd.DataFrame, rows: int | None = None, leave_out: tuple[str, ...] = ()) -> dg.MetadataValue:
    """`frame` (or its last `rows`, without the columns `leave_out`) as a table: dates as
    `YYYY-MM-DD`, missing values empty, numbers as numbers, which the UI renders with the columns'
    types."""
    shown = frame if rows is None else frame.iloc[-rows:] if rows else frame.iloc[:0]
    names = [name for name in shown.columns if name not in leave_out]
    schema = dg.TableSchema([dg.TableColumn(str(name), _column_type(shown[name])) for name in names])
    columns = [_cells(shown[name]) for name in names]
    records = [dg.TableRecord(dict(zip(map(str, names), row))) for row in zip(*columns)]
    return dg.MetadataValue.table(records, schema=schema)


def _cells(column: pd.Series) -> list[str | int | float | bool | None]:
    """The values of `column` as a table record holds them (see `_cell`); dates by numpy, at once."""
    if pd.api.types.is_datetime64_any_dtype(column):
        days = column.to_numpy("datetime64[ns]").astype("datetime64[D]")
        return [None if np.isnat(day) else str(day) for day in days]
    return [_cell(value) for value in column.tolist()]


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
