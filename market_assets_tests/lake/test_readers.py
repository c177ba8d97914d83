"""The lake read as one table per asset by pyarrow, polars and DuckDB: the Hive-style session
folders give every row its `session`, the files give its `symbol`."""

import duckdb
import pandas as pd
import polars as pl
import pyarrow.dataset as ds
import pytest

from market_assets.cli.close import close_index
from market_assets_tests.universe import last_session


@pytest.fixture
def closed(platform, synthetic_universe):
    """A DJI and an HSI close of their latest sessions: two session folders, two exchanges."""
    sessions = {index: last_session(synthetic_universe, exchange) for index, exchange in (("DJI", "XNYS"), ("HSI", "XHKG"))}
    for index, session in sessions.items():
        close_index(platform.instance, index, session)
    return platform, sessions


def _expected(store, asset: str) -> pd.DataFrame:
    """Every stored row of `asset` with its session and symbol, read file by file."""
    frames = []
    for key in store.partition_keys(asset):
        session, symbol = key.split("|")
        frame = store.read(asset, key)
        assert (frame["symbol"] == symbol).all(), key
        frames.append(frame.assign(session=session))
    return pd.concat(frames, ignore_index=True)


def _rows(frame: pd.DataFrame) -> list[tuple]:
    return sorted(zip(frame["session"].astype(str), frame["symbol"].astype(str), frame["date"].astype(str)))


def test_pyarrow_polars_and_duckdb_give_session_and_symbol_for_every_row(closed):
    platform, sessions = closed
    for asset in ("daily_bars", "weekly_bars", "monthly_bars"):
        folder = f"{platform.store.root}/{asset}"
        expected = _expected(platform.store, asset)
        assert set(expected["session"]) == set(sessions.values())

        by_pyarrow = ds.dataset(folder, partitioning="hive").to_table().to_pandas()
        by_polars = pl.scan_parquet(folder, hive_partitioning=True).collect().to_pandas()
        by_duckdb = duckdb.sql(f"SELECT * FROM read_parquet('{folder}/*/*.parquet', hive_partitioning = true)").df()

        for reader, frame in (("pyarrow", by_pyarrow), ("polars", by_polars), ("duckdb", by_duckdb)):
            assert _rows(frame) == _rows(expected), (asset, reader)
            assert set(frame.columns) == set(expected.columns), (asset, reader)

    # Every weekly bar, in SQL, is dated by the Sunday that ends its Monday-to-Sunday week.
    root = platform.store.root
    mismatched = duckdb.sql(
        f"""
        SELECT w.symbol, w.date FROM read_parquet('{root}/weekly_bars/*/*.parquet', hive_partitioning = true) w
        WHERE dayofweek(w.date) <> 0 OR w.period_end <> w.date
           OR w.date - w.period_start <> INTERVAL 6 DAY OR w.last_session > w.period_end
        """
    ).fetchall()
    assert mismatched == []
    count = duckdb.sql(f"SELECT count(*) FROM read_parquet('{root}/weekly_bars/*/*.parquet')").fetchall()[0][0]
    assert count == len(_expected(platform.store, "weekly_bars"))
