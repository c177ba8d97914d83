"""`python -m market_assets migrate`: a lake of the earlier layout becomes, file for file, the lake
a close writes today, and a migration killed half-way loses nothing."""

from pathlib import Path

import pandas as pd
import pytest

from market_assets.cli.close import close_index
from market_assets.domain.exchange_sessions import calendar
from market_assets.lake.migration import migrate, old_layout_keys
from market_assets.lake.store import ParquetStore
from market_assets.sources.indices import exchange_of
from market_assets_tests.lake_files import lake_command
from stooq_server import generate_synthetic

ASSETS = ("daily_bars", "weekly_bars", "monthly_bars", "adjustment_events", "index_composition")


@pytest.fixture
def universe(tmp_path):
    """A small universe of its own, since the test adds a split to it."""
    return generate_synthetic(tmp_path / "stooq", first_session="2019-01-02", sizes={"DJI": 4, "NDX": 1, "HSI": 1})


@pytest.fixture
def closed(platform_factory, universe, server_factory):
    """A lake two DJI closes wrote today, the second after a split: every asset has files."""
    platform = platform_factory(server=server_factory(universe.data_dir))
    last = universe.last_session["XNYS"]
    before, session = (f"{day:%Y-%m-%d}" for day in calendar("XNYS").sessions_window(last, -2))
    platform.server.as_of = before
    close_index(platform.instance, "DJI", before)
    with open(universe.data_dir / "splits.csv", "a") as splits:
        splits.write(f"{universe.members('DJI', session)[0]},{session},2\n")
    platform.server.reload()
    platform.server.as_of = session
    close_index(platform.instance, "DJI", session)
    assert all(platform.store.partition_keys(asset) for asset in ASSETS)
    return platform


def _write_earlier_layout(current: ParquetStore, root: Path) -> None:
    """The lake as the earlier layout held it: bare date folders, no `symbol`, weeks and months
    dated by their last session without the period columns, `session` in compositions and events."""
    for asset in ASSETS:
        for key in current.partition_keys(asset):
            session, name = key.split("|")
            frame = current.read(asset, key)
            if asset.endswith("_bars"):
                frame = frame.drop(columns="symbol")
            if asset in ("weekly_bars", "monthly_bars"):
                frame = frame.assign(date=frame["last_session"]).drop(
                    columns=["period_start", "period_end", "last_session", "sessions"]
                )
            if asset in ("adjustment_events", "index_composition"):
                frame.insert(1, "session", pd.Timestamp(session))
            target = root / asset / session / f"{name}.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(target, index=False)


def _assert_same_lake(migrated: ParquetStore, current: ParquetStore) -> None:
    for asset in ASSETS:
        assert migrated.partition_keys(asset) == current.partition_keys(asset), asset
        for key in current.partition_keys(asset):
            pd.testing.assert_frame_equal(migrated.read(asset, key), current.read(asset, key), obj=f"{asset}[{key}]")


def test_migrate_turns_the_earlier_layout_into_todays_file_for_file(closed, tmp_path):
    old = tmp_path / "old-lake"
    _write_earlier_layout(closed.store, old)
    count = len(closed.store.partition_keys("daily_bars"))

    dry = lake_command(old, "migrate", "--dry-run")

    assert dry.returncode == 0, dry.stderr
    assert f"daily_bars: would move {count} files" in dry.stdout
    assert ParquetStore(str(old)).partition_keys("daily_bars") == []  # nothing moved yet

    done = lake_command(old, "migrate")

    assert done.returncode == 0, done.stderr
    assert f"daily_bars: moved {count} files" in done.stdout and "adjustment_events: moved 1 file" in done.stdout
    _assert_same_lake(ParquetStore(str(old)), closed.store)
    assert sorted(path.name for path in (old / "daily_bars").iterdir()) == sorted(
        path.name for path in (Path(closed.store.root) / "daily_bars").iterdir()
    )
    again = lake_command(old, "migrate")
    assert again.returncode == 0 and "nothing to migrate" in again.stdout


def test_a_migration_stopped_half_way_loses_nothing_and_finishes_when_run_again(closed, tmp_path, monkeypatch):
    old = tmp_path / "old-lake"
    _write_earlier_layout(closed.store, old)
    store = ParquetStore(str(old))
    writes = 0
    write = ParquetStore.write

    def stop_after_three(self, asset, key, frame):
        nonlocal writes
        if writes == 3:
            raise OSError(28, "No space left on device")
        writes += 1
        return write(self, asset, key, frame)

    monkeypatch.setattr(ParquetStore, "write", stop_after_three)
    with pytest.raises(OSError, match="No space left"):
        migrate(store, exchange_of)
    monkeypatch.undo()

    # Each partition is readable in one layout or the other.
    for asset in ASSETS:
        moved = set(store.partition_keys(asset))
        left = set(old_layout_keys(store, asset))
        assert moved | left == set(closed.store.partition_keys(asset)) and not moved & left, asset
    assert len(store.partition_keys("daily_bars")) == 3

    migrate(store, exchange_of)

    _assert_same_lake(store, closed.store)
    assert not any(old_layout_keys(store, asset) for asset in ASSETS)


def test_a_weekly_file_without_its_daily_snapshot_is_left_and_named(tmp_path):
    root = tmp_path / "lake"
    lone = root / "weekly_bars" / "2026-11-20" / "AAPL.US.parquet"
    lone.parent.mkdir(parents=True)
    pd.DataFrame({"date": [pd.Timestamp("2026-11-20")], "close": [1.0]}).to_parquet(lone)

    report = migrate(ParquetStore(str(root)), exchange_of)

    assert report.moved == {} and lone.is_file()
    assert report.left == [f"{lone}: no daily_bars snapshot of 2026-11-20|AAPL.US to resample it from"]
