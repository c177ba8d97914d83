"""Compaction: what can be rebuilt from another snapshot leaves the disk, everything still reads
back exactly as written (through the store, the reader and SQL), even after a compaction killed
at three points, and a snapshot written again later keeps what was rebuilt from it."""

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from market_assets import definitions
from market_assets.cli.close import close_index
from market_assets.domain.exchange_sessions import calendar
from market_assets.lake.compaction import compact
from market_assets.lake.datasets import BARS
from market_assets.lake.reader import SNAPSHOT_COLUMNS, LakeReader
from market_assets.lake.sql import connect
from market_assets.lake.store import ParquetStore
from market_assets_tests.platform import open_platform
from stooq_server import StooqServer, generate_synthetic


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Four DJI closes, with quarterly dividends in the data set (one of them at the third close)
    and a 2-for-1 split of another member at the third: the lake, every frame in it, and the
    snapshots no compaction may remove."""
    folder = tmp_path_factory.mktemp("compaction")
    universe = generate_synthetic(
        folder / "stooq", first_session="2019-01-02", sizes={"DJI": 4, "NDX": 1, "HSI": 1}, dividends=True
    )
    last = universe.last_session["XNYS"]
    sessions = [f"{day:%Y-%m-%d}" for day in calendar("XNYS").sessions_window(last, -4)]
    members = universe.members("DJI", sessions[-1])
    paying = set(universe.dividends.loc[universe.dividends["date"] == pd.Timestamp(sessions[2]), "symbol"])
    splitting = next(symbol for symbol in members if symbol not in paying)
    assert paying & set(members), "the data set has a dividend at the third close"
    monkeypatch = pytest.MonkeyPatch()
    server = StooqServer(universe.data_dir).start()
    try:
        with open_platform(folder, monkeypatch, server) as platform:
            for number, session in enumerate(sessions):
                if number == 2:
                    with open(universe.data_dir / "splits.csv", "a") as splits:
                        splits.write(f"{splitting},{session},2\n")
                    server.reload()
                server.as_of = session
                close_index(platform.instance, "DJI", session)
    finally:
        server.stop()
        monkeypatch.undo()
    store = ParquetStore(str(folder / "lake"))
    frames = {(asset, key): store.read(asset, key) for asset in BARS for key in store.partition_keys(asset)}
    # What a compaction must keep: each symbol's newest snapshot, and the last before each rewrite.
    rewritten = {splitting} | (paying & set(members))
    kept = {f"{sessions[-1]}|{symbol}" for symbol in members} | {f"{sessions[1]}|{symbol}" for symbol in rewritten}
    return {"root": folder / "lake", "frames": frames, "sessions": sessions, "splitting": splitting, "kept": kept}


@pytest.fixture
def lake(written, tmp_path):
    """A copy of the written lake for the test to compact."""
    root = tmp_path / "lake"
    shutil.copytree(written["root"], root)
    return ParquetStore(str(root))


def _assert_reads_as_written(store: ParquetStore, written) -> None:
    for asset in BARS:
        assert store.partition_keys(asset) == sorted(key for a, key in written["frames"] if a == asset), asset
    for (asset, key), frame in written["frames"].items():
        assert store.read(asset, key).equals(frame), (asset, key)


def _size(root: Path) -> int:
    return sum(path.stat().st_size for asset in BARS for path in (root / asset).rglob("*.parquet"))


def test_compaction_keeps_the_newest_and_the_last_snapshot_before_the_split(lake, written):
    before = _size(Path(lake.root))

    report = compact(lake)

    kept = set(lake.file_keys("daily_bars"))
    assert kept == written["kept"]  # the dividend and the split at the third close rewrote the past
    assert report.removed["daily_bars"] == len(written["frames"]) // 3 - len(kept)
    assert all(report.removed[asset] > 0 for asset in BARS)
    _assert_reads_as_written(lake, written)
    assert _size(Path(lake.root)) < before / 2
    assert compact(lake).removed == {asset: 0 for asset in BARS}  # nothing more to remove


def test_the_reader_and_sql_give_every_session_as_it_was_written(lake, written):
    compact(lake)
    reader, sql = LakeReader(lake), connect(lake.root)
    for session in written["sessions"]:
        for kind, asset in (("daily", "daily_bars"), ("weekly", "weekly_bars"), ("monthly", "monthly_bars")):
            read = reader.bars(kind, as_of=session)
            queried = sql.sql(f"SELECT * FROM {asset}_as_of('{session}')").df()
            for symbol in set(read["symbol"]):
                expected = written["frames"][asset, f"{session}|{symbol}"]
                ours = read[read["symbol"] == symbol].drop(columns=list(SNAPSHOT_COLUMNS)).reset_index(drop=True)
                assert ours.equals(expected), (asset, session, symbol)
                theirs = queried[queried["symbol"] == symbol].sort_values("date").reset_index(drop=True)
                assert len(theirs) == len(expected), (asset, session, symbol)
                assert (theirs["close"].to_numpy() == expected["close"].to_numpy()).all(), (asset, session, symbol)
                assert (theirs["date"].to_numpy() == expected["date"].to_numpy()).all(), (asset, session, symbol)


@pytest.mark.parametrize(
    "point",
    [
        "daily_bars: ",  # planned: no manifest written yet
        "daily_bars: manifest written",  # the daily manifest written, no file removed
        "weekly_bars: removing",  # daily files removed, weekly ones being removed
    ],
)
def test_a_compaction_killed_loses_nothing_and_a_second_one_finishes(lake, written, point):
    env = {"PATH": "/usr/bin:/bin", "MARKET_ASSETS_DATA_ROOT": lake.root}
    process = subprocess.Popen([sys.executable, "-m", "market_assets", "compact"], env=env, stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.strip().startswith(point):
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=120)
    assert process.returncode == -signal.SIGKILL, f"the compaction ended before {point!r}"

    _assert_reads_as_written(ParquetStore(lake.root), written)
    finished = subprocess.run(
        [sys.executable, "-m", "market_assets", "compact"], env=env, capture_output=True, text=True, timeout=300
    )
    assert finished.returncode == 0, finished.stderr
    _assert_reads_as_written(ParquetStore(lake.root), written)
    assert set(ParquetStore(lake.root).file_keys("daily_bars")) == written["kept"]


def test_writing_a_snapshot_again_gives_back_the_files_rebuilt_from_it(lake, written):
    compact(lake)
    symbol = next(
        key.split("|")[1]
        for key in written["kept"]
        if key.startswith(written["sessions"][-1]) and f"{written['sessions'][1]}|{key.split('|')[1]}" not in written["kept"]
    )
    source = f"{written['sessions'][-1]}|{symbol}"
    rewritten = written["frames"]["daily_bars", source].assign(close=lambda frame: frame["close"] + 1)

    lake.write("daily_bars", source, rewritten)

    assert lake.read("daily_bars", source).equals(rewritten)
    for session in written["sessions"][:-1]:
        key = f"{session}|{symbol}"
        assert key in lake.file_keys("daily_bars")
        assert lake.read("daily_bars", key).equals(written["frames"]["daily_bars", key])


def test_the_compact_lake_job_compacts_and_says_how_much(lake, written, monkeypatch):
    monkeypatch.setenv("MARKET_ASSETS_DATA_ROOT", lake.root)
    job = definitions.defs().resolve_job_def("compact_lake")

    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance)

    assert result.success
    output = next(event for event in result.all_events if event.is_successful_output)
    metadata = output.step_output_data.metadata
    kept = len(written["kept"])
    assert metadata["daily_bars_kept"].value == kept
    assert metadata["daily_bars_removed"].value == len(written["frames"]) // 3 - kept
    assert metadata["bytes_after"].value < metadata["bytes_before"].value
    _assert_reads_as_written(lake, written)
