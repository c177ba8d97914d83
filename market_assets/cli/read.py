"""`python -m market_assets read`, `factors` and `sql`: the lake's bars, adjustment factors, or any
SQL over it, on the terminal or into a file (README.md#reading-the-data). Loads no Dagster."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pandas as pd

from market_assets.cli.configuration import REFUSED, existing_lake
from market_assets.lake.reader import LakeReader, LakeReadError
from market_assets.lake.sql import connect

FORMATS = ("table", "csv", "parquet")


def read_bars(
    kind: str,
    symbols: list[str],
    index: str | None,
    as_of: str | None,
    start: str | None,
    end: str | None,
    known_at: str | None,
    prices: str | None,
    output_format: str,
    output: Path | None,
) -> int:
    """Print or write the bars `LakeReader.bars` returns, warning on stderr of backfilled snapshots."""
    try:
        frame = LakeReader(existing_lake()).bars(kind, symbols or None, index, as_of, start, end, known_at, prices)
    except LakeReadError as error:
        return _refuse(str(error))
    backfills = frame.loc[frame["backfilled"], ["symbol", "session"]].drop_duplicates()
    if len(backfills):
        named = ", ".join(f"{symbol} ({session:%Y-%m-%d})" for symbol, session in backfills.head(5).itertuples(index=False))
        more = f" and {len(backfills) - 5} more" if len(backfills) > 5 else ""
        print(
            f"warning: {len(backfills)} snapshot(s) were backfilled, fetched after a later session was "
            f"published: their past may carry adjustments made after their session: {named}{more}",
            file=sys.stderr,
        )
    return _emit(frame, output_format, output)


def read_factors(symbols: list[str], output_format: str, output: Path | None) -> int:
    """Print or write `LakeReader.adjustment_factors` of `symbols`."""
    try:
        frame = LakeReader(existing_lake()).adjustment_factors(symbols)
    except LakeReadError as error:
        return _refuse(str(error))
    return _emit(frame, output_format, output)


def run_sql(query: str, output_format: str, output: Path | None) -> int:
    """Print or write the result of `query` over the views of `market_assets.lake.sql`."""
    store = existing_lake()
    connection = connect(store.root)
    try:
        frame = connection.sql(query).df()
    except duckdb.CatalogException as error:
        return _refuse(f"the query failed: {_first_line(error)}; {_views(connection, store.root)}")
    except duckdb.Error as error:
        return _refuse(f"the query failed: {error}")
    return _emit(frame, output_format, output)


def _views(connection: duckdb.DuckDBPyConnection, root: str) -> str:
    """The views and tables a query can name, for a query that named another (an asset with
    nothing stored has no view)."""
    names = [row[0] for row in connection.sql("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
    return f"the lake at {root} has {', '.join(names)}"


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


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
    return REFUSED
