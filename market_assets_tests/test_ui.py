"""The Dagster UI in a real browser, used the way a person uses it.

`dagster dev` (webserver and daemon) serves the project's code location on loopback from a
temporary `DAGSTER_HOME`, against the project's Stooq-compatible server; Debian's Chromium, driven
by Playwright, opens the asset graph, launches an index's close for a session from the
materialize dialog, follows the runs the platform starts, and reads the partitions, metadata and
check results the UI shows. A symbol the server refuses for good shows as a failed run naming it,
and re-executing that run from the UI once the source is fixed completes the session.

Every step leaves a screenshot in the UI artifacts folder (see `ui_artifacts` in conftest.py).
The tests of this module share one instance and run in order; each reads what it stored itself.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import requests
from playwright.sync_api import Locator, Page, expect, sync_playwright

from market_assets.defs.bars.checks import VALID_BARS
from market_assets.lake.fingerprint import fingerprint
from market_assets.lake.store import ParquetStore
from market_assets.settings import CLOSE_DELAY
from market_assets_tests.browser import (
    CHROMIUM_ARGS,
    WAIT_MS,
    expect_listed,
    free_port,
    new_page,
    require_chromium,
    running_dagster_dev,
)
from market_assets_tests.platform import PROJECT_ROOT
from market_assets_tests.polling import wait_for
from stooq_server import Fault, FaultKind, StooqServer

EXCHANGES = ("xnys", "xhkg")
ASSETS = {
    "compositions": ("index_composition", "index_membership"),
    **{f"{code}_bars": ("daily_bars", "weekly_bars", "monthly_bars", "adjustment_events") for code in EXCHANGES},
}
"""The bars assets are each exchange's (`xnys/daily_bars`), in the exchange's own group: the graph
labels them by their name, under their group's."""

expect.set_options(timeout=WAIT_MS)


@dataclass
class DagsterUI:
    """The webserver's address, the browser page on it, and what the runs write and read."""

    url: str
    page: Page
    store: ParquetStore
    server: StooqServer
    screenshots: Path

    def open(self, path: str) -> None:
        self.page.goto(self.url + path, wait_until="domcontentloaded")

    def screenshot(self, name: str) -> None:
        self.page.screenshot(path=self.screenshots / f"{name}.png", full_page=True)

    def instance(self) -> dg.DagsterInstance:
        """The instance `dagster dev` serves (`DAGSTER_HOME` is set for this module)."""
        return dg.DagsterInstance.get()


@pytest.fixture(scope="module")
def chromium() -> Path:
    return require_chromium()


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory, synthetic_universe) -> Iterator[tuple[str, ParquetStore, StooqServer]]:
    """`dagster dev` on a free loopback port, its instance and data root in a temporary folder."""
    base = tmp_path_factory.mktemp("ui")
    home, lake = base / "dagster_home", base / "lake"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    with StooqServer(synthetic_universe.data_dir) as server, pytest.MonkeyPatch.context() as monkeypatch:
        # This process reads the same instance (its dagster.yaml names $DAGSTER_HOME).
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        env = {
            **os.environ,
            "MARKET_ASSETS_DATA_ROOT": str(lake),
            "STOOQ_BASE_URL": server.url,
            # The server publishes a session at its close: no run waits for a publication delay.
            CLOSE_DELAY.env_var: "0",
        }
        with running_dagster_dev(home, env, base / "dagster-dev.log") as url:
            _settle_instance(url)
            yield url, ParquetStore(str(lake)), server


_SCHEDULES_QUERY = """{
  schedulesOrError(repositorySelector: {repositoryLocationName: "market_assets", repositoryName: "__repository__"}) {
    ... on Schedules { results { name scheduleState { id } } }
  }
}"""
_STOP_SCHEDULE = """mutation ($id: String) {
  stopRunningSchedule(id: $id) { ... on ScheduleStateResult { scheduleState { status } } }
}"""


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    answer = requests.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=120)
    answer.raise_for_status()
    return answer.json()["data"]


def _settle_instance(url: str) -> None:
    """What a person would have done once on this instance, so nothing but the tests acts on it.

    The newsletter prompt shown over the first page is recorded as seen, and the close schedules
    are stopped: a tick during the tests would launch compositions of past sessions, whose bars
    would change the partition counts the tests read. The `close_bars` sensor stays on: it is what
    turns a materialized composition into its close run.
    """
    _graphql(url, "mutation { setNuxSeen }")
    schedules = _graphql(url, _SCHEDULES_QUERY)["schedulesOrError"]["results"]
    assert {schedule["name"] for schedule in schedules} == {
        "xnys_close",
        "xhkg_close",
        "compact_lake_daily",
        "prune_instance_daily",
    }
    for schedule in schedules:
        stopped = _graphql(url, _STOP_SCHEDULE, {"id": schedule["scheduleState"]["id"]})
        assert stopped["stopRunningSchedule"]["scheduleState"]["status"] == "STOPPED", stopped


@pytest.fixture(scope="module")
def ui(chromium, dagster_dev, ui_artifacts) -> Iterator[DagsterUI]:
    """A fresh Chromium profile with one page, tall enough for the whole asset graph."""
    url, store, server = dagster_dev
    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 2000},
        )
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(WAIT_MS)
        try:
            yield DagsterUI(url, page, store, server, ui_artifacts)
        finally:
            context.close()


def _session(universe) -> str:
    return f"{universe.last_session['XNYS']:%Y-%m-%d}"


def _launch_composition(ui: DagsterUI, session: str, index: str, screenshot: str) -> None:
    """Asset page -> Materialize -> pick the session and the index -> Launch, then open the run."""
    page = ui.page
    ui.open("/assets/index_composition")
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog")
    dates = dialog.get_by_placeholder("ex: ", exact=False)
    dates.fill(session)
    dates.press("Enter")
    dialog.get_by_text("Select a partition or create one").click()
    page.get_by_role("menuitem", name=index).click()
    dialog.get_by_text("Launch runs to materialize index_composition").click()  # closes the list
    expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
    ui.screenshot(screenshot)
    dialog.get_by_role("button", name="Launch 1 run").click()
    expect(page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}"))).to_be_visible()
    page.get_by_role("link", name="View", exact=True).click()  # in the "Launched run" notice
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    _expect_run_status(ui, "Success")


def _expect_run_status(ui: DagsterUI, status: str) -> None:
    """The run page's header says `status` (the page follows the run as it goes)."""
    header = ui.page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    expect(header).to_have_text(status)


def _close_run_of(ui: DagsterUI, index: str, session: str, *statuses: dg.DagsterRunStatus) -> dg.DagsterRun:
    """The close run the sensor launched for `index` and `session`, once it has one of `statuses`.

    The instance says which run that is; what the run shows is read in the UI.
    """
    with ui.instance() as instance:
        found = wait_for(
            lambda: instance.get_runs(
                dg.RunsFilter(
                    job_name=f"{index.lower()}_close",
                    statuses=list(statuses),
                    tags={"market_assets/session": session},
                )
            ),
            WAIT_MS / 1000,
            f"a {index.lower()}_close run of {session} with status {[s.value for s in statuses]}",
        )
    return found[0]


def _open_run_from_runs_list(ui: DagsterUI, run: dg.DagsterRun, tab: str) -> None:
    """Runs -> `tab` -> the run's id, as a person looks a run up."""
    page = ui.page
    ui.open("/runs")
    page.get_by_role("tab", name=tab, exact=True).click()
    page.get_by_role("link", name=f"run {run.run_id[:8]}", exact=True).click()
    expect(page).to_have_url(re.compile(f"/runs/{run.run_id}"))


def _partition_label(page: Page, label: str) -> Locator:
    """A date or a symbol in the asset's partition lists."""
    return page.locator(f"[data-tooltip='{label}']").first


def _partition_dot(page: Page, label: str) -> Locator:
    """The status dot beside a date or a symbol in the asset's partition lists."""
    return page.locator(f"[data-tooltip='{label}'] + div").first


def _reload_until(ui: DagsterUI, check: Callable[[], None]) -> None:
    """Partition statuses are read when the page loads: reload until `check` passes."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            ui.page.reload(wait_until="domcontentloaded")


def test_the_ui_command_serves_the_demo_to_the_browser(chromium, synthetic_universe, tmp_path, ui_artifacts):
    """`python -m market_assets ui`: the server and `dagster dev` on the demo's folder, and the URL
    it prints opens the project's jobs. (First in the module: before its own `dagster dev` starts.)"""
    workdir = tmp_path / "demo"
    shutil.copytree(synthetic_universe.data_dir, workdir / "stooq-synthetic")  # as a demo leaves it
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "market_assets", "ui", "--workdir", str(workdir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        url = wait_for(lambda: _printed_url(lines, process), WAIT_MS / 1000, "the URL of `ui`", 0.5)
        assert url == f"http://127.0.0.1:{port}"
        server_url = re.search(r"server at (http://\S+);", lines[0]).group(1)
        assert "fth1" in requests.get(f"{server_url}/t/?i=578", timeout=30).text
        assert (workdir / "dagster_home" / "dagster.yaml").is_file()
        with sync_playwright() as playwright:
            expect_listed(
                new_page(playwright, chromium),
                f"{url}/locations/market_assets/jobs",
                ("dji_close", "ndx_close", "hsi_close", "index_compositions"),
                ui_artifacts / "00-ui-command-jobs.png",
            )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=120)


def _printed_url(lines: list[str], process: subprocess.Popen) -> str | None:
    if process.poll() is not None:
        pytest.fail(f"`ui` exited with {process.returncode}: {''.join(lines)[-3000:]}")
    found = next((re.search(r"Dagster UI at (\S+)", line) for line in lines if "Dagster UI at" in line), None)
    return found.group(1) if found else None


_VISIBLE_RATIO = """node => new Promise(resolve => {
    const observer = new IntersectionObserver(([entry]) => { observer.disconnect(); resolve(entry.intersectionRatio); });
    observer.observe(node);
})"""
"""How much of an element the page shows, clipped by the graph's canvas as `to_be_in_viewport` sees it."""


def _in_viewport(node: Locator) -> bool:
    return node.evaluate(_VISIBLE_RATIO) == 1


def test_the_asset_graph_shows_every_asset_in_its_group(ui):
    page = ui.page
    ui.open("/asset-groups")
    for group in ASSETS:
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    # The graph opens with its groups folded: unfold them from the graph's settings menu.
    page.get_by_role("img", name="settings").last.click()
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.keyboard.press("Escape")
    nodes = [page.get_by_text(asset, exact=True).first for asset in ASSETS["compositions"]]
    for asset in ASSETS["xnys_bars"]:
        expect(page.get_by_text(asset, exact=True)).to_have_count(len(EXCHANGES))
        nodes += [page.get_by_text(asset, exact=True).nth(node) for node in range(len(EXCHANGES))]
    # Zoomed out until the whole graph is on the page: each exchange adds its four bars assets.
    for _ in range(8):
        if all(_in_viewport(node) for node in nodes):
            break
        page.get_by_role("img", name="zoom_out").click()
    for node in nodes:
        expect(node).to_be_in_viewport(ratio=1)
    expect(page.get_by_text(re.compile("^Loading"))).to_have_count(0)
    ui.screenshot("01-asset-graph")

    ui.open("/assets/xnys/daily_bars")
    expect(page.get_by_text("Daily OHLCV history of each symbol as published after the close")).to_be_visible()
    expect(page.get_by_role("link", name="xnys_bars", exact=True).first).to_be_visible()
    ui.screenshot("02-asset-description")


def test_a_session_of_one_index_materialized_from_the_ui_turns_its_partitions_green(ui, synthetic_universe):
    page = ui.page
    session = _session(synthetic_universe)
    members = synthetic_universe.members("DJI", pd.Timestamp(session))

    _launch_composition(ui, session, "DJI", "03-materialize-dialog")
    ui.screenshot("04-composition-run")

    # The close_bars sensor launches the session's bars once the composition is stored.
    close = _close_run_of(ui, "DJI", session, dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE)
    _open_run_from_runs_list(ui, close, "All")
    _expect_run_status(ui, "Success")
    page.get_by_placeholder("Filter…").fill("written under")
    folder = str(Path(ui.store.root) / "daily_bars" / f"session={session}")
    expect(page.get_by_text(f"daily_bars: {len(members)} partitions written under {folder}")).to_be_visible()
    ui.screenshot("05-close-run-names-its-folder")

    ui.open("/assets/xnys/daily_bars?view=partitions")

    def session_is_green() -> None:
        expect(page.get_by_text(f"Materialized ({len(members)})")).to_be_visible(timeout=20_000)
        expect(_partition_dot(page, session)).to_have_attribute("style", re.compile("accent-green"), timeout=5_000)

    _reload_until(ui, session_is_green)
    # The session's row in the list of dates: its text also labels the end of the range bar when the
    # session is the window's last day.
    _partition_label(page, session).click()
    for symbol in members[:10]:
        expect(_partition_dot(page, symbol)).to_have_attribute("style", re.compile("accent-green"))
    ui.screenshot("06-partitions-green")

    symbol = members[0]
    _partition_label(page, symbol).click()
    key = f"{session}|{symbol}"
    expect(page.get_by_text(key, exact=True).first).to_be_visible()
    daily = ui.store.read("daily_bars", key)
    metadata = page.locator("table").filter(has_text="fingerprint")
    expect(metadata.get_by_text(ui.store.path("daily_bars", key), exact=True)).to_be_visible()
    expect(metadata.get_by_text(str(len(daily)), exact=True)).to_be_visible()
    expect(metadata.get_by_text(fingerprint(daily), exact=True)).to_be_visible()
    preview = metadata.locator("table").filter(has_text="volume")
    expect(preview.get_by_text(session, exact=True)).to_be_visible()
    ui.screenshot("07-materialization-metadata")

    ui.open("/assets/xnys/daily_bars?view=checks")
    expect(page.get_by_text(VALID_BARS, exact=True).first).to_be_visible()
    expect(page.get_by_text("Passed", exact=True).first).to_be_visible()
    # The step keeps a refused daily snapshot's weekly and monthly bars from being built: the UI says so.
    expect(page.get_by_text("This is a blocking asset check.")).to_be_visible()
    ui.screenshot("08-asset-checks")


def test_a_symbol_the_source_refuses_fails_its_run_by_name_and_reexecution_completes_it(ui, synthetic_universe):
    page = ui.page
    session = _session(synthetic_universe)
    ndx = synthetic_universe.members("NDX", pd.Timestamp(session))
    broken = sorted(set(ndx) - set(synthetic_universe.members("DJI", pd.Timestamp(session))))[0]
    ui.server.inject(Fault(FaultKind.NO_DATA, symbols={broken}))

    _launch_composition(ui, session, "NDX", "09-materialize-dialog-with-a-fault")
    failed = _close_run_of(ui, "NDX", session, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS)
    _open_run_from_runs_list(ui, failed, "Failed")
    _expect_run_status(ui, "Failure")
    message = f"{broken}: Stooq answered 'No data'"
    expect(page.get_by_text(message).first).to_be_visible()
    ui.screenshot("10-failed-run-names-the-symbol")
    key = f"{session}|{broken}"
    assert not ui.store.exists("daily_bars", key)

    ui.open(f"/assets/xnys/daily_bars?view=partitions&partition={key.replace('|', '%7C')}")
    _reload_until(ui, lambda: expect(page.get_by_text("Failed (1)")).to_be_visible(timeout=20_000))
    ui.screenshot("11-partition-failed")

    ui.server.clear_faults()
    _open_run_from_runs_list(ui, failed, "Failed")
    page.get_by_role("button", name="Re-execute all (*)").locator("xpath=..").get_by_role("img", name="arrow_drop_down").click()
    page.get_by_role("menuitem", name="From failure").click()
    expect(page).not_to_have_url(re.compile(f"/runs/{failed.run_id}"))
    _expect_run_status(ui, "Success")
    ui.screenshot("12-reexecution-succeeded")
    assert ui.store.exists("daily_bars", key) and ui.store.exists("monthly_bars", key)

    ui.open(f"/assets/xnys/daily_bars?view=partitions&partition={key.replace('|', '%7C')}")
    _reload_until(ui, lambda: expect(page.get_by_text("Failed (0)")).to_be_visible(timeout=20_000))
    expect(page.get_by_text("fingerprint", exact=True)).to_be_visible()
    ui.screenshot("13-partition-materialized-after-reexecution")
