"""SQL over the lake: a DuckDB connection with a view per asset and the point-in-time questions
as table macros.

Views (each row of a bars view also has the `session` of its snapshot):

- `daily_bars`, `weekly_bars`, `monthly_bars`: every stored snapshot, the compacted ones rebuilt
  as the store rebuilds them (`*_files`: only the rows of the files that remain);
- `latest_daily_bars`, `latest_weekly_bars`, `latest_monthly_bars`: each symbol's newest snapshot;
- `daily_bars_as_of(s)`, `weekly_bars_as_of(s)`, `monthly_bars_as_of(s)`: each symbol's snapshot
  of session `s`, or its newest before `s` (what was known after that close);
- `index_composition`, `index_membership`, `adjustment_events`;
- `run_history`: the runs the instance no longer holds (`market_assets/lake/run_history.py`), one
  row per run with the `session` it loaded;
- `lake_snapshots(kind, symbol, session)`: which snapshots are stored.

The views are of the lake as listed when the connection was made: connect again to see a later
close. Only what DuckDB's wheel holds is used (parquet is built in; no extension is downloaded),
and an object-store root is read through its fsspec filesystem.
"""

from __future__ import annotations

import duckdb
import pandas as pd
from fsspec.implementations.local import LocalFileSystem

from market_assets import settings
from market_assets.lake.compacted import TAIL, Manifest
from market_assets.lake.reader import COMPOSITIONS, KINDS
from market_assets.lake.run_history import RUN_HISTORY
from market_assets.lake.store import SESSION_FOLDER, ParquetStore

_EMPTY_EVENTS = (
    "SELECT NULL::VARCHAR AS symbol, NULL::TIMESTAMP AS first_changed_date, NULL::TIMESTAMP AS last_changed_date, "
    "NULL::TIMESTAMP AS effective_date, NULL::DOUBLE AS ratio, NULL::BIGINT AS rows_changed, NULL::DATE AS session "
    "WHERE false"
)


def _every_snapshot(connection: duckdb.DuckDBPyConnection, manifest: Manifest, asset: str) -> str:
    """The query of every snapshot of `asset`: the stored files' rows, and each compacted
    snapshot rebuilt as the store rebuilds it (its source's first rows, then its tail)."""
    stored = f"SELECT * EXCLUDE (file_row_number) FROM {asset}_files"
    entries = manifest.entries.reset_index(drop=True)
    if entries.empty:
        return stored
    heads = entries[["session", "symbol", "source_session", "rows"]].astype({"session": "datetime64[ns]",
                                                                          "source_session": "datetime64[ns]"})
    connection.register(f"{asset}_heads_frame", heads)
    connection.execute(f"""CREATE TABLE {asset}_compacted AS SELECT CAST(session AS DATE) AS session, symbol,
        CAST(source_session AS DATE) AS source_session, rows FROM {asset}_heads_frame""")
    connection.unregister(f"{asset}_heads_frame")
    query = f"""{stored}
        UNION ALL BY NAME
        SELECT f.* EXCLUDE (file_row_number, session), c.session FROM {asset}_files f
        JOIN {asset}_compacted c ON f.symbol = c.symbol AND f.session = c.source_session AND f.file_row_number < c.rows"""
    with_tail = entries[entries["has_tail"].astype(bool)]
    if with_tail.empty:
        return query
    tails = with_tail[[column for column in with_tail.columns if column.startswith(TAIL)]]
    tails = tails.rename(columns=lambda column: column[len(TAIL) :]).assign(
        session=pd.to_datetime(with_tail["session"]).astype("datetime64[ns]")
    )
    connection.register(f"{asset}_tails_frame", tails)
    connection.execute(f"CREATE TABLE {asset}_tails AS SELECT * REPLACE (CAST(session AS DATE) AS session) FROM {asset}_tails_frame")
    connection.unregister(f"{asset}_tails_frame")
    return f"{query}\n        UNION ALL BY NAME SELECT * FROM {asset}_tails"


def connect(root: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection over the lake at `root` (default `$MARKET_ASSETS_DATA_ROOT`)."""
    store = ParquetStore(root or settings.DATA_ROOT.value())
    connection = duckdb.connect()
    fs = store.filesystem
    prefix = ""
    if not isinstance(fs, LocalFileSystem):
        connection.register_filesystem(fs)
        prefix = f"{fs.protocol[0] if isinstance(fs.protocol, tuple) else fs.protocol}://"

    def files(asset: str) -> str:
        return f"'{prefix}{store.asset_folder(asset)}/{SESSION_FOLDER}*/*.parquet'"

    def read(source: str, row_numbers: bool = False) -> str:
        options = "hive_partitioning = true, hive_types = {'session': DATE}, union_by_name = true"
        return f"read_parquet({source}, {options}{', file_row_number = true' if row_numbers else ''})"

    # One listing of every snapshot (files and compacted), for `lake_snapshots` and the newest of each symbol.
    snapshots = [
        (kind, symbol, session)
        for kind, asset in KINDS.items()
        for session in store.stored_sessions(asset)
        for symbol in store.stored_names(asset, session)
    ]
    listed = pd.DataFrame(snapshots, columns=["kind", "symbol", "session"]).astype({"session": "datetime64[ns]"})
    connection.register("listed_snapshots", listed)
    connection.execute(
        "CREATE TABLE lake_snapshots AS SELECT kind, symbol, CAST(session AS DATE) AS session FROM listed_snapshots"
    )
    connection.unregister("listed_snapshots")

    for kind, asset in KINDS.items():
        # Sessions are listed oldest first, so the last one seen of a symbol is its newest snapshot,
        # which compaction never removes.
        newest = {symbol: session for listed_kind, symbol, session in snapshots if listed_kind == kind}
        if not newest:
            continue
        connection.execute(f"CREATE VIEW {asset}_files AS SELECT * FROM {read(files(asset), row_numbers=True)}")
        connection.execute(f"CREATE VIEW {asset} AS {_every_snapshot(connection, store.manifest(asset), asset)}")
        paths = ", ".join(f"'{prefix}{store.file(asset, f'{session}|{symbol}')}'" for symbol, session in newest.items())
        connection.execute(f"CREATE VIEW latest_{asset} AS SELECT * FROM {read(f'[{paths}]')}")
        connection.execute(
            f"""CREATE MACRO {asset}_as_of(s) AS TABLE
            SELECT b.* FROM {asset} b
            JOIN (SELECT symbol, max(session) AS session FROM lake_snapshots
                  WHERE kind = '{kind}' AND session <= CAST(s AS DATE) GROUP BY symbol) chosen
              ON b.symbol = chosen.symbol AND b.session = chosen.session
            WHERE b.session <= CAST(s AS DATE)"""
        )
    if store.stored_sessions(COMPOSITIONS):
        connection.execute(f"CREATE VIEW {COMPOSITIONS} AS SELECT * FROM {read(files(COMPOSITIONS))}")
    events = "adjustment_events"
    source = f"SELECT * FROM {read(files(events))}" if store.stored_sessions(events) else _EMPTY_EVENTS
    connection.execute(f"CREATE VIEW {events} AS {source}")
    if store.stored_sessions(RUN_HISTORY):
        connection.execute(f"CREATE VIEW {RUN_HISTORY} AS SELECT * FROM {read(files(RUN_HISTORY))}")
    if store.exists("index_membership"):
        membership = f"'{prefix}{store.asset_folder('index_membership')}.parquet'"
        connection.execute(f"CREATE VIEW index_membership AS SELECT * FROM read_parquet({membership})")
    return connection
