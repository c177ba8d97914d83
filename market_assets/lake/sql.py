"""SQL over the lake: a DuckDB connection with a view per asset and the point-in-time questions
as table macros.

Views (each row of a bars view also has the `session` of its snapshot):

- `daily_bars`, `weekly_bars`, `monthly_bars`: every stored snapshot;
- `latest_daily_bars`, `latest_weekly_bars`, `latest_monthly_bars`: each symbol's newest snapshot;
- `daily_bars_as_of(s)`, `weekly_bars_as_of(s)`, `monthly_bars_as_of(s)`: each symbol's snapshot
  of session `s`, or its newest before `s` (what was known after that close);
- `index_composition`, `index_membership`, `adjustment_events`;
- `lake_snapshots(kind, symbol, session)`: which snapshots are stored.

The views are of the lake as listed when the connection was made: connect again to see a later
close. Only what DuckDB's wheel holds is used (parquet is built in; no extension is downloaded),
and an object-store root is read through its fsspec filesystem.
"""

from __future__ import annotations

import duckdb
import pandas as pd
from fsspec.implementations.local import LocalFileSystem

from market_assets.lake.reader import COMPOSITIONS, KINDS, LakeReader
from market_assets.lake.store import SESSION_FOLDER

_EMPTY_EVENTS = (
    "SELECT NULL::VARCHAR AS symbol, NULL::TIMESTAMP AS first_changed_date, NULL::TIMESTAMP AS last_changed_date, "
    "NULL::TIMESTAMP AS effective_date, NULL::DOUBLE AS ratio, NULL::BIGINT AS rows_changed, NULL::DATE AS session "
    "WHERE false"
)


def connect(root: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection over the lake at `root` (default `$MARKET_ASSETS_DATA_ROOT`)."""
    reader = LakeReader(root)
    store = reader.store
    connection = duckdb.connect()
    fs = store.filesystem
    prefix = ""
    if not isinstance(fs, LocalFileSystem):
        connection.register_filesystem(fs)
        prefix = f"{fs.protocol[0] if isinstance(fs.protocol, tuple) else fs.protocol}://"

    def files(asset: str) -> str:
        return f"'{prefix}{store.asset_folder(asset)}/{SESSION_FOLDER}*/*.parquet'"

    def read(source: str) -> str:
        return (
            f"read_parquet({source}, hive_partitioning = true, hive_types = {{'session': DATE}}, union_by_name = true)"
        )

    snapshots = []
    for kind, asset in KINDS.items():
        for session in store.stored_sessions(asset):
            snapshots += [(kind, symbol, session) for symbol in store.stored_names(asset, session)]
    listed = pd.DataFrame(snapshots, columns=["kind", "symbol", "session"]).astype({"session": "datetime64[ns]"})
    connection.register("listed_snapshots", listed)
    connection.execute(
        "CREATE TABLE lake_snapshots AS SELECT kind, symbol, CAST(session AS DATE) AS session FROM listed_snapshots"
    )
    connection.unregister("listed_snapshots")

    for kind, asset in KINDS.items():
        if not store.stored_sessions(asset):
            continue
        connection.execute(f"CREATE VIEW {asset} AS SELECT * FROM {read(files(asset))}")
        newest = reader.snapshots(kind)
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
    if store.exists("index_membership"):
        membership = f"'{prefix}{store.asset_folder('index_membership')}.parquet'"
        connection.execute(f"CREATE VIEW index_membership AS SELECT * FROM read_parquet({membership})")
    return connection
