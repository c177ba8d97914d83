"""Sensors: the bars runs of each session, as early as the close allows.

The close schedules launch composition runs. This sensor launches the bars runs, twice over:

- **At the close**, for every due session whose composition is not stored yet, it launches the
  bars of the index's members as of its latest stored composition, alongside the composition run
  rather than after it. Constituents rarely change, so this is nearly always the whole close, and
  the session is loaded a composition run (and a sensor interval) sooner.
- **After each stored composition** (cursor: the last event's storage id) it launches what is
  still missing: new constituents, and everything when there was no earlier composition to go by.
  Symbols that stored or in-flight runs already cover are left out, so nothing is fetched twice.
- **After the close**, once no close run is queued or running, it rebuilds the membership table
  from the compositions stored since the last rebuild: nothing waits for that table, so it does
  not take the CPU from a close in progress.

Symbols shared by indices are loaded once. Run keys name the session and index (at the close) or
the composition event (after it), so no launch is ever repeated.

A second sensor, `partition_status_cache`, keeps the UI's partition views quick when the date
window moves or symbols are added.
"""

import dagster as dg
import pandas as pd
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES
from dagster._core.storage.tags import RUN_KEY_TAG

from market_assets.assets.composition import index_composition
from market_assets.close import SESSION_TAG, in_flight_symbols, plan_close_runs
from market_assets.jobs import close_jobs, membership_job
from market_assets.partitions import composition_partitions, dimensions
from market_assets.resources import DataLakeResource
from market_assets.schedules import catch_up_sessions, due_sessions, indices_on
from market_assets.sessions import CALENDARS, close_delay, head_start


@dg.sensor(
    jobs=[*close_jobs.values(), membership_job],
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def close_bars(context: dg.SensorEvaluationContext, lake: DataLakeResource) -> dg.SensorResult | dg.SkipReason:
    """Launch the bars runs of each due session and each newly stored composition.

    Every close waits for this sensor, so it is evaluated as often as the daemon allows (every
    5 s); a tick with nothing to do only reads the event log and the run list.
    """
    planned: dict[str, set[str]] = {}
    requests = _at_the_close(context, lake, planned)
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=index_composition.key, after_storage_id=int(context.cursor or 0)
        ),
        limit=50,
        ascending=True,
    ).records
    for record in records:
        dims = dimensions(record.partition_key, composition_partitions)
        members = list(lake.store.read("index_composition", record.partition_key)["symbol"])
        requests += _requests(
            context, dims["index"], dims["date"], members, f"{record.partition_key}|{record.storage_id}", planned
        )
    requests = requests or _membership(context)
    cursor = str(records[-1].storage_id) if records else context.cursor
    if not requests:
        return dg.SensorResult(
            skip_reason="no session due, no new index composition, membership up to date", cursor=cursor
        )
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def _at_the_close(
    context: dg.SensorEvaluationContext, lake: DataLakeResource, planned: dict[str, set[str]]
) -> list[dg.RunRequest]:
    """Bars of due sessions whose compositions are not stored, by each index's latest composition.

    A session is due here `head_start()` before its publication: the runs wait for it in their
    step, started.
    """
    now = pd.Timestamp.now(tz="UTC") + head_start()
    loaded = context.instance.get_materialized_partitions(index_composition.key)
    requests = []
    for code in CALENDARS:
        for session in due_sessions(code, now, close_delay(code), catch_up_sessions(), loaded):
            day = f"{session:%Y-%m-%d}"
            for index in indices_on(code):
                earlier = sorted(
                    key for key in loaded if key.endswith(f"|{index}") and key < f"{day}|"
                )
                key = f"{day}|{index}|close"
                if f"{day}|{index}" in loaded or not earlier or _launched(context, f"{key}|0"):
                    continue
                members = list(lake.store.read("index_composition", earlier[-1])["symbol"])
                requests += _requests(context, index, day, members, key, planned)
    return requests


def _launched(context: dg.SensorEvaluationContext, run_key: str) -> bool:
    """Whether a run with `run_key` exists: then its close is launched, and planning it again on
    every tick until the composition is stored would only load the instance during the close."""
    return bool(context.instance.get_run_records(dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1))


def _membership(context: dg.SensorEvaluationContext) -> list[dg.RunRequest]:
    """The rebuild of the membership table after the latest stored composition, if not done yet
    and no close run is in flight (its run key names that composition's event)."""
    latest = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=index_composition.key), limit=1
    ).records
    if not latest:
        return []
    run_key = f"membership|{latest[0].storage_id}"
    if _launched(context, run_key) or _close_in_flight(context):
        return []
    return [dg.RunRequest(run_key=run_key, job_name=membership_job.name)]


def _close_in_flight(context: dg.SensorEvaluationContext) -> bool:
    """Whether a close run is queued or running: work nothing waits for is left until it ends."""
    return any(
        SESSION_TAG in record.dagster_run.tags
        for record in context.instance.get_run_records(dg.RunsFilter(statuses=NOT_FINISHED_STATUSES))
    )


def _requests(
    context: dg.SensorEvaluationContext,
    index: str,
    session: str,
    members: list[str],
    key: str,
    planned: dict[str, set[str]],
) -> list[dg.RunRequest]:
    if session not in planned:
        planned[session] = in_flight_symbols(context.instance, session)
    runs = plan_close_runs(context.instance, index, session, members, planned=planned[session])
    planned[session].update(members)
    return [
        dg.RunRequest(run_key=f"{key}|{number}", job_name=run.job_name, tags=run.tags)
        for number, run in enumerate(runs)
    ]


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def partition_status_cache(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Rebuild Dagster's partition-status cache of each asset whose partitions changed.

    Dagster keeps each partitioned asset's status in a cache keyed by its partitions, the date
    window and the registered symbols: the window's start moves on the first code location load
    of a month (`market_assets.sessions.first_session`), and a composition registers new
    constituents. The first status query after either (the UI's asset page) would rebuild the
    cache from every stored materialization, about 4 s for three years of 210 symbols
    (bench/partition_scale.py). Done here, once no close run is in flight, it costs the daemon
    those seconds and no user any. A tick with nothing to rebuild reads one record per asset.
    """
    if context.repository_def is None:
        raise ValueError("partition_status_cache reads the assets of its code location: evaluate it in one")
    if _close_in_flight(context):
        return dg.SkipReason("a close run is in flight: the cache is rebuilt once it has ended")
    graph = context.repository_def.asset_graph
    partitioned = {key: graph.get(key).partitions_def for key in graph.materializable_asset_keys}
    partitioned = {key: definition for key, definition in partitioned.items() if definition is not None}
    records = {record.asset_entry.asset_key: record for record in context.instance.get_asset_records(list(partitioned))}
    rebuilt = []
    for key, definition in sorted(partitioned.items()):
        cached = records[key].asset_entry.cached_status if key in records else None
        with dg.partition_loading_context(dynamic_partitions_store=context.instance):
            current = definition.get_serializable_unique_identifier()
        if cached is None or cached.partitions_def_id == current:
            continue
        context.instance.get_status_by_partition(key, [], definition)
        rebuilt.append(key.to_user_string())
    if rebuilt:
        return dg.SkipReason(f"rebuilt the partition-status cache of {', '.join(rebuilt)}: their partitions changed")
    return dg.SkipReason("every cached partition status matches its asset's partitions")
