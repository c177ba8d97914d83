"""`close_bars`: the bars runs of each session, as early as the close allows: at the close by each
index's latest stored composition, after each stored composition for what it adds, and the
membership table's rebuild once no close is in flight.
Why: docs/design.md#runs-start-ahead-of-the-publication."""

import dagster as dg
import pandas as pd

from market_assets import settings
from market_assets.defs.bars.jobs import close_jobs
from market_assets.defs.bars.planning import in_flight_symbols, plan_close_runs
from market_assets.defs.compositions.assets import index_composition
from market_assets.defs.compositions.jobs import membership_job
from market_assets.defs.compositions.schedules import due_closes
from market_assets.defs.partitions import composition_partitions, dimensions
from market_assets.defs.resources import ClosePlanningResource
from market_assets.defs.runs import close_in_flight, launched
from market_assets.lake.compositions import composition_for, constituents
from market_assets.lake.resource import DataLakeResource
from market_assets.sources.indices import followed_exchanges, indices_on


@dg.sensor(
    jobs=[*close_jobs.values(), membership_job],
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def close_bars(context: dg.SensorEvaluationContext, lake: DataLakeResource, planning: ClosePlanningResource) -> dg.SensorResult:
    """Launch the bars runs of each due session and each newly stored composition.

    Every close waits for this sensor, so it is evaluated as often as the daemon allows (every
    5 s); a tick with nothing to do only reads the event log and the run list.
    """
    planner = _Planner(context, planning)
    requests = _at_the_close(context, lake, planning, planner)
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=index_composition.key, after_storage_id=int(context.cursor or 0)),
        limit=50,
        ascending=True,
    ).records
    for record in records:
        dims = dimensions(record.partition_key, composition_partitions)
        members = constituents(lake.store, record.partition_key)
        requests += planner.requests(
            dims["index"], dims["date"], members, f"{record.partition_key}|{record.storage_id}", record.partition_key
        )
    requests = requests or _membership(context)
    cursor = str(records[-1].storage_id) if records else context.cursor
    if not requests:
        return dg.SensorResult(skip_reason="no session due, no new index composition, membership up to date", cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)


class _Planner:
    """The run requests of one tick: symbols planned for a session by an earlier request of the
    tick (another index sharing them) or by a run in flight are not planned again."""

    def __init__(self, context: dg.SensorEvaluationContext, planning: ClosePlanningResource) -> None:
        self._instance = context.instance
        self._max_symbols = planning.max_symbols_per_run
        self._planned: dict[str, set[str]] = {}

    def requests(self, index: str, session: str, members: list[str], key: str, composition: str) -> list[dg.RunRequest]:
        """The runs of `members` (listed by the stored `composition`), their run keys from `key`."""
        if session not in self._planned:
            self._planned[session] = in_flight_symbols(self._instance, session)
        runs = plan_close_runs(
            self._instance,
            index,
            session,
            members,
            max_symbols=self._max_symbols,
            planned=self._planned[session],
            composition=composition,
        )
        self._planned[session].update(members)
        return [dg.RunRequest(run_key=f"{key}|{number}", job_name=run.job_name, tags=run.tags) for number, run in enumerate(runs)]


def _at_the_close(
    context: dg.SensorEvaluationContext, lake: DataLakeResource, planning: ClosePlanningResource, planner: _Planner
) -> list[dg.RunRequest]:
    """Bars of due sessions whose compositions are not stored, by each index's latest composition.

    A session is due here a head start before its publication: the runs wait for it in their
    step, started. A close already launched is not planned again (its first run's key exists):
    planning it on every tick until the composition is stored would only load the instance.
    """
    now = pd.Timestamp.now(tz="UTC") + settings.head_start()
    loaded = context.instance.get_materialized_partitions(index_composition.key)
    requests = []
    for code in followed_exchanges():
        for session in due_closes(code, now, planning.catch_up_sessions, loaded):
            day = f"{session:%Y-%m-%d}"
            for index in indices_on(code):
                key = f"{day}|{index}|close"
                if f"{day}|{index}" in loaded or launched(context.instance, f"{key}|0"):
                    continue
                earlier = composition_for(lake.store, index, day)
                if earlier is not None:
                    requests += planner.requests(index, day, constituents(lake.store, earlier), key, earlier)
    return requests


def _membership(context: dg.SensorEvaluationContext) -> list[dg.RunRequest]:
    """The rebuild of the membership table after the latest stored composition, if not done yet
    and no close run is in flight (its run key names that composition's event)."""
    latest = context.instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=index_composition.key), limit=1).records
    if not latest:
        return []
    run_key = f"membership|{latest[0].storage_id}"
    if launched(context.instance, run_key) or close_in_flight(context.instance):
        return []
    return [dg.RunRequest(run_key=run_key, job_name=membership_job.name)]
