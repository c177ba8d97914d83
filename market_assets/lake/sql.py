"""SQL over the lake: a DuckDB connection with a view per dataset and the point-in-time reads as
table macros, of the lake as listed when it was made. The views and macros:
docs/architecture.md#the-sql-views."""

from __future__ import annotations

import duckdb
import pandas as pd
from fsspec.implementations.local import LocalFileSystem

from market_assets import settings
from market_assets.lake.compacted import TAIL, Manifest
from market_assets.lake.datasets import ADJUSTMENT_EVENTS, INDEX_COMPOSITION, INDEX_MEMBERSHIP
from market_assets.lake.fetch_record import FOOTER_KEY
from market_assets.lake.reader import KINDS
from market_assets.lake.run_history import RUN_HISTORY
from market_assets.lake.store import SESSION_FOLDER, ParquetStore

_EMPTY_EVENTS = (
    "SELECT NULL::VARCHAR AS symbol, NULL::TIMESTAMP AS first_changed_date, NULL::TIMESTAMP AS last_changed_date, "
    "NULL::TIMESTAMP AS effective_date, NULL::DOUBLE AS ratio, NULL::BIGINT AS rows_changed, "
    "NULL::DOUBLE AS volume_ratio, NULL::DATE AS session WHERE false"
)

_FACTORS = """CREATE VIEW adjustment_factors AS
    SELECT symbol, effective_date, ratio, coalesce(volume_ratio, 1.0) AS volume_ratio, session AS known_since,
        exp(sum(ln(ratio)) OVER later) AS cumulative_factor,
        exp(sum(ln(coalesce(volume_ratio, 1.0))) OVER later) AS cumulative_volume_factor,
        as_traded_from
    FROM adjustment_events LEFT JOIN as_traded_from USING (symbol)
    WHERE effective_date IS NOT NULL
    WINDOW later AS (PARTITION BY symbol ORDER BY effective_date DESC ROWS UNBOUNDED PRECEDING)"""
"""`market_assets.domain.price_factors.adjustment_factors` in SQL, with each symbol's `as_traded_from`."""

_REPRICED = """CREATE MACRO daily_bars_{name} AS TABLE
    WITH b AS (SELECT * FROM daily_bars_as_of(s)),
    k AS (SELECT b.symbol, b.date, exp(sum({sign} * ln(e.ratio))) AS f,
                 exp(sum({sign} * ln(coalesce(e.volume_ratio, 1.0)))) AS fv
          FROM b JOIN adjustment_events e ON e.symbol = b.symbol AND e.effective_date > b.date
          GROUP BY b.symbol, b.date)
    SELECT b.* REPLACE (
        {known} b.open * coalesce(k.f, 1) END AS open, {known} b.high * coalesce(k.f, 1) END AS high,
        {known} b.low * coalesce(k.f, 1) END AS low, {known} b.close * coalesce(k.f, 1) END AS close,
        {known} b.volume * coalesce(k.fv, 1) END AS volume), a.as_traded_from
    FROM b LEFT JOIN k ON k.symbol = b.symbol AND k.date = b.date
    LEFT JOIN as_traded_from a ON a.symbol = b.symbol"""
"""The daily bars of each symbol's snapshot as of session `s`, repriced bar by bar by the recorded
events taking effect after the bar (`market_assets.domain.price_factors.repriced`)."""

_AS_TRADED = _REPRICED.format(
    name="as_traded(s)",
    sign="CASE WHEN e.session <= b.session THEN 1 ELSE 0 END",
    known="CASE WHEN b.date >= a.as_traded_from THEN",
)
"""Prices as traded: undo every event known by the snapshot; none before the first live snapshot."""

_ADJUSTED_AS_OF = _REPRICED.format(
    name="adjusted_as_of(s, d)",
    sign="""CASE WHEN e.session <= b.session AND e.session > CAST(d AS DATE) THEN 1
                      WHEN e.session > b.session AND e.session <= CAST(d AS DATE) THEN -1 ELSE 0 END""",
    known="CASE WHEN CAST(d AS DATE) >= a.as_traded_from THEN",
)
"""Prices adjusted as of day `d`: undo the events known by the snapshot and not by `d`, apply those
known by `d` and not by the snapshot; none when `d` is before the symbol's first live snapshot."""


def _every_snapshot(connection: duckdb.DuckDBPyConnection, manifest: Manifest, asset: str) -> str:
    """The query of every snapshot of `asset`: the stored files' rows, and each compacted
    snapshot rebuilt as the store rebuilds it (its source's first rows, then its tail)."""
    stored = f"SELECT * EXCLUDE (file_row_number) FROM {asset}_files"
    entries = manifest.entries.reset_index(drop=True)
    if entries.empty:
        return stored
    heads = entries[["session", "symbol", "source_session", "rows"]].astype(
        {"session": "datetime64[ns]", "source_session": "datetime64[ns]"}
    )
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
    connection.execute(
        f"CREATE TABLE {asset}_tails AS SELECT * REPLACE (CAST(session AS DATE) AS session) FROM {asset}_tails_frame"
    )
    connection.unregister(f"{asset}_tails_frame")
    return f"{query}\n        UNION ALL BY NAME SELECT * FROM {asset}_tails"


def _fetch_records(connection: duckdb.DuckDBPyConnection, store: ParquetStore, kind: str, files: str) -> pd.DataFrame:
    """When each stored snapshot of `kind` was fetched (UTC, naive) and through which date its
    answer held bars: from the files' footers (`files`, a glob) and the compacted entries."""
    asset = KINDS[kind]
    entries = store.manifest(asset).entries
    compacted = pd.DataFrame(
        {
            "symbol": entries["symbol"].astype(str),
            "session": pd.to_datetime(entries["session"]).astype("datetime64[ns]"),
            "fetched_at": entries["fetched_at"].dt.tz_localize(None),
            "through": entries["through"],
        }
    )
    try:
        footers = connection.execute(
            f"""SELECT regexp_extract(file_name, 'session=([0-9-]+)/', 1) AS session,
            regexp_extract(file_name, '([^/]+)\\.parquet$', 1) AS symbol,
            json_extract_string(decode(value), '$.fetched_at') AS fetched_at,
            json_extract_string(decode(value), '$.through') AS through
            FROM parquet_kv_metadata({files}) WHERE key = ?""",
            [FOOTER_KEY],
        ).df()
    except duckdb.IOException:  # no file matches: every snapshot is compacted, or none is stored
        footers = pd.DataFrame(columns=["session", "symbol", "fetched_at", "through"])
    footers = footers.assign(
        session=pd.to_datetime(footers["session"]).astype("datetime64[ns]"),
        fetched_at=pd.to_datetime(footers["fetched_at"], utc=True).dt.tz_localize(None),
        through=pd.to_datetime(footers["through"]).astype("datetime64[ns]"),
    )
    # A snapshot both compacted and still in its file (a compaction under way) is listed once.
    both = pd.concat([footers, compacted], ignore_index=True).drop_duplicates(["session", "symbol"])
    return both.assign(kind=kind)


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
    records = pd.concat([_fetch_records(connection, store, kind, files(asset)) for kind, asset in KINDS.items()])
    connection.register("listed_snapshots", listed.merge(records, how="left", on=["kind", "symbol", "session"]))
    connection.execute(
        """CREATE TABLE lake_snapshots AS SELECT kind, symbol, CAST(session AS DATE) AS session,
        CAST(fetched_at AS TIMESTAMP) AS fetched_at, through > session AS backfilled FROM listed_snapshots"""
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
        for name, last, fetched in (
            ("as_of(s)", "CAST(s AS DATE)", "true"),
            # A snapshot is fetched after its session's close: no later session can have been known.
            ("known_at(t)", "CAST(t AS DATE)", "fetched_at <= CAST(t AS TIMESTAMP)"),
        ):
            connection.execute(
                f"""CREATE MACRO {asset}_{name} AS TABLE
                SELECT b.*, chosen.fetched_at, chosen.backfilled FROM {asset} b
                JOIN (SELECT symbol, arg_max(session, session) AS session, arg_max(fetched_at, session) AS fetched_at,
                             arg_max(backfilled, session) AS backfilled
                      FROM lake_snapshots WHERE kind = '{kind}' AND session <= {last} AND {fetched} GROUP BY symbol) chosen
                  ON b.symbol = chosen.symbol AND b.session = chosen.session
                WHERE b.session <= {last}"""
            )
    if store.stored_sessions(INDEX_COMPOSITION):
        connection.execute(f"CREATE VIEW {INDEX_COMPOSITION} AS SELECT * FROM {read(files(INDEX_COMPOSITION))}")
    events = ADJUSTMENT_EVENTS
    source = f"SELECT * FROM {read(files(events))}" if store.stored_sessions(events) else _EMPTY_EVENTS
    connection.execute(f"CREATE VIEW {events} AS {source}")
    if "volume_ratio" not in connection.sql(f"SELECT * FROM {events} LIMIT 0").columns:  # written before it was kept
        connection.execute(f"CREATE OR REPLACE VIEW {events} AS SELECT *, NULL::DOUBLE AS volume_ratio FROM ({source})")
    connection.execute(
        """CREATE VIEW as_traded_from AS SELECT symbol, min(session) AS as_traded_from FROM lake_snapshots
        WHERE kind = 'daily' AND backfilled IS NOT TRUE GROUP BY symbol"""
    )
    connection.execute(_FACTORS)
    if "daily" in {kind for kind, _, _ in snapshots}:
        connection.execute(_AS_TRADED)
        connection.execute(_ADJUSTED_AS_OF)
    if store.stored_sessions(RUN_HISTORY):
        connection.execute(f"CREATE VIEW {RUN_HISTORY} AS SELECT * FROM {read(files(RUN_HISTORY))}")
    if store.exists(INDEX_MEMBERSHIP):
        membership = f"'{prefix}{store.asset_folder(INDEX_MEMBERSHIP)}.parquet'"
        connection.execute(f"CREATE VIEW {INDEX_MEMBERSHIP} AS SELECT * FROM read_parquet({membership})")
    return connection
