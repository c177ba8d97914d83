"""The lake on an S3-compatible object store (moto's server on loopback): a close writes there,
a killed writer leaves no half-written or temporary object, and the reader and DuckDB read it."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

import boto3
import pandas as pd
import pytest

from market_assets.cli.close import CloseFailed, close_index
from market_assets.domain.exchange_sessions import calendar
from market_assets.lake.compaction import compact
from market_assets.lake.fetch_record import FetchRecord
from market_assets.lake.reader import SNAPSHOT_COLUMNS, LakeReader
from market_assets.lake.sql import connect
from market_assets.lake.store import ParquetStore
from market_assets_tests.lake_files import assert_same_bars, bars_frames
from market_assets_tests.object_store import CREDENTIALS, FaultyObjectStore, s3_server
from market_assets_tests.universe import last_session


@pytest.fixture(scope="module")
def faulty_store():
    """An S3-compatible server on loopback behind a proxy that fails uploads on demand (healthy
    unless a test says otherwise)."""
    with s3_server() as endpoint, FaultyObjectStore(endpoint) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def object_store(faulty_store):
    """The environment that points boto3, s3fs and so the lake at the object store."""
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL": faulty_store.url}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def bucket(object_store, request):
    """A fresh bucket of the test's own."""
    name = f"{request.node.name.lower().replace('_', '-')[:40].strip('-')}-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def _objects(bucket: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def _bars(rows: int, close: float) -> pd.DataFrame:
    dates = pd.date_range("1990-01-01", periods=rows, freq="D")
    prices = [close + i * 1e-6 for i in range(rows)]
    return pd.DataFrame(
        {
            "symbol": "AAPL.US",
            "date": dates,
            "open": prices,
            "high": prices,
            "low": prices,
            "close": prices,
            "volume": [float(i) for i in range(rows)],
        }
    )


def test_a_close_writes_the_lake_into_the_bucket_and_the_readers_read_it(
    object_store, bucket, platform_factory, synthetic_universe
):
    root = f"s3://{bucket}/lake"
    platform = platform_factory(MARKET_ASSETS_DATA_ROOT=root)
    session = last_session(synthetic_universe, "XNYS")
    members = synthetic_universe.members("DJI", session)

    close_index(platform.instance, "DJI", session)

    store = ParquetStore(root)
    assert len(store.partition_keys("daily_bars")) == len(members)
    assert f"lake/daily_bars/session={session}/{members[0]}.parquet" in _objects(bucket)
    daily = LakeReader(root).bars("daily", index="DJI")
    assert sorted(set(daily["symbol"])) == sorted(members)
    own = daily[daily["symbol"] == members[0]].drop(columns=list(SNAPSHOT_COLUMNS)).reset_index(drop=True)
    pd.testing.assert_frame_equal(own, store.read("daily_bars", f"{session}|{members[0]}"))
    counted = connect(root).sql("SELECT count(*), count(DISTINCT symbol) FROM latest_weekly_bars").fetchall()[0]
    assert counted == (
        sum(len(store.read("weekly_bars", key)) for key in store.partition_keys("weekly_bars")),
        len(members),
    )


def test_a_replaced_object_is_whole_and_nothing_temporary_is_left(object_store, bucket):
    store = ParquetStore(f"s3://{bucket}/lake")
    key = "2026-11-20|AAPL.US"
    store.write("daily_bars", key, _bars(10, 1.0))
    store.write("daily_bars", key, _bars(20, 2.0))

    pd.testing.assert_frame_equal(store.read("daily_bars", key), _bars(20, 2.0))
    assert _objects(bucket) == ["lake/daily_bars/session=2026-11-20/AAPL.US.parquet"]


_WRITER = """
import sys, time
import pandas as pd
from market_assets.lake.store import ParquetStore
from market_assets_tests.lake.test_object_store import _bars
store = ParquetStore(sys.argv[1])
frame = _bars(int(sys.argv[2]), 3.0)
print("writing", flush=True)
while True:
    store.write("daily_bars", "2026-11-20|AAPL.US", frame)
"""


def test_a_writer_killed_mid_upload_leaves_the_previous_object_whole(object_store, bucket):
    """Uploads of several parts (a 40 MB snapshot; s3fs sends 5 MB parts) killed at several points."""
    root = f"s3://{bucket}/lake"
    store = ParquetStore(root)
    key = "2026-11-20|AAPL.US"
    before = _bars(1_000, 1.0)
    store.write("daily_bars", key, before)
    env = {**os.environ, **object_store}
    for delay in (0.2, 0.6, 1.2):
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, root, "1500000"], env=env, stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "writing"
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)

        stored = store.read("daily_bars", key)
        assert len(stored) in (len(before), 1_500_000), delay  # the previous object, or a whole new one
        assert _objects(bucket) == ["lake/daily_bars/session=2026-11-20/AAPL.US.parquet"]
        uploads = boto3.client("s3").list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        assert all(upload["Key"] == "lake/daily_bars/session=2026-11-20/AAPL.US.parquet" for upload in uploads)


def test_a_read_while_writers_replace_the_object_sees_the_old_or_the_new_one(object_store, bucket):
    """An object replaced between a read's first request and its last (s3fs tells it by the ETag)
    is read again, rather than told unreadable: the whole object, and its footer's fetch record
    alone (a knowledge-time read)."""
    store = ParquetStore(f"s3://{bucket}/lake")
    key = "2026-11-20|AAPL.US"
    versions = [_bars(20_000, 1.0), _bars(20_000, 2.0)]
    records = [FetchRecord(pd.Timestamp(f"2026-11-20 2{hour}:00", tz="UTC"), pd.Timestamp("2026-11-20")) for hour in (1, 2)]
    store.write("daily_bars", key, versions[0], fetched=records[0])
    stop = threading.Event()

    def replace() -> None:
        writer = ParquetStore(f"s3://{bucket}/lake")
        number = 0
        while not stop.is_set():
            number += 1
            writer.write("daily_bars", key, versions[number % 2], fetched=records[number % 2])
            time.sleep(0.1)

    replacing = threading.Thread(target=replace)
    replacing.start()
    try:
        reads = [(store.read("daily_bars", key), store.fetch_record("daily_bars", key)) for _ in range(150)]
    finally:
        stop.set()
        replacing.join()
    for number, (read, record) in enumerate(reads):
        assert read.equals(versions[0]) or read.equals(versions[1]), number
        assert record in records, number


def test_compaction_in_the_bucket_removes_objects_and_everything_reads_back(object_store, bucket):
    store = ParquetStore(f"s3://{bucket}/lake")
    history = _bars(300, 5.0)
    sessions = ["2026-11-25", "2026-11-26", "2026-11-27"]
    written = {}
    for number, session in enumerate(sessions):
        key = f"{session}|AAPL.US"
        written[key] = history.iloc[: 298 + number].reset_index(drop=True)
        store.write("daily_bars", key, written[key])

    report = compact(store)

    assert report.removed["daily_bars"] == 2
    assert _objects(bucket) == ["lake/_compacted/daily_bars.parquet", "lake/daily_bars/session=2026-11-27/AAPL.US.parquet"]
    fresh = ParquetStore(f"s3://{bucket}/lake")
    for key, frame in written.items():
        assert fresh.read("daily_bars", key).equals(frame), key
    as_of = connect(fresh.root).sql("SELECT count(*) FROM daily_bars_as_of('2026-11-25')").fetchall()[0][0]
    assert as_of == 298


@pytest.fixture
def quick_timeouts(monkeypatch):
    """The lake's S3 client set to give up on a request after a second and one attempt, so that an
    outage is told in seconds: botocore's timeouts and attempts through fsspec's configuration
    (`FSSPEC_S3` in a deployment), s3fs's own retries (a class attribute, five by default) here."""
    import fsspec.config
    import s3fs

    monkeypatch.setitem(
        fsspec.config.conf,
        "s3",
        {"config_kwargs": {"read_timeout": 1, "connect_timeout": 1, "retries": {"max_attempts": 1}}},
    )
    monkeypatch.setattr(s3fs.S3FileSystem, "retries", 1)


@pytest.mark.parametrize(
    ("fault", "says"), [("error", "Please reduce your request rate"), ("hang", "Read timeout")], ids=["errors", "timeouts"]
)
def test_an_object_store_failing_mid_close_is_named_loses_nothing_and_a_rerun_completes(
    object_store, faulty_store, bucket, quick_timeouts, platform_factory, synthetic_universe, dji_reference, fault, says
):
    root = f"s3://{bucket}/lake"
    platform = platform_factory(MARKET_ASSETS_DATA_ROOT=root)
    store = ParquetStore(root)
    session = last_session(synthetic_universe, "XNYS")
    earlier = f"{calendar('XNYS').previous_session(session):%Y-%m-%d}"
    close_index(platform.instance, "DJI", earlier)
    stored_before = bars_frames(store, earlier)

    faulty_store.fail(fault, after=10)  # the composition and some daily bars go in, then nothing
    try:
        with pytest.raises(CloseFailed) as caught:
            close_index(platform.instance, "DJI", session)
    finally:
        faulty_store.heal()

    message = str(caught.value)
    # Each symbol's three files are written as it is built: the first refused may be any of them.
    assert re.search(rf"cannot write s3://{bucket}/lake/(daily|weekly|monthly)_bars/session={session}/", message), message
    assert says in message and "retrying may help" in message
    assert "the partition's previous file, if any, is still in place" in message
    assert faulty_store.faults > 0
    assert_same_bars(bars_frames(store, earlier), stored_before)
    stored = bars_frames(store, session)  # every object there reads back whole
    assert 0 < len(stored) < len(dji_reference)
    assert all(frame.equals(dji_reference[path]) for path, frame in stored.items())

    close_index(platform.instance, "DJI", session)

    assert_same_bars(bars_frames(ParquetStore(root), session), dji_reference)


def test_uploads_timing_out_for_a_while_are_retried_and_the_close_completes_by_itself(
    object_store, faulty_store, bucket, quick_timeouts, platform_factory, synthetic_universe, dji_reference
):
    root = f"s3://{bucket}/lake"
    platform = platform_factory(MARKET_ASSETS_DATA_ROOT=root)
    faulty_store.fail("hang", after=5, count=2)

    close_index(platform.instance, "DJI", last_session(synthetic_universe, "XNYS"))

    assert faulty_store.faults == 2
    assert_same_bars(bars_frames(ParquetStore(root)), dji_reference)
