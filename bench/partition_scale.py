"""Does the instance stay quick as the partition grid grows? Three years of sessions x 210 symbols.

    .venv/bin/python bench/partition_scale.py [--years 3] [--symbols 210]

Seeds a fresh `DAGSTER_HOME` (the project's `dagster.yaml`) with each exchange's `daily_bars`
(`xnys/daily_bars`, `xhkg/daily_bars`) materialized on each of its sessions of the last `--years`
years, and `index_composition` on every session, then times:

- the UI's partition-status query for `xnys/daily_bars`: the `PartitionHealthQuery` GraphQL call the
  asset page makes, sent to a real `dagster-webserver` (cold, then warm), first with the date
  partitions covering all the seeded years, then with the project's default rolling window
  (`MARKET_ASSETS_PARTITION_DAYS`, 365), which is the design this measurement led to;
- a tick of the `xnys_close` schedule and of the `close_bars` sensor, evaluated as the daemon
  evaluates them;
- the tick of the `partition_status_cache` sensor that rebuilds Dagster's partition-status cache
  once the window has moved, before the UI's first query after the move;
- the same query on one grid per exchange, as the bars assets have, against a single grid over the
  union of the exchanges' sessions and all their symbols, over the same stored cells
  (`--exchanges`, the project's default window): how many of the union grid's cells can never
  exist (a US symbol on a day only Hong Kong trades), and what the per-exchange grids cost the UI.

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
    """Each exchange's bars materialized on each of its sessions for its symbols, and every
    composition; returns the counts per asset."""
    import dagster as dg

    from market_assets.defs.bars.keys import DAILY, bars_asset_key
    from market_assets.defs.partitions import session_partitions, sessions_of, symbol_partitions
    from market_assets.domain.exchange_sessions import latest_closed_session
    from market_assets.lake.store import ParquetStore
    from market_assets.sources.indices import followed_indices

    # Everything up to the session before the latest close is loaded: the latest one is due.
    first = f"{pd.Timestamp.now() - pd.DateOffset(years=years):%Y-%m-%d}"
    us = [f"SYNU{number:03d}.US" for number in range(1, symbol_count - symbol_count * 2 // 5 + 1)]
    hk = [f"{9000 + number}.HK" for number in range(1, symbol_count * 2 // 5 + 1)]
    symbols = {"XNYS": us, "XHKG": hk}
    sessions = {
        code: [key for key in sessions_of([code]).get_partition_keys()
               if first <= key < f"{latest_closed_session(code):%Y-%m-%d}"]
        for code in symbols
    }
    latest = min(latest_closed_session(code) for code in symbols)
    days = [key for key in session_partitions.get_partition_keys() if first <= key < f"{latest:%Y-%m-%d}"]
    members = {"DJI": us[:30], "NDX": us[:10] + us[30:120], "HSI": hk}
    store = ParquetStore(os.environ["MARKET_ASSETS_DATA_ROOT"])
    for index, names in members.items():
        store.write("index_composition", f"{days[-1]}|{index}", pd.DataFrame({"symbol": names, "name": names}))
    cells = {
        json.dumps(["index_composition"]): [(day, index) for day in days for index in followed_indices()],
        **{json.dumps(bars_asset_key(code, DAILY).path): [(day, symbol) for day in sessions[code] for symbol in names]
           for code, names in symbols.items()},
    }
    with dg.DagsterInstance.get() as instance:
        for code, names in symbols.items():
            instance.add_dynamic_partitions(symbol_partitions[code].name, names)
        for asset, pairs in cells.items():
            second = "index" if asset == json.dumps(["index_composition"]) else "symbol"
            instance.report_runless_asset_event(dg.AssetMaterialization(
                asset_key=json.loads(asset), partition=dg.MultiPartitionKey({"date": pairs[0][0], second: pairs[0][1]})
            ))
    db = sqlite3.connect(home / "history" / "runs" / "index.db")
    with db:
        for asset, pairs in cells.items():
            clone_materializations(db, asset, pairs[0], pairs[1:])
    db.close()
    counts = {"index_composition": len(cells[json.dumps(["index_composition"])])}
    with dg.DagsterInstance.get() as instance:
        for code, names in symbols.items():
            key = bars_asset_key(code, DAILY)
            # One event through Dagster itself, so the asset's record points at the latest storage id.
            instance.report_runless_asset_event(dg.AssetMaterialization(
                asset_key=key, partition=dg.MultiPartitionKey({"date": sessions[code][-1], "symbol": names[0]})
            ))
            counts[key.to_user_string()] = len(instance.get_materialized_partitions(key))
    counts["sessions"], counts["symbols"] = len(days), sum(map(len, symbols.values()))
    return counts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_partition_query(home: Path, partition_days: int | None) -> list[float]:
    """Cold and warm timings of the asset page's partition query, with the grid over `partition_days`
    (None: the project's default window)."""
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.pop("MARKET_ASSETS_PARTITION_DAYS", None)
    if partition_days is not None:
        env["MARKET_ASSETS_PARTITION_DAYS"] = str(partition_days)
    return time_query(env, ["-m", "market_assets"], ["xnys", "daily_bars"])


def time_query(env: dict[str, str], location: list[str], asset: list[str]) -> list[float]:
    """Cold and warm timings of the partition query for `asset`, sent to a webserver serving `location`."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), *location, "-h", "127.0.0.1", "-p", str(port)],
        env={**env, "PYTHONPATH": str(PROJECT_ROOT)}, cwd=env["DAGSTER_HOME"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
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
                json={"query": PARTITION_HEALTH_QUERY, "variables": {"assetKey": {"path": asset}}},
                timeout=600,
            )
            timings.append(time.perf_counter() - started)
            body = answer.json()
            statuses = body["data"]["assetNodeOrError"]["assetPartitionStatuses"]
            assert statuses["ranges"], body
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
    print(f"UI partition status query for xnys/daily_bars, {label}: {cold:.2f} s cold, {min(warm):.2f} s warm   (target <= 2 s)")


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


GRIDS_LOCATION = '''
"""One bars-shaped asset over the union of the exchanges' sessions, and one per exchange."""
import dagster as dg

from market_assets.defs.partitions import sessions_of, window_start

EXCHANGES = {exchanges!r}


def grid(prefix, exchanges):
    return dg.AssetSpec(
        key=[prefix, "daily_bars"],
        partitions_def=dg.MultiPartitionsDefinition(
            {{"date": sessions_of(exchanges, window_start()),
             "symbol": dg.DynamicPartitionsDefinition(name=f"{{prefix}}_symbols")}}
        ),
    )


defs = dg.Definitions(assets=[grid("union", EXCHANGES), *(grid(code.lower(), [code]) for code in EXCHANGES)])
'''


def grid_symbols(exchanges: list[str], symbol_count: int) -> dict[str, list[str]]:
    """Made-up symbols per exchange: XNYS and XHKG split `symbol_count` as `seed` does, others 20."""
    hk = symbol_count * 2 // 5
    counts = {"XNYS": symbol_count - hk, "XHKG": hk}
    return {code: [f"SYN{code}{number:03d}" for number in range(counts.get(code, 20))] for code in exchanges}


def seed_grids(home: Path, symbols: dict[str, list[str]]) -> dict[str, tuple[int, int]]:
    """Materialize each exchange's sessions x its symbols, in the union grid and in its own; returns,
    per asset, (cells in its grid, cells stored)."""
    import dagster as dg

    from market_assets.defs.partitions import sessions_of, window_start
    from market_assets.domain.exchange_sessions import latest_closed_session

    first = window_start()
    sessions = {
        code: [key for key in sessions_of([code], first).get_partition_keys()
               if key < f"{latest_closed_session(code):%Y-%m-%d}"]
        for code in symbols
    }
    own = {code.lower(): [(day, symbol) for day in sessions[code] for symbol in symbols[code]] for code in symbols}
    cells = {"union": [cell for pairs in own.values() for cell in pairs], **own}
    union_days = len(sessions_of(list(symbols), first).get_partition_keys())
    grids = {"union": union_days * sum(map(len, symbols.values()))}
    grids.update({code.lower(): len(sessions_of([code], first).get_partition_keys()) * len(symbols[code])
                  for code in symbols})
    with dg.DagsterInstance.get() as instance:
        for prefix, stored in cells.items():
            instance.add_dynamic_partitions(f"{prefix}_symbols", sorted({symbol for _, symbol in stored}))
            day, symbol = stored[0]
            instance.report_runless_asset_event(dg.AssetMaterialization(
                asset_key=[prefix, "daily_bars"], partition=dg.MultiPartitionKey({"date": day, "symbol": symbol})
            ))
    db = sqlite3.connect(home / "history" / "runs" / "index.db")
    with db:
        for prefix, stored in cells.items():
            clone_materializations(db, json.dumps([prefix, "daily_bars"]), stored[0], stored[1:])
    db.close()
    return {prefix: (grids[prefix], len(stored)) for prefix, stored in cells.items()}


def clone_materializations(db: sqlite3.Connection, asset: str, template: tuple[str, str],
                           cells: list[tuple[str, str]]) -> None:
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
        event_tags += [(next_id + offset, asset, name, value.replace(second, key).replace(day, session), timestamp)
                       for name, value in tags]
    db.executemany("insert into event_logs values (?, ?, ?, ?, ?, ?, ?, ?)", events)
    db.executemany(
        "insert into asset_event_tags (event_id, asset_key, key, value, event_timestamp) values (?, ?, ?, ?, ?)",
        event_tags,
    )


def compare_grids(work: Path, exchanges: list[str], symbol_count: int) -> None:
    """The partition-status query on one grid per exchange against the union grid, same stored cells."""
    home = work / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    location = work / "grids.py"
    location.write_text(GRIDS_LOCATION.format(exchanges=exchanges))
    saved = {name: os.environ.pop(name, None) for name in ("MARKET_ASSETS_PARTITION_DAYS", "DAGSTER_HOME")}
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        symbols = grid_symbols(exchanges, symbol_count)
        grids = seed_grids(home, symbols)
        env = dict(os.environ)
        timings = {prefix: time_query(env, ["-f", str(location)], [prefix, "daily_bars"]) for prefix in grids}
    finally:
        os.environ.update({name: value for name, value in saved.items() if value is not None})
    cells, stored = grids["union"]
    never = cells - sum(grids[prefix][0] for prefix in grids if prefix != "union")
    print(f"one grid over {'+'.join(exchanges)}: {cells} cells, {stored} stored, {never} ({never / cells:.1%}) "
          "that can never exist (a symbol on a day its exchange is closed), shown as missing")
    for prefix in grids:
        cold, warm = timings[prefix][0], min(timings[prefix][1:])
        print(f"  {prefix + '/daily_bars':<18} {grids[prefix][0]:>7} cells {grids[prefix][1]:>7} stored   "
              f"query {cold:.2f} s cold, {warm:.2f} s warm")
    each = [prefix for prefix in grids if prefix != "union"]
    union_cold, union_warm = timings["union"][0], min(timings["union"][1:])
    largest_cold = max(timings[prefix][0] for prefix in each)
    total_warm = sum(min(timings[prefix][1:]) for prefix in each)
    print(f"per-exchange grids vs the union grid: largest asset page {largest_cold / union_cold:.2f}x cold, "
          f"all {len(each)} asset pages {total_warm / union_warm:.2f}x warm")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=210)
    parser.add_argument("--exchanges", default="XNYS,XHKG",
                        help="the exchanges of the per-exchange comparison (XNYS and XHKG share --symbols "
                             "as the shipped indices do; any other has WIG20's 20)")
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
              f"{counts['xnys/daily_bars']} xnys/daily_bars and {counts['xhkg/daily_bars']} xhkg/daily_bars "
              f"partitions materialized, {counts['index_composition']} compositions "
              f"({time.perf_counter() - started:.1f} s)")
        ticks = time_ticks()
        print(f"schedule tick (xnys_close): {ticks['schedule']:.3f} s, {ticks['schedule_runs']} runs requested   (target <= 2 s)")
        print(f"sensor tick (close_bars):   {ticks['sensor']:.3f} s, {ticks['sensor_runs']} runs requested   (target <= 2 s)")
        report_partition_query(home, seeded_days, f"all {args.years} years in the grid")
        seconds, outcome = time_cache_rebuild(home)
        print(f"partition_status_cache tick after the window moved: {seconds:.2f} s ({outcome})")
        report_partition_query(home, None, "default window, first query after the window moved and that tick")
        report_partition_query(home, None, "default window, after a webserver restart")
        compare_grids(work / "grids", args.exchanges.split(","), args.symbols)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
