"""Incremental downloads end to end: a month of DJI closes served by the project's server, with
quarterly dividends, a split and a dividend on the newest session, written once with incremental
downloads and once with whole histories. Both lakes must hold the same files, value for value, each
saying it was fetched live, and the same adjustment events, while the incremental closes download a
small part of the bytes."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from market_assets.cli.close import close_index
from market_assets.defs.bars.keys import bars_asset_key
from market_assets.domain.exchange_sessions import calendar
from market_assets.lake.datasets import DAILY_BARS
from market_assets.lake.fetch_record import FetchRecord
from market_assets_tests.platform import open_platform
from stooq_server import StooqServer, generate_synthetic

SESSIONS = 21
"""A month of sessions."""
WRITTEN = ("daily_bars", "weekly_bars", "monthly_bars", "adjustment_events")


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """The universe, the month's sessions, and the (session, symbol) pairs whose past it rewrites."""
    folder = tmp_path_factory.mktemp("incremental")
    universe = generate_synthetic(
        folder / "stooq", first_session="2016-01-04", sizes={"DJI": 5, "NDX": 1, "HSI": 1}, dividends=True
    )
    sessions = [f"{day:%Y-%m-%d}" for day in calendar("XNYS").sessions_window(universe.last_session["XNYS"], -SESSIONS)]
    members = universe.members("DJI", sessions[-1])
    # A split in the middle of the month, and a dividend announced on the newest session.
    splitting, paying = members[0], members[-1]
    with open(universe.data_dir / "splits.csv", "a") as splits:
        splits.write(f"{splitting},{sessions[SESSIONS // 2]},3\n")
    with open(universe.data_dir / "dividends.csv", "a") as dividends:
        dividends.write(f"{paying},{sessions[-1]},0.995\n")
    events = pd.concat([universe.splits, universe.dividends])
    events = events[events["date"].isin(pd.to_datetime(sessions[1:]))]
    rewritten = {(f"{day:%Y-%m-%d}", symbol) for symbol, day in zip(events["symbol"], events["date"])}
    rewritten |= {(sessions[SESSIONS // 2], splitting), (sessions[-1], paying)}
    return {"folder": folder, "data_dir": universe.data_dir, "sessions": sessions, "rewritten": rewritten, "paying": paying}


def _close_the_month(month, name: str, full_history: bool) -> tuple[Path, dict[tuple[str, str], str], list[int]]:
    """Close DJI for every session of the month: the lake's root, how each daily snapshot was
    downloaded, and the bytes of CSV downloaded per session."""
    folder = month["folder"] / name
    monkeypatch = pytest.MonkeyPatch()
    server = StooqServer(month["data_dir"]).start()
    downloaded = []
    try:
        with open_platform(folder, monkeypatch, server) as platform:
            for session in month["sessions"]:
                server.as_of = session
                server.reset_stats()
                close_index(platform.instance, "DJI", session, full_history=full_history)
                downloaded.append(server.stats()["bytes_by_route"].get("download", 0))
            downloads = _download_metadata(platform.instance)
    finally:
        server.stop()
        monkeypatch.undo()
    return folder / "lake", downloads, downloaded


def _download_metadata(instance: dg.DagsterInstance) -> dict[tuple[str, str], str]:
    """How each DJI `daily_bars` partition was downloaded, from its materialization's metadata."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=bars_asset_key("XNYS", DAILY_BARS)), limit=10_000
    ).records
    return {tuple(record.partition_key.split("|")): record.asset_materialization.metadata["download"].value for record in records}


@pytest.fixture(scope="module")
def lakes(month):
    return {"incremental": _close_the_month(month, "incremental", False), "whole": _close_the_month(month, "whole", True)}


def _files(root: Path) -> dict[str, tuple[pd.DataFrame, pd.Timestamp | None]]:
    """Each file's frame, and the last date of the answer it was built from (bars files only)."""
    files = {}
    for asset in WRITTEN:
        for path in (root / asset).rglob("*.parquet"):
            record = FetchRecord.from_footer(pq.read_schema(path).metadata)
            files[str(path.relative_to(root))] = (pd.read_parquet(path), record and record.through)
    return files


def test_incremental_closes_write_the_files_and_events_that_whole_downloads_write(lakes, month):
    (incremental, _, _), (whole, _, _) = lakes["incremental"], lakes["whole"]
    ours, theirs = _files(incremental), _files(whole)

    assert sorted(ours) == sorted(theirs)
    assert [name for name in ours if not ours[name][0].equals(theirs[name][0])] == []
    # Each snapshot was fetched live, on its session's day as the server served it.
    for name, (_, through) in ours.items():
        if not name.startswith("adjustment_events"):
            assert through == theirs[name][1] == pd.Timestamp(name.split("session=")[1][:10]), name
    events = {name for name in ours if name.startswith("adjustment_events")}
    assert len(events) >= 2  # the split and the newest dividend at least


def test_a_dividend_announced_on_the_newest_session_is_found(lakes, month):
    incremental, _, _ = lakes["incremental"]
    newest, paying = month["sessions"][-1], month["paying"]

    events = pd.read_parquet(incremental / "adjustment_events" / f"session={newest}")

    row = events[events["symbol"] == paying].iloc[0]
    assert row["ratio"] == pytest.approx(1 / 0.995, rel=1e-3)
    assert row["effective_date"] == pd.Timestamp(newest)


def test_only_a_rewritten_past_or_a_first_snapshot_downloads_a_whole_history(lakes, month):
    _, downloads, downloaded = lakes["incremental"]
    first = month["sessions"][0]

    firsts = {}
    for session, symbol in sorted(downloads):
        firsts.setdefault(symbol, session)
    assert len(firsts) > 5 and min(firsts.values()) == first  # the member added during the month too
    for (session, symbol), how in downloads.items():
        if firsts[symbol] == session:
            assert how.startswith("whole history") and "rewritten" not in how, (session, symbol, how)
        elif (session, symbol) in month["rewritten"]:
            assert how.startswith("whole history") and "the past was rewritten" in how, (session, symbol, how)
        else:
            assert how.startswith("incremental: 1 new bar(s)"), (session, symbol, how)
    # A session where every snapshot extends the previous one downloads a small part of the bytes.
    _, _, whole = lakes["whole"]
    whole_downloads = {session for (session, _), how in downloads.items() if how.startswith("whole history")}
    steady = [i for i, session in enumerate(month["sessions"]) if session not in whole_downloads]
    assert len(steady) >= SESSIONS // 2
    assert max(downloaded[i] / whole[i] for i in steady) < 0.05
