"""Parquet storage: guessable paths, round trips, and writes that never leave half a file."""

import io
import threading

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from market_assets.lake.errors import LakeWriteError
from market_assets.lake.fetch_record import FetchRecord
from market_assets.lake.store import ParquetStore


def _frame(close: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.to_datetime(["2026-11-19", "2026-11-20"]),
            "close": [close, close + 1],
            "volume": pd.array([1.5, None], dtype="Float64"),
        }
    )


def test_paths_follow_asset_date_and_symbol(tmp_path):
    store = ParquetStore(str(tmp_path))

    path = store.write("daily_bars", "2026-11-20|AAPL.US", _frame(10.0))

    assert path == f"{tmp_path}/daily_bars/session=2026-11-20/AAPL.US.parquet"
    back = store.read("daily_bars", "2026-11-20|AAPL.US")
    pd.testing.assert_frame_equal(back, _frame(10.0))
    assert store.exists("daily_bars", "2026-11-20|AAPL.US")
    assert not store.exists("daily_bars", "2026-11-20|MSFT.US")


def test_a_failed_write_keeps_the_previous_file_whole(tmp_path):
    store = ParquetStore(str(tmp_path))
    store.write("daily_bars", "2026-11-20|AAPL.US", _frame(10.0))
    unwritable = pd.DataFrame({"date": [pd.Timestamp("2026-11-20")], "close": [object()]})

    with pytest.raises(Exception):  # noqa: B017 - whatever pyarrow raises for a column it cannot write
        store.write("daily_bars", "2026-11-20|AAPL.US", unwritable)

    pd.testing.assert_frame_equal(store.read("daily_bars", "2026-11-20|AAPL.US"), _frame(10.0))
    assert [p.name for p in (tmp_path / "daily_bars" / "session=2026-11-20").iterdir()] == ["AAPL.US.parquet"]


def test_leftovers_of_killed_writes_are_removed_for_the_partitions_named_only(tmp_path):
    store = ParquetStore(str(tmp_path))
    store.write("daily_bars", "2026-11-20|AAPL.US", _frame(10.0))
    folder = tmp_path / "daily_bars" / "session=2026-11-20"
    left = folder / ".AAPL.US.parquet.8b493352a9774c2fae17c474e5d66903.tmp"
    kept = [folder / ".MSFT.US.parquet.20421c50e96241668439a06214175fa5.tmp", folder / ".AAPL.US.parquet.notes"]
    for path in (left, *kept):
        path.write_bytes(b"PAR1")

    removed = store.remove_leftovers("daily_bars", ["2026-11-20|AAPL.US", "2026-11-21|AAPL.US"])

    assert removed == [str(left)]
    assert sorted(path.name for path in folder.iterdir()) == sorted(["AAPL.US.parquet", *(path.name for path in kept)])
    pd.testing.assert_frame_equal(store.read("daily_bars", "2026-11-20|AAPL.US"), _frame(10.0))


def test_a_corrupt_file_is_named_in_the_error(tmp_path):
    store = ParquetStore(str(tmp_path))
    target = tmp_path / "daily_bars" / "session=2026-11-20" / "AAPL.US.parquet"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not parquet")

    with pytest.raises(ValueError, match=r"daily_bars\[2026-11-20\|AAPL.US\]: .*AAPL.US.parquet is not readable parquet"):
        store.read("daily_bars", "2026-11-20|AAPL.US")
    with pytest.raises(FileNotFoundError, match="nothing stored at .*MSFT.US.parquet"):
        store.read("daily_bars", "2026-11-20|MSFT.US")


@pytest.mark.parametrize("key", ["2026-11-20|../x", "2026-11-20|a/b", "2026-11-20|"])
def test_keys_that_would_escape_the_folder_are_refused(tmp_path, key):
    with pytest.raises(ValueError, match="cannot name a file"):
        ParquetStore(str(tmp_path)).path("daily_bars", key)


def test_fsspec_urls_work_as_roots():
    store = ParquetStore("memory://lake")

    store.write("weekly_bars", "2026-11-20|0005.HK", _frame(60.0))

    assert store.path("weekly_bars", "2026-11-20|0005.HK") == "memory://lake/weekly_bars/session=2026-11-20/0005.HK.parquet"
    pd.testing.assert_frame_equal(store.read("weekly_bars", "2026-11-20|0005.HK"), _frame(60.0))


def test_unpartitioned_assets_and_listing(tmp_path):
    store = ParquetStore(str(tmp_path))
    store.write("index_membership", None, _frame(1.0))
    for key in ["2026-11-20|NDX", "2026-11-19|DJI", "2026-11-20|DJI"]:
        store.write("index_composition", key, _frame(2.0))

    assert store.path("index_membership") == f"{tmp_path}/index_membership.parquet"
    pd.testing.assert_frame_equal(store.read("index_membership"), _frame(1.0))
    assert store.partition_keys("index_composition") == ["2026-11-19|DJI", "2026-11-20|DJI", "2026-11-20|NDX"]
    assert store.partition_keys("daily_bars") == []


@pytest.mark.parametrize("root", ["local", "memory://whole-asset"])
def test_an_asset_reads_as_one_frame_with_the_session_of_each_row(tmp_path, root):
    store = ParquetStore(str(tmp_path) if root == "local" else root)
    assert store.read_asset("index_composition").empty
    store.write("index_composition", "2026-11-19|DJI", pd.DataFrame({"index": ["DJI"], "symbol": ["AAPL.US"]}))
    two = pd.DataFrame({"index": ["DJI"] * 2, "symbol": ["AAPL.US", "MSFT.US"]})
    store.write("index_composition", "2026-11-20|DJI", two)

    frame = store.read_asset("index_composition").sort_values(["session", "symbol"], ignore_index=True)

    assert frame["session"].tolist() == pd.to_datetime(["2026-11-19", "2026-11-20", "2026-11-20"]).tolist()
    assert frame["symbol"].tolist() == ["AAPL.US", "AAPL.US", "MSFT.US"]


def test_a_kept_catalog_sees_every_write_at_once_even_within_one_clock_tick(tmp_path):
    store = ParquetStore(str(tmp_path))
    store.write("daily_bars", "2026-11-20|AAA.US", _frame(1.0))
    assert store.catalog("daily_bars").sessions_by_name == {"AAA.US": ["2026-11-20"]}

    for name in ("BBB.US", "CCC.US", "DDD.US"):  # quicker than the file system's clock
        store.write("daily_bars", f"2026-11-20|{name}", _frame(1.0))
        assert name in store.catalog("daily_bars").sessions_by_name
    store.write("daily_bars", "2026-11-23|AAA.US", _frame(1.0))
    kept = store.catalog("daily_bars")
    assert kept.sessions_by_name["AAA.US"] == ["2026-11-20", "2026-11-23"]
    assert kept.at_or_before("AAA.US", "2026-11-22") == ["2026-11-20"]
    # Rewriting a stored partition changes no listing: the catalog is kept.
    store.write("daily_bars", "2026-11-23|AAA.US", _frame(1.0))
    assert store.catalog("daily_bars") is kept


def test_concurrent_writes_of_the_same_bars_fetched_at_other_times_both_read_back(tmp_path):
    """Two closes of one session write the same bars with their own fetch records: each one's
    read-back accepts the other's file; other bars are still a failed write."""
    store = ParquetStore(str(tmp_path))
    key = "2026-11-20|AAPL.US"
    records = [FetchRecord(pd.Timestamp(f"2026-11-20 21:0{n}", tz="UTC"), pd.Timestamp("2026-11-20")) for n in range(2)]
    errors: list[Exception] = []
    start = threading.Barrier(2)

    def close(record: FetchRecord) -> None:
        start.wait()
        try:
            for _ in range(300):
                store.write("daily_bars", key, _frame(10.0), read_back=True, fetched=record)
        except LakeWriteError as error:
            errors.append(error)

    threads = [threading.Thread(target=close, args=(record,)) for record in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert store.fetch_record("daily_bars", key) in records
    with pytest.raises(LakeWriteError, match="reads back"):
        store._compare(store.file("daily_bars", key), _parquet(_frame(11.0)))


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return buffer.getvalue()
