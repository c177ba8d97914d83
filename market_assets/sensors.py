"""Sensors: from a stored composition to the bars runs of its session.

The close schedules launch composition runs; this sensor follows the `index_composition`
materializations (cursor: the last event's storage id) and launches, for each, the planned bars
runs of that (index, session) and a rebuild of the membership table. Symbols shared by indices
whose compositions arrive in the same tick are loaded once. Run keys carry the composition event's
storage id, so an event never launches twice and a re-materialized composition plans again (and
finds nothing left to load when its bars are stored).
"""

import dagster as dg

from market_assets.assets.composition import index_composition
from market_assets.close import plan_close_runs
from market_assets.jobs import close_jobs, membership_job
from market_assets.partitions import composition_partitions, dimensions
from market_assets.resources import DataLakeResource


@dg.sensor(
    jobs=[*close_jobs.values(), membership_job],
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def close_bars(context: dg.SensorEvaluationContext, lake: DataLakeResource) -> dg.SensorResult | dg.SkipReason:
    """Launch the bars runs of each newly stored composition.

    Every close waits for this sensor between its composition and its bars, so it is evaluated as
    often as the daemon allows (every 5 s); a tick with nothing new only reads the event log.
    """
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=index_composition.key, after_storage_id=int(context.cursor or 0)
        ),
        limit=50,
        ascending=True,
    ).records
    if not records:
        return dg.SkipReason("no new index composition since the last tick")
    planned: dict[str, set[str]] = {}
    requests = []
    for record in records:
        key = record.partition_key
        dims = dimensions(key, composition_partitions)
        session, index = dims["date"], dims["index"]
        members = list(lake.store.read("index_composition", key)["symbol"])
        runs = plan_close_runs(
            context.instance, index, session, members, planned=planned.get(session, ())
        )
        planned.setdefault(session, set()).update(members)
        requests += [
            dg.RunRequest(
                run_key=f"{key}|{record.storage_id}|{number}", job_name=run.job_name, tags=run.tags
            )
            for number, run in enumerate(runs)
        ]
    last = records[-1].storage_id
    requests.append(dg.RunRequest(run_key=f"membership|{last}", job_name=membership_job.name))
    return dg.SensorResult(run_requests=requests, cursor=str(last))
