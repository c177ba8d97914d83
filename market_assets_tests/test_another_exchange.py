"""A fourth index on a fourth exchange, added by the indices file alone: WIG20 on the Warsaw Stock
Exchange (XWAR: Europe/Warsaw, its own holidays, symbols without a suffix). The project's server
serves it with synthetic members on Warsaw's sessions; its close loads them end to end, its checks
judge them on Warsaw's calendar, its schedule ticks at Warsaw's close and not on Warsaw's holidays,
and the UI lists its job and its schedule beside the shipped ones, which stay as they were."""

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import requests
from playwright.sync_api import sync_playwright

from market_assets.defs.bars.keys import bars_asset_key
from market_assets.defs.compositions.schedules import build_close_schedule
from market_assets.defs.resources import ClosePlanningResource
from market_assets.domain.quality_rules import no_missing_sessions
from market_assets.settings import CLOSE_DELAY, HEAD_START, INDICES_FILE
from market_assets.sources.indices import DEFAULT_FILE
from market_assets_tests.browser import expect_listed, new_page, require_chromium, running_dagster_dev
from market_assets_tests.platform import PROJECT_ROOT, Platform
from market_assets_tests.universe import last_session, served_daily
from stooq_server import StooqServer, generate_synthetic
from stooq_server.synthetic import SyntheticUniverse

WIG20_ENTRY = """\
  - name: WIG20
    title: WIG20
    stooq_id: 9020
    calendar: XWAR
"""
"""What a team adds to the shipped file to follow WIG20 (the closing note shows the whole file)."""


@dataclass(frozen=True)
class Warsaw:
    file: Path
    universe: SyntheticUniverse
    server: StooqServer


@pytest.fixture(scope="module")
def warsaw(tmp_path_factory: pytest.TempPathFactory, synthetic_universe: SyntheticUniverse) -> Iterator[Warsaw]:
    """The shipped indices and WIG20, in a file this module's processes follow, and a server over
    a synthetic market of the four (the other tests' universe made first, of the shipped three)."""
    folder = tmp_path_factory.mktemp("warsaw")
    path = folder / "indices.yaml"
    path.write_text(DEFAULT_FILE.read_text() + WIG20_ENTRY)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(INDICES_FILE.env_var, str(path))
        universe = generate_synthetic(folder / "stooq", first_session="2023-01-02")
        with StooqServer(universe.data_dir) as server:
            yield Warsaw(path, universe, server)


@pytest.fixture
def platform(warsaw: Warsaw, platform_factory) -> Platform:
    # The server publishes a session at its close: no run waits for a publication delay.
    return platform_factory(server=warsaw.server, **{INDICES_FILE.env_var: str(warsaw.file), CLOSE_DELAY.env_var: "0"})


def test_the_server_lists_its_members_on_its_page(warsaw):
    """`/t/?i=9020` is WIG20's composition page, its members Warsaw symbols without a suffix."""
    members = warsaw.universe.members("WIG20")
    assert len(members) == 20 and members[0] == "SYNWAR001"
    page = requests.get(f"{warsaw.server.url}/t/?i=9020", timeout=30).text
    assert 'id="fth1"' in page and all(f">{symbol}<" in page for symbol in members)


def test_its_close_loads_its_members_and_judges_them_on_its_calendar(warsaw, platform):
    store, instance = platform.store, platform.instance
    session = last_session(warsaw.universe, "XWAR")
    members = warsaw.universe.members("WIG20")

    closed = subprocess.run(
        [sys.executable, "-m", "market_assets", "close", "WIG20", "--session", session],
        env=platform.env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert closed.returncode == 0, closed.stdout + closed.stderr[-3000:]
    assert sorted(store.read("index_composition", f"{session}|WIG20")["symbol"]) == members
    for asset in ("daily_bars", "weekly_bars", "monthly_bars"):
        assert sorted(key.split("|")[1] for key in store.partition_keys(asset)) == members, asset
        # Warsaw's own assets: `xwar/daily_bars`, ...
        assert instance.get_materialized_partitions(bars_asset_key("XWAR", asset)) == {
            f"{session}|{symbol}" for symbol in members
        }, asset
    daily = store.read("daily_bars", f"{session}|{members[0]}")
    served = served_daily(warsaw.universe, members[0], session)
    assert daily["date"].iloc[-1] == pd.Timestamp(session) and len(daily) == len(served)
    assert daily["close"].tolist() == served["close"].tolist()

    # A first snapshot is judged whole: on New York's calendar Warsaw's history would miss sessions
    # (Veterans Day, 11 November, is Poland's Independence Day); on Warsaw's, none.
    assert not no_missing_sessions(daily, "XNYS").passed
    results = {
        (evaluation.asset_key.path[-1], evaluation.check_name, evaluation.partition): evaluation
        for run in instance.get_runs()
        for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        for evaluation in [entry.dagster_event.event_specific_data]
    }
    daily = [results["daily_bars", "valid_bars", f"{session}|{symbol}"] for symbol in members]
    assert all(result.passed for result in daily), [r.metadata for r in daily if not r.passed]
    assert all(results["weekly_bars", "valid_bars", f"{session}|{symbol}"].passed for symbol in members)

    # Taken out of the file again, WIG20 has no job or partitions, but its stored bars still read.
    shipped = {name: value for name, value in platform.env.items() if name != INDICES_FILE.env_var}
    read = subprocess.run(
        [
            sys.executable,
            "-m",
            "market_assets",
            "read",
            "daily",
            "--index",
            "WIG20",
            "--as-of",
            session,
            "--start",
            session,
            "--format",
            "csv",
        ],
        env=shipped,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert read.returncode == 0, read.stderr[-3000:]
    rows = pd.read_csv(io.StringIO(read.stdout))
    assert sorted(rows["symbol"]) == members and set(rows["date"]) == {session}


def test_a_member_of_another_exchange_is_refused_naming_both_indices(warsaw, platform_factory, tmp_path):
    """A symbol takes its index's calendar: WIG20 listing a New York symbol (one DJI and NDX list)
    would give it two, so the composition is refused and nothing is stored."""
    data = tmp_path / "stooq"
    shutil.copytree(warsaw.universe.data_dir, data)
    page = data / "t" / "9020.csv"
    page.write_text(page.read_text() + "SYNU001.US,Synthetic Industrial 001,,\n")
    session = last_session(warsaw.universe, "XWAR")
    with StooqServer(data) as server:
        platform = platform_factory(server=server, **{INDICES_FILE.env_var: str(warsaw.file), CLOSE_DELAY.env_var: "0"})
        closed = subprocess.run(
            [sys.executable, "-m", "market_assets", "close", "WIG20", "--session", session],
            env=platform.env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )

    assert closed.returncode != 0
    assert (
        "index WIG20 (on XWAR) lists symbols of another exchange: SYNU001.US (by its suffix a symbol of "
        f"DJI, NDX, on XNYS). A symbol takes its index's calendar, so a symbol in two indices on different "
        f"exchanges is refused: correct WIG20's calendar or symbol_suffix in {warsaw.file}"
    ) in closed.stdout + closed.stderr
    stored = [platform.store.partition_keys(asset) for asset in ("index_composition", "daily_bars")]
    assert stored == [[], []]


def test_its_bars_have_a_grid_of_their_own_without_its_holidays(platform):
    """Independence Day, 11 November: New York and Hong Kong trade, Warsaw does not. It is a date of
    the compositions (another exchange trades) and of the other bars grids, not of Warsaw's."""
    listed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json\n"
            "from market_assets.defs.partitions import bars_partitions, session_partitions, symbol_partitions\n"
            "dates = {code: grid.partitions_defs[0].partitions_def for code, grid in bars_partitions.items()}\n"
            "print(json.dumps({'compositions': session_partitions.has_partition_key('2026-11-11'),\n"
            "                  **{code: d.has_partition_key('2026-11-11') for code, d in dates.items()},\n"
            "                  'symbols': symbol_partitions['XWAR'].name}))",
        ],
        env=platform.env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert json.loads(listed.stdout) == {
        "compositions": True,
        "XHKG": True,
        "XNYS": True,
        "XWAR": False,
        "symbols": "xwar_symbols",
    }


def _tick(instance: dg.DagsterInstance, local_time: str) -> list[dg.RunRequest] | dg.SkipReason:
    """`xwar_close` evaluated as the daemon would at `local_time`, Warsaw time."""
    when = pd.Timestamp(local_time, tz="Europe/Warsaw")
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=when.to_pydatetime(),
        resources={"planning": ClosePlanningResource(catch_up_sessions=1)},
    ) as context:
        return build_close_schedule("XWAR")(context)


def test_its_schedule_ticks_at_its_close_and_not_on_its_holidays(platform, monkeypatch):
    monkeypatch.delenv(CLOSE_DELAY.env_var)
    monkeypatch.delenv(HEAD_START.env_var, raising=False)
    schedule = build_close_schedule("XWAR")
    assert schedule.name == "xwar_close" and schedule.execution_timezone == "Europe/Warsaw"
    # Warsaw closes at 17:00; the tick comes a minute ahead of the publication half an hour later.
    assert "29 17 * * *" in schedule.cron_schedule

    session = _tick(platform.instance, "2026-11-10 17:29")
    assert [request.run_key for request in session] == ["2026-11-10|WIG20"]
    assert session[0].tags["market_assets/index"] == "WIG20"
    platform.instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key="index_composition", partition="2026-11-10|WIG20")
    )
    holiday = _tick(platform.instance, "2026-11-11 17:29")  # Independence Day: New York trades, Warsaw does not
    assert isinstance(holiday, dg.SkipReason), holiday
    assert [request.run_key for request in _tick(platform.instance, "2026-11-12 17:29")] == ["2026-11-12|WIG20"]


def test_the_ui_lists_its_job_and_its_schedule(warsaw, platform, tmp_path, ui_artifacts):
    chromium = require_chromium()
    home = Path(platform.env["DAGSTER_HOME"])
    with running_dagster_dev(home, platform.env, tmp_path / "dagster-dev.log") as url, sync_playwright() as playwright:
        page = new_page(playwright, chromium)
        expect_listed(
            page,
            f"{url}/locations/market_assets/jobs",
            ("wig20_close", "dji_close", "ndx_close", "hsi_close"),
            ui_artifacts / "40-fourth-index-jobs.png",
        )
        expect_listed(
            page,
            f"{url}/locations/market_assets/schedules",
            ("xwar_close", "xnys_close", "xhkg_close"),
            ui_artifacts / "41-fourth-index-schedules.png",
        )
