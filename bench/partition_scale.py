"""Does the instance stay quick with a whole market? 10,000 symbols on XNYS, in the UI and the daemon.

    .venv/bin/python bench/partition_scale.py [--symbols 10000] [--sessions 40]

Seeds a fresh `DAGSTER_HOME` (the project's `dagster.yaml`) that follows `US_MARKET` of
bench/indices.yaml alone, with `--symbols` members registered as `xnys_symbols` and its bars assets
(`xnys/daily_bars`, `weekly_bars`, `monthly_bars`) and composition materialized on each of the last
`--sessions` sessions before the latest, as months of daily closes leave them, then times:

- the ticks the daemon evaluates: the `xnys_close` schedule; the `close_bars` sensor at the close
  (launching the session's runs over every member) and after it (nothing to launch); the
  `partition_status_cache`, `abandoned_runs` and `freshness_alerts` sensors;
- the `partition_status_cache` tick once the window has moved (the cache is first built over a
  window holding every seeded session, then the code location loads with the project's default
  one), the `refresh_partition_status` run it launches, which rebuilds Dagster's partition-status
  cache, and the asset page's partition-status query
  (`PartitionHealthQuery`) sent to a real `dagster-webserver` after it, cold and warm, and again
  after a restart of the webserver;
- in a real browser (Debian's Chromium, headless): the asset page's partitions view, the
  Materialize dialog of `xnys/daily_bars`, and the launchpad of the `us_market_close` job, each
  from the click or the address to the first figure it shows.

Writing 1.2 million materializations one by one through Dagster would take hours, so they are
seeded in one transaction: each row is a real materialization event serialized by Dagster, with its
partition key and dimension tags substituted. One event per asset is then reported through Dagster
itself, so the asset's record points at the latest storage id as it would after real runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import requests
import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

MARKET = "US_MARKET"
ASSET_PAGE = ["xnys", "daily_bars"]
TARGET_SECONDS = {"tick": 1.0, "query": 2.0, "page": 2.0}

PARTITION_HEALTH_QUERY = """
query PartitionHealthQuery($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      id
      partitionKeysByDimension { name type partitionKeys }
      assetPartitionStatuses {
        ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
        ... on DefaultPartitionStatuses { materializedPartitions materializingPartitions failedPartitions }
        ... on MultiPartitionStatuses {
          primaryDimensionName
          ranges {
            primaryDimStartKey primaryDimEndKey primaryDimStartTime primaryDimEndTime
            secondaryDim {
              ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
              ... on DefaultPartitionStatuses { materializedPartitions materializingPartitions failedPartitions }
            }
          }
        }
      }
    }
  }
}
"""


def target(name: str, seconds: float, kind: str) -> None:
    limit = TARGET_SECONDS[kind]
    print(f"{name}: {seconds:.2f} s (target <= {limit:g} s) {'met' if seconds <= limit else 'NOT MET'}", flush=True)


# --- Seeding ---------------------------------------------------------------------------------------


def seed(home: Path, lake: Path, symbol_count: int, session_count: int) -> dict[str, object]:
    """The market's members registered, and its bars and compositions materialized on each of the
    last `session_count` sessions before the latest; the sessions, newest last."""
    import dagster as dg

    from market_assets.defs.bars.keys import bars_asset_key
    from market_assets.defs.partitions import symbol_partitions
    from market_assets.domain.exchange_sessions import calendar, latest_closed_session
    from market_assets.lake.datasets import BARS
    from market_assets.lake.store import ParquetStore

    latest = latest_closed_session("XNYS")
    sessions = [f"{day:%Y-%m-%d}" for day in calendar("XNYS").sessions_window(latest, -session_count - 1)[:-1]]
    symbols = [f"SYNU{number:05d}.US" for number in range(1, symbol_count + 1)]
    store = ParquetStore(str(lake))
    members = pd.DataFrame({"symbol": symbols, "name": symbols})
    for day in sessions:
        store.write("index_composition", f"{day}|{MARKET}", members)
    bars = [json.dumps(bars_asset_key("XNYS", name).path) for name in BARS]
    cells = {
        json.dumps(["index_composition"]): ("index", [(day, MARKET) for day in sessions]),
        **{asset: ("symbol", [(day, symbol) for day in sessions for symbol in symbols]) for asset in bars},
    }
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(symbol_partitions["XNYS"].name, symbols)
        for asset, (second, pairs) in cells.items():
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=json.loads(asset), partition=dg.MultiPartitionKey({"date": pairs[0][0], second: pairs[0][1]})
                )
            )
    db = sqlite3.connect(home / "history" / "runs" / "index.db")
    with db:
        for asset, (_, pairs) in cells.items():
            clone_materializations(db, asset, pairs[0], pairs[1:-1])
    db.close()
    with dg.DagsterInstance.get() as instance:
        for asset, (second, pairs) in cells.items():
            # The last one through Dagster itself, so the asset's record points at the latest storage id.
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=json.loads(asset), partition=dg.MultiPartitionKey({"date": pairs[-1][0], second: pairs[-1][1]})
                )
            )
        counts = {
            json.loads(asset)[-1]: len(instance.get_materialized_partitions(dg.AssetKey(json.loads(asset)))) for asset in cells
        }
    return {"sessions": sessions, "latest": f"{latest:%Y-%m-%d}", "symbols": symbols, "counts": counts}


def clone_materializations(db: sqlite3.Connection, asset: str, template: tuple[str, str], cells: list[tuple[str, str]]) -> None:
    """Copy the materialization of partition `template` (date, second key) of `asset` to `cells`."""
    event_id, event, timestamp = db.execute(
        "select id, event, timestamp from event_logs where asset_key = ?", (asset,)
    ).fetchone()
    tags = db.execute("select key, value from asset_event_tags where event_id = ?", (event_id,)).fetchall()
    next_id = db.execute("select max(id) from event_logs").fetchone()[0] + 1
    day, second = template
    events, event_tags = [], []
    for offset, (session, key) in enumerate(cells):
        text = event.replace(second, key).replace(day, session)
        events.append((next_id + offset, "", text, "ASSET_MATERIALIZATION", timestamp, None, asset, f"{session}|{key}"))
        event_tags += [
            (next_id + offset, asset, name, value.replace(second, key).replace(day, session), timestamp) for name, value in tags
        ]
    db.executemany("insert into event_logs values (?, ?, ?, ?, ?, ?, ?, ?)", events)
    db.executemany(
        "insert into asset_event_tags (event_id, asset_key, key, value, event_timestamp) values (?, ?, ?, ?, ?)",
        event_tags,
    )


# --- Ticks -----------------------------------------------------------------------------------------


TICKS = """
import json, os, sys, time
import dagster as dg
import pandas as pd
from market_assets.definitions import defs
from market_assets.defs.bars.sensors import close_bars
from market_assets.defs.compositions.assets import index_composition
from market_assets.defs.maintenance.sensors import abandoned_runs, partition_status_cache
from market_assets.defs.alerts.sensors import freshness_alerts
from market_assets.defs.resources import ClosePlanningResource
from market_assets.defs.alerts.resources import AlertsResource
from market_assets.lake.resource import DataLakeResource

which = sys.argv[1:]
timings = {}
definitions = defs()
repository = definitions.get_repository_def()
resources = {"lake": DataLakeResource(root=os.environ["MARKET_ASSETS_DATA_ROOT"]), "planning": ClosePlanningResource(),
             "alerts": AlertsResource()}
with dg.DagsterInstance.get() as instance:
    def timed(name, evaluate):
        started = time.perf_counter()
        outcome = evaluate()
        timings[name] = [time.perf_counter() - started, len(getattr(outcome, "run_requests", None) or [])
                         if not isinstance(outcome, list) else len(outcome)]

    if "schedule" in which:
        schedule = definitions.resolve_schedule_def("xnys_close")
        tick = pd.Timestamp.now(tz="UTC").floor("min")
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick.to_pydatetime(),
                                       resources=resources) as context:
            timed("xnys_close schedule", lambda: schedule(context))
    if "close_bars" in which:
        latest = instance.fetch_materializations(index_composition.key, limit=1).records[0].storage_id
        with dg.build_sensor_context(instance=instance, cursor=str(latest), resources=resources,
                                     repository_def=repository) as context:
            timed(sys.argv[-1], lambda: close_bars(context))
    if "cache" in which:
        graph = repository.asset_graph
        def build():
            for key in graph.materializable_asset_keys:
                definition = graph.get(key).partitions_def
                if definition is not None:
                    instance.get_status_by_partition(key, [], definition)
        timed("partition-status cache", build)
    if "rebuild" in which:
        with dg.build_sensor_context(instance=instance, resources=resources, repository_def=repository) as context:
            timed("partition_status_cache sensor", lambda: [partition_status_cache(context)])
        job = definitions.resolve_job_def("refresh_partition_status")
        timed("refresh_partition_status run", lambda: [job.execute_in_process(instance=instance)])
    if "others" in which:
        for sensor in (partition_status_cache, abandoned_runs, freshness_alerts):
            with dg.build_sensor_context(instance=instance, resources=resources, repository_def=repository) as context:
                timed(f"{sensor.name} sensor", lambda: sensor(context))
print(json.dumps(timings))
"""


def time_ticks(env: dict[str, str], *which: str) -> dict[str, list[float]]:
    """Seconds (and runs requested) of the ticks `which`, each evaluated as the daemon evaluates it,
    in a process of its own that has loaded the code location first."""
    done = subprocess.run(
        [sys.executable, "-c", TICKS, *which], env=env, cwd=env["DAGSTER_HOME"], capture_output=True, text=True, timeout=1800
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-4000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- The webserver and the browser -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Webserver:
    """A `dagster-webserver` on the code location, with the code location loaded."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster-webserver"),
                "-m",
                "market_assets",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            env=env,
            cwd=env["DAGSTER_HOME"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        # Load the code location first (the UI has it loaded when a user opens an asset page).
        self.graphql("{ assetNodes { id } }")

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        answer = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=600)
        answer.raise_for_status()
        return answer.json()

    def partition_query(self) -> list[float]:
        """Seconds of the asset page's partition-status query, three times in a row."""
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            body = self.graphql(PARTITION_HEALTH_QUERY, {"assetKey": {"path": ASSET_PAGE}})
            timings.append(time.perf_counter() - started)
            assert body["data"]["assetNodeOrError"]["assetPartitionStatuses"]["ranges"], body
        return timings

    def stop(self) -> None:
        os.killpg(self._process.pid, signal.SIGTERM)
        self._process.wait(timeout=60)


def time_pages(url: str, shots: Path) -> dict[str, float]:
    """Seconds, in a real browser, from the address or the click to the first figure each shows:
    the partitions view of the asset page, its Materialize dialog, the close job's launchpad. A
    screenshot of each page goes to `shots`."""
    from playwright.sync_api import expect, sync_playwright

    from market_assets_tests.browser import CHROMIUM, CHROMIUM_ARGS

    timings = {}
    asset = f"{url}/assets/{'/'.join(ASSET_PAGE)}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(120_000)

        def timed(name: str, action, shown) -> None:
            started = time.perf_counter()
            action()
            expect(shown()).to_be_visible()
            timings[name] = time.perf_counter() - started
            page.screenshot(path=shots / f"{len(timings):02d}-{re.sub('[^a-z]+', '-', name.lower())}.png")

        # A first visit loads the UI's scripts, as a user's browser has them after their first page.
        page.goto(asset, wait_until="domcontentloaded")
        expect(page.get_by_role("button", name="Materialize…")).to_be_visible()
        for attempt in ("first", "again"):
            timed(
                f"asset page, partitions view ({attempt})",
                lambda: page.goto(f"{asset}?view=partitions", wait_until="commit"),
                lambda: page.get_by_text(re.compile(r"^Materialized \(\d")),
            )
        timed(
            "Materialize dialog",
            lambda: page.get_by_role("button", name="Materialize…").click(),
            lambda: page.get_by_role("dialog").get_by_role("button", name=re.compile(r"^Launch")),
        )
        page.keyboard.press("Escape")
        timed(
            "close job's launchpad",
            lambda: page.goto(f"{url}/locations/market_assets/jobs/us_market_close/playground", wait_until="commit"),
            lambda: page.get_by_role("button", name=re.compile("Launch Run")),
        )
        browser.close()
    return timings


# --- Main ------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=40, help="sessions materialized before the latest")
    parser.add_argument("--no-browser", action="store_true", help="leave out the pages in Chromium")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-partitions-"))
    home, lake = work / "dagster_home", work / "lake"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    entries = [
        entry
        for entry in yaml.safe_load((PROJECT_ROOT / "bench" / "indices.yaml").read_text())["indices"]
        if entry["name"] == MARKET
    ]
    (work / "indices.yaml").write_text(yaml.safe_dump({"indices": entries}))
    # Every seeded session is in the window first; the project's default window comes after.
    wide = str(args.sessions * 2 + 21)
    os.environ.update(
        {
            "DAGSTER_HOME": str(home),
            "MARKET_ASSETS_DATA_ROOT": str(lake),
            "MARKET_ASSETS_INDICES_FILE": str(work / "indices.yaml"),
            "MARKET_ASSETS_PARTITION_DAYS": wide,
            "PYTHONPATH": str(PROJECT_ROOT),
        }
    )
    env = dict(os.environ)
    default_window = {name: value for name, value in env.items() if name != "MARKET_ASSETS_PARTITION_DAYS"}
    try:
        started = time.perf_counter()
        seeded = seed(home, lake, args.symbols, args.sessions)
        print(
            f"seeded {args.sessions} sessions x {args.symbols:,} symbols: "
            + ", ".join(f"{asset} {count:,}" for asset, count in seeded["counts"].items())
            + f" partitions materialized ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )

        # The partition-status cache over the wide window, as months of closes leave it.
        built = time_ticks(env, "cache")["partition-status cache"][0]
        print(f"the partition-status cache of the bars assets, built over all {args.sessions} sessions: {built:.2f} s")

        # The window moves: the code location loads with the project's default window.
        moved = time_ticks(default_window, "rebuild")
        target(
            "partition_status_cache tick after the window moved (launching the rebuild)",
            moved["partition_status_cache sensor"][0],
            "tick",
        )
        print(
            f"refresh_partition_status run, rebuilding the cache of the assets whose window moved: "
            f"{moved['refresh_partition_status run'][0]:.2f} s",
            flush=True,
        )
        for name, (seconds, _) in time_ticks(default_window, "others").items():
            target(f"{name} tick", seconds, "tick")
        for name, (seconds, runs) in time_ticks(
            default_window, "schedule", "close_bars", "close_bars sensor tick at the close"
        ).items():
            target(f"{name} ({runs} runs requested)", seconds, "tick")
        # The session's composition stored: the sensor's tick has nothing to launch.
        import dagster as dg

        from market_assets.lake.store import ParquetStore

        ParquetStore(str(lake)).write(
            "index_composition",
            f"{seeded['latest']}|{MARKET}",
            pd.DataFrame({"symbol": seeded["symbols"], "name": seeded["symbols"]}),
        )
        with dg.DagsterInstance.get() as instance:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key="index_composition", partition=dg.MultiPartitionKey({"date": seeded["latest"], "index": MARKET})
                )
            )
        for name, (seconds, runs) in time_ticks(default_window, "close_bars", "close_bars sensor tick after the close").items():
            target(f"{name} ({runs} runs requested)", seconds, "tick")

        server = Webserver(default_window)
        try:
            server.graphql("mutation { setNuxSeen }")  # the newsletter prompt, as a person dismisses it once
            cold, *warm = server.partition_query()
            target("partition-status query of xnys/daily_bars, default window, first after the window moved, cold", cold, "query")
            print(f"    warm: {min(warm):.2f} s")
            shots = Path(tempfile.mkdtemp(prefix="bench-partitions-pages-"))
            pages = {} if args.no_browser else time_pages(server.url, shots)
        finally:
            server.stop()
        for name, seconds in pages.items():
            target(f"in Chromium: {name}", seconds, "page")
        server = Webserver(default_window)
        try:
            cold, *warm = server.partition_query()
            target("partition-status query after a webserver restart, cold", cold, "query")
            print(f"    warm: {min(warm):.2f} s")
        finally:
            server.stop()
        if not args.no_browser:
            print(f"the pages as the browser showed them: {shots}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
