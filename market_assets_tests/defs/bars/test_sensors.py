"""The `close_bars` sensor: from the close and from each stored composition to the bars runs, each
symbol of a session planned once, and the membership table rebuilt once the close has ended."""

import dagster as dg
import pandas as pd

from market_assets import settings
from market_assets.defs.bars.sensors import close_bars
from market_assets.defs.compositions.schedules import due_closes
from market_assets.defs.resources import ClosePlanningResource
from market_assets.domain.exchange_sessions import calendar
from market_assets.lake.resource import DataLakeResource


def _sensor(platform, cursor=None):
    with dg.build_sensor_context(
        instance=platform.instance,
        cursor=cursor,
        resources={"lake": DataLakeResource(root=platform.store.root), "planning": ClosePlanningResource(catch_up_sessions=1)},
    ) as context:
        return close_bars(context)


def _compositions(platform, session: str, *indices: str) -> None:
    for index in indices:
        result = platform.job("index_compositions").execute_in_process(
            instance=platform.instance, partition_key=f"{session}|{index}", raise_on_error=False
        )
        assert result.success


def test_sensor_launches_each_index_once_and_shared_symbols_once(platform, synthetic_universe):
    instance = platform.instance
    session = f"{synthetic_universe.last_session['XNYS']:%Y-%m-%d}"
    _compositions(platform, session, "DJI", "NDX")

    result = _sensor(platform)

    by_job = {}
    for request in result.run_requests:
        by_job.setdefault(request.job_name, []).append(request)
    dji = set(synthetic_universe.members("DJI", session))
    ndx = set(synthetic_universe.members("NDX", session))
    order = instance.get_dynamic_partitions("xnys_symbols")

    def symbols(request):
        start = order.index(request.tags["dagster/asset_partition_range_start"].split("|")[1])
        end = order.index(request.tags["dagster/asset_partition_range_end"].split("|")[1])
        return set(order[start : end + 1])

    assert set(by_job) == {"dji_close", "ndx_close"}  # the membership table waits for the close
    assert set().union(*map(symbols, by_job["dji_close"])) == dji
    assert set().union(*map(symbols, by_job["ndx_close"])) == ndx - dji
    assert len(by_job["dji_close"]) == 1
    runs = [
        instance.create_run_for_job(platform.job(r.job_name), tags=r.tags, status=dg.DagsterRunStatus.NOT_STARTED)
        for r in result.run_requests
    ]
    assert not _sensor(platform, cursor=result.cursor).run_requests  # the close runs are in flight

    for run in runs:
        instance.report_run_canceled(run)
    (rebuild,) = _sensor(platform, cursor=result.cursor).run_requests
    assert rebuild.job_name == "refresh_membership"
    instance.create_run_for_job(platform.job(rebuild.job_name), tags={"dagster/run_key": rebuild.run_key})
    assert not _sensor(platform, cursor=result.cursor).run_requests


def test_at_the_close_bars_start_with_the_previous_members(platform, synthetic_universe):
    """A due session whose composition is not stored yet gets its bars run at once, by the
    previous session's list; the composition, once stored, adds nothing already in flight."""
    # The latest session due now: in the minutes between Hong Kong's close and its publication
    # (less the head start), the synthetic data already holds a session the sensor waits for.
    (latest,) = due_closes("XHKG", pd.Timestamp.now(tz="UTC") + settings.head_start(), 1, set())
    previous = f"{calendar('XHKG').previous_session(latest):%Y-%m-%d}"
    session = f"{latest:%Y-%m-%d}"
    _compositions(platform, previous, "HSI")

    result = _sensor(platform)

    (request,) = [r for r in result.run_requests if r.tags.get("market_assets/session") == session]
    assert request.job_name == "hsi_close" and request.tags["market_assets/session"] == session
    assert request.run_key == f"{session}|HSI|close|0"
    members = synthetic_universe.members("HSI", previous)
    assert request.tags["dagster/asset_partition_range_start"] == f"{session}|{members[0]}"
    assert request.tags["dagster/asset_partition_range_end"] == f"{session}|{members[-1]}"
    platform.instance.create_run_for_job(platform.job("hsi_close"), tags=request.tags, status=dg.DagsterRunStatus.NOT_STARTED)

    _compositions(platform, session, "HSI")
    after = _sensor(platform, cursor=result.cursor)

    assert not after.run_requests  # nothing missing; the membership table waits for the close run
