"""Does the instance stay quick as the partition grid grows? Three years of sessions x 210 symbols.

    .venv/bin/python bench/partition_scale.py [--years 3] [--symbols 210]

Seeds a fresh `DAGSTER_HOME` (the project's `dagster.yaml`) with `daily_bars` and
`index_composition` materialized for every session of the last `--years` years, then times:

- the UI's partition-status query for `daily_bars`: the `PartitionHealthQuery` GraphQL call the
  asset page makes, sent to a real `dagster-webserver` (cold, then warm), first with the date
  partitions covering all the seeded years, then with the project's default rolling window
  (`MARKET_ASSETS_PARTITION_DAYS`, 365), which is the design this measurement led to;
- a tick of the `xnys_close` schedule and of the `close_bars` sensor, evaluated as the daemon
  evaluates them;
- the tick of the `partition_status_cache` sensor that rebuilds Dagster's partition-status cache
  once the window has moved, before the UI's first query after the move.

Writing 160,000 materializations one by one through Dagster would take the best part of an hour
here (about 10 ms each on sqlite), so they are seeded in one transaction: each row is a real
runless materialization event serialized by Dagster, with its partition key and dimension tags
substituted. One event is then reported through Dagster itself, so the asset's record points at
the latest storage id as it would after real runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

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


def seed(home: Path, years: int, symbol_count: int) -> dict[str, int]:
    import dagster as dg

    from market_assets.defs.partitions import session_partitions, symbol_partitions
    from market_assets.domain.exchange_sessions import latest_closed_session
    from market_assets.lake.store import ParquetStore
    from market_assets.sources.indices import followed_indices

    # Everything up to the session before the latest close is loaded: the latest one is due.
    latest = min(latest_closed_session(code) for code in ("XNYS", "XHKG"))
    first = f"{pd.Timestamp.now() - pd.DateOffset(years=years):%Y-%m-%d}"
    sessions = [key for key in session_partitions.get_partition_keys() if first <= key < f"{latest:%Y-%m-%d}"]
    us = [f"SYNU{number:03d}.US" for number in range(1, symbol_count - symbol_count * 2 // 5 + 1)]
    hk = [f"{9000 + number}.HK" for number in range(1, symbol_count * 2 // 5 + 1)]
    symbols = us + hk
    members = {"DJI": us[:30], "NDX": us[:10] + us[30:120], "HSI": hk}
    store = ParquetStore(os.environ["MARKET_ASSETS_DATA_ROOT"])
    for index, names in members.items():
        store.write("index_composition", f"{sessions[-1]}|{index}", pd.DataFrame({"symbol": names, "name": names}))
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(symbol_partitions.name, symbols)
        template = {}
        for asset, key in (("daily_bars", f"{sessions[0]}|TEMPLATE.US"), ("index_composition", f"{sessions[0]}|DJI")):
            date, second = key.split("|")
            dims = {"date": date, "symbol" if asset == "daily_bars" else "index": second}
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key=asset, partition=dg.MultiPartitionKey(dims))
            )
    db = sqlite3.connect(home / "history" / "runs" / "index.db")
    for asset in ("daily_bars", "index_composition"):
        template[asset] = db.execute(
            "select id, event, timestamp from event_logs where asset_key = ?", (json.dumps([asset]),)
        ).fetchone()
        template[asset + "_tags"] = db.execute(
            "select key, value from asset_event_tags where event_id = ?", (template[asset][0],)
        ).fetchall()
    rows = {"daily_bars": [], "index_composition": []}
    for session in sessions:
        for asset, seconds in (("daily_bars", symbols), ("index_composition", list(followed_indices()))):
            for second in seconds:
                if asset == "daily_bars" and session == sessions[0] and second == "TEMPLATE.US":
                    continue
                rows[asset].append((session, second))
    counts = {}
    with db:
        for asset, pairs in rows.items():
            _, event, timestamp = template[asset]
            placeholder = "TEMPLATE.US" if asset == "daily_bars" else "DJI"
            next_id = db.execute("select max(id) from event_logs").fetchone()[0] + 1
            events, tags = [], []
            for offset, (session, second) in enumerate(pairs):
                text = event.replace(placeholder, second).replace(sessions[0], session)
                events.append((next_id + offset, "", text, "ASSET_MATERIALIZATION", timestamp, None,
                               json.dumps([asset]), f"{session}|{second}"))
                tags += [
                    (next_id + offset, json.dumps([asset]), key,
                     value.replace(placeholder, second).replace(sessions[0], session), timestamp)
                    for key, value in template[asset + "_tags"]
                ]
            db.executemany("insert into event_logs values (?, ?, ?, ?, ?, ?, ?, ?)", events)
            db.executemany(
                "insert into asset_event_tags (event_id, asset_key, key, value, event_timestamp) values (?, ?, ?, ?, ?)",
                tags,
            )
            counts[asset] = len(pairs) + 1
    db.close()
    with dg.DagsterInstance.get() as instance:
        last = f"{sessions[-1]}|{symbols[0]}"
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key="daily_bars",
                partition=dg.MultiPartitionKey(dict(zip(("date", "symbol"), last.split("|")))),
            )
        )
        from market_assets.defs.bars.keys import DAILY

        counts["daily_bars_materialized"] = len(instance.get_materialized_partitions(DAILY))
    counts["sessions"], counts["symbols"] = len(sessions), len(symbols)
    return counts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_partition_query(home: Path, partition_days: int | None) -> list[float]:
    """Cold and warm timings of the asset page's partition query, with the grid over `partition_days`
    (None: the project's default window)."""
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.pop("MARKET_ASSETS_PARTITION_DAYS", None)
    if partition_days is not None:
        env["MARKET_ASSETS_PARTITION_DAYS"] = str(partition_days)
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-m", "market_assets",
         "-h", "127.0.0.1", "-p", str(port)],
        env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        # Load the code location first (the UI has it loaded when a user opens an asset page).
        requests.post(url, json={"query": "{ assetNodes { id } }"}, timeout=600).raise_for_status()
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            answer = requests.post(
                url,
                json={"query": PARTITION_HEALTH_QUERY, "variables": {"assetKey": {"path": ["daily_bars"]}}},
                timeout=600,
            )
            timings.append(time.perf_counter() - started)
            body = answer.json()
            statuses = body["data"]["assetNodeOrError"]["assetPartitionStatuses"]
            assert statuses["__typename"] if "__typename" in statuses else statuses["ranges"], body
        return timings
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)


REBUILD_TICK = """
import time
import dagster as dg
from market_assets.definitions import defs
from market_assets.defs.maintenance.sensors import partition_status_cache
with dg.DagsterInstance.get() as instance:
    context = dg.build_sensor_context(instance=instance, repository_def=defs().get_repository_def())
    started = time.perf_counter()
    result = partition_status_cache(context)
    print(f"{time.perf_counter() - started:.2f}|{result.skip_message}")
"""


def time_cache_rebuild(home: Path) -> tuple[float, str]:
    """Seconds and outcome of a `partition_status_cache` tick in a code location with the
    project's default window, as the daemon evaluates it after the window moved."""
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.pop("MARKET_ASSETS_PARTITION_DAYS", None)
    done = subprocess.run([sys.executable, "-c", REBUILD_TICK], env=env, cwd=home, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(done.stderr)
    seconds, message = done.stdout.strip().splitlines()[-1].split("|", 1)
    return float(seconds), message


def report_partition_query(home: Path, partition_days: int | None, label: str) -> None:
    cold, *warm = time_partition_query(home, partition_days)
    print(f"UI partition status query for daily_bars, {label}: {cold:.2f} s cold, {min(warm):.2f} s warm   (target <= 2 s)")


def time_ticks() -> dict[str, float]:
    import dagster as dg

    from market_assets.definitions import defs
    from market_assets.defs.bars.sensors import close_bars
    from market_assets.defs.compositions.assets import index_composition
    from market_assets.defs.resources import ClosePlanningResource
    from market_assets.lake.resource import DataLakeResource

    with dg.DagsterInstance.get() as instance:
        schedule = defs().resolve_schedule_def("xnys_close")
        tick = pd.Timestamp.now(tz="UTC").floor("min")
        resources = {"lake": DataLakeResource(root=os.environ["MARKET_ASSETS_DATA_ROOT"]), "close": ClosePlanningResource()}
        with dg.build_schedule_context(
            instance=instance, scheduled_execution_time=tick.to_pydatetime(), resources=resources
        ) as context:
            started = time.perf_counter()
            requests_ = schedule(context)
            schedule_seconds = time.perf_counter() - started
        # The sensor in its steady state: every stored composition already seen (the cursor).
        cursor = instance.fetch_materializations(index_composition.key, limit=1).records[0].storage_id
        with dg.build_sensor_context(instance=instance, cursor=str(cursor), resources=resources) as context:
            started = time.perf_counter()
            result = close_bars(context)
            sensor_seconds = time.perf_counter() - started
    launched = len(getattr(result, "run_requests", []) or [])
    return {"schedule": schedule_seconds, "sensor": sensor_seconds,
            "schedule_runs": len(requests_) if isinstance(requests_, list) else 0, "sensor_runs": launched}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=210)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-partitions-"))
    home = work / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    # The grid covers the seeded years here; the project's default window is measured after.
    seeded_days = args.years * 366
    os.environ.update({
        "DAGSTER_HOME": str(home),
        "MARKET_ASSETS_DATA_ROOT": str(work / "lake"),
        "MARKET_ASSETS_PARTITION_DAYS": str(seeded_days),
    })
    try:
        started = time.perf_counter()
        counts = seed(home, args.years, args.symbols)
        print(f"seeded {counts['sessions']} sessions x {counts['symbols']} symbols: "
              f"{counts['daily_bars_materialized']} daily_bars partitions materialized, "
              f"{counts['index_composition']} compositions ({time.perf_counter() - started:.1f} s)")
        ticks = time_ticks()
        print(f"schedule tick (xnys_close): {ticks['schedule']:.3f} s, {ticks['schedule_runs']} runs requested   (target <= 2 s)")
        print(f"sensor tick (close_bars):   {ticks['sensor']:.3f} s, {ticks['sensor_runs']} runs requested   (target <= 2 s)")
        report_partition_query(home, seeded_days, f"all {args.years} years in the grid")
        seconds, outcome = time_cache_rebuild(home)
        print(f"partition_status_cache tick after the window moved: {seconds:.2f} s ({outcome})")
        report_partition_query(home, None, "default window, first query after the window moved and that tick")
        report_partition_query(home, None, "default window, after a webserver restart")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
