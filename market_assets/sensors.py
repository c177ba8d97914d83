"""Sensors: the bars runs of each session, as early as the close allows.

The close schedules launch composition runs. This sensor launches the bars runs, twice over:

- **At the close**, for every due session whose composition is not stored yet, it launches the
  bars of the index's members as of its latest stored composition, alongside the composition run
  rather than after it. Constituents rarely change, so this is nearly always the whole close, and
  the session is loaded a composition run (and a sensor interval) sooner.
- **After each stored composition** (cursor: the last event's storage id) it launches what is
  still missing: new constituents, and everything when there was no earlier composition to go by.
  Symbols that stored or in-flight runs already cover are left out, so nothing is fetched twice.
  Then it rebuilds the membership table.

Symbols shared by indices are loaded once. Run keys name the session and index (at the close) or
the composition event (after it), so no launch is ever repeated.
"""

import dagster as dg
import pandas as pd

from market_assets.assets.composition import index_composition
from market_assets.close import in_flight_symbols, plan_close_runs
from market_assets.jobs import close_jobs, membership_job
from market_assets.partitions import composition_partitions, dimensions
from market_assets.resources import DataLakeResource
from market_assets.schedules import catch_up_sessions, close_delay, due_sessions, indices_on
from market_assets.sessions import CALENDARS


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
    if records:
        last = records[-1].storage_id
        requests.append(dg.RunRequest(run_key=f"membership|{last}", job_name=membership_job.name))
    if not requests:
        return dg.SkipReason("no session due and no new index composition since the last tick")
    return dg.SensorResult(
        run_requests=requests, cursor=str(records[-1].storage_id) if records else context.cursor
    )


def _at_the_close(
    context: dg.SensorEvaluationContext, lake: DataLakeResource, planned: dict[str, set[str]]
) -> list[dg.RunRequest]:
    """Bars of due sessions whose compositions are not stored, by each index's latest composition."""
    now = pd.Timestamp.now(tz="UTC")
    loaded = context.instance.get_materialized_partitions(index_composition.key)
    requests = []
    for code in CALENDARS:
        for session in due_sessions(code, now, close_delay(code), catch_up_sessions(), loaded):
            day = f"{session:%Y-%m-%d}"
            for index in indices_on(code):
                earlier = sorted(
                    key for key in loaded if key.endswith(f"|{index}") and key < f"{day}|"
                )
                if f"{day}|{index}" in loaded or not earlier:
                    continue
                members = list(lake.store.read("index_composition", earlier[-1])["symbol"])
                requests += _requests(context, index, day, members, f"{day}|{index}|close", planned)
    return requests


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
