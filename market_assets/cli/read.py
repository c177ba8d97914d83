"""`python -m market_assets read` and `sql`: the lake's bars, or any SQL over it, on the terminal
or into a file."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pandas as pd

from market_assets.lake.reader import LakeReader, LakeReadError
from market_assets.lake.sql import connect

FORMATS = ("table", "csv", "parquet")
BAD_INPUT = 2
"""The exit status of a read the lake cannot answer, as argparse uses for a bad command line."""


def read_bars(
    kind: str,
    symbols: list[str],
    index: str | None,
    as_of: str | None,
    start: str | None,
    end: str | None,
    output_format: str,
    output: Path | None,
) -> int:
    """Print or write the bars `LakeReader.bars` returns."""
    try:
        frame = LakeReader().bars(kind, symbols or None, index, as_of, start, end)
    except LakeReadError as error:
        return _refuse(str(error))
    return _emit(frame, output_format, output)


def run_sql(query: str, output_format: str, output: Path | None) -> int:
    """Print or write the result of `query` over the views of `market_assets.lake.sql`."""
    try:
        frame = connect().sql(query).df()
    except LakeReadError as error:
        return _refuse(str(error))
    except duckdb.Error as error:
        return _refuse(f"the query failed: {error}")
    return _emit(frame, output_format, output)


def _emit(frame: pd.DataFrame, output_format: str, output: Path | None) -> int:
    if output_format == "parquet":
        if output is None:
            return _refuse("--format parquet needs -o FILE")
        frame.to_parquet(output, index=False)
    elif output_format == "csv":
        frame.to_csv(output or sys.stdout, index=False)
    else:
        text = frame.to_string(index=False) + "\n"
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text)
    if output is not None:
        print(f"{len(frame)} rows written to {output}", file=sys.stderr)
    return 0


def _refuse(message: str) -> int:
    print(message, file=sys.stderr)
    return BAD_INPUT
