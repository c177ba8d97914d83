"""The sources as resources: chosen by the environment alone, and a close on the files source storing
what the HTTP source stores, without a request."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from market_assets.cli.close import close_index
from market_assets.definitions import defs
from market_assets.lake.store import ParquetStore
from market_assets.settings import FILES, SOURCE
from market_assets.sources.resources import StooqFilesResource, StooqResource
from market_assets_tests.platform import PROJECT_ROOT
from market_assets_tests.universe import last_session
from stooq_server.bulk import bulk_lines, bulk_member, write_bulk_archive
from stooq_server.server import DataStore


def test_the_source_is_chosen_by_the_environment(monkeypatch):
    monkeypatch.delenv(SOURCE.env_var, raising=False)
    assert type(defs().resources["stooq"]) is StooqResource
    monkeypatch.setenv(SOURCE.env_var, "files")
    monkeypatch.setenv(FILES.env_var, "/saved/stooq")
    assert type(defs().resources["stooq"]) is StooqFilesResource
    monkeypatch.setenv(SOURCE.env_var, "ftp")
    with pytest.raises(ValueError, match=r"MARKET_ASSETS_SOURCE='ftp': choose one of http, files"):
        defs()


def _close_from_files(folder: Path, work: Path, *args: str) -> tuple[subprocess.CompletedProcess, ParquetStore]:
    """`python -m market_assets close ARGS` in a new process on a fresh instance and data root,
    with the files source over `folder` chosen by the environment alone, as a deployment does."""
    home, lake = work / "files_home", work / "files_lake"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MARKET_ASSETS_DATA_ROOT": str(lake),
        SOURCE.env_var: "files",
        FILES.env_var: str(folder),
    }
    close = subprocess.run(
        [sys.executable, "-m", "market_assets", "close", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return close, ParquetStore(str(lake))


def test_a_close_on_the_files_source_stores_what_the_http_source_stores(platform, saved_files, synthetic_universe, tmp_path):
    """The same closes, once over HTTP in this process and once from the saved files in a new
    process configured only by the environment, as a deployment would be; no request is made."""
    instance, http_lake, server = platform.instance, platform.store, platform.server
    session = last_session(synthetic_universe, "XNYS")
    symbols = set(synthetic_universe.members("DJI", session)) | set(synthetic_universe.members("NDX", session))
    for index in ("DJI", "NDX"):
        close_index(instance, index, session)
    server.reset_stats()

    close, from_files = _close_from_files(saved_files, tmp_path, "DJI", "NDX", "--session", session)

    assert close.returncode == 0, close.stdout + close.stderr[-3000:]
    assert "DJI " + session + ": 30 constituents, 30 loaded" in close.stdout
    assert server.stats()["total"] == 0
    for asset in ("daily_bars", "weekly_bars", "monthly_bars"):
        keys = http_lake.partition_keys(asset)
        assert len(keys) == len(symbols) and from_files.partition_keys(asset) == keys
        for key in keys:
            pd.testing.assert_frame_equal(from_files.read(asset, key), http_lake.read(asset, key))
    for key in (f"{session}|DJI", f"{session}|NDX"):
        pd.testing.assert_frame_equal(
            from_files.read("index_composition", key).drop(columns="fetched_at"),
            http_lake.read("index_composition", key).drop(columns="fetched_at"),
        )


def test_a_bad_file_fails_its_symbol_by_name_and_the_run_keeps_the_rest(saved_files, synthetic_universe, tmp_path):
    session = last_session(synthetic_universe, "XNYS")
    members = synthetic_universe.members("DJI", session)
    broken = members[4]
    served = DataStore(synthetic_universe.data_dir)
    folder = tmp_path / "stooq"
    folder.mkdir()
    shutil.copy(saved_files / "pages" / "DJI.html", folder)
    archive = write_bulk_archive(folder / "d_us_txt.zip", {s: served.history(s, None) for s in members if s != broken})
    with zipfile.ZipFile(archive, "a") as appended:
        good = "".join(bulk_lines(broken, served.history(broken, None)))
        appended.writestr(bulk_member(broken), good.replace(",D,", ",W,", 1))

    close, lake = _close_from_files(folder, tmp_path, "DJI", "--session", session)

    assert close.returncode == 1
    assert "1 of 30 symbols failed" in close.stderr
    assert (
        f"{broken}: line 2 has the period 'W', not D: not a file of the daily archives "
        f"(archive {archive}, member {bulk_member(broken)})"
    ) in close.stderr
    stored = lake.partition_keys("daily_bars")
    assert stored == sorted(f"{session}|{symbol}" for symbol in members if symbol != broken)
