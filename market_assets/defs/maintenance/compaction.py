"""`compact_lake`: the lake's compaction (`market_assets/lake/compaction.py`) as a job, scheduled
once a day when no exchange is closing."""

import dagster as dg

from market_assets.defs.runs import close_in_flight
from market_assets.lake.compaction import compact
from market_assets.lake.resource import DataLakeResource

COMPACTION_TIME = "30 3 * * *"
"""03:30 UTC: after New York's close is loaded (21:00-22:00 UTC) and before Hong Kong's (08:00 UTC)."""


@dg.op(description="Remove the bars snapshots that can be rebuilt exactly from others; skipped while a close runs.")
def compact_bars(context: dg.OpExecutionContext, lake: DataLakeResource) -> dg.Output[None]:
    if close_in_flight(context.instance):
        context.log.info("a close run is queued or running: nothing compacted until the next tick")
        return dg.Output(None, metadata={"skipped": "a close run was in flight"})
    report = compact(lake.store, progress=context.log.info)
    return dg.Output(
        None,
        metadata={
            **{f"{asset}_removed": dg.MetadataValue.int(count) for asset, count in report.removed.items()},
            **{f"{asset}_kept": dg.MetadataValue.int(count) for asset, count in report.kept.items()},
            "bytes_before": dg.MetadataValue.int(report.bytes_before),
            "bytes_after": dg.MetadataValue.int(report.bytes_after),
        },
    )


@dg.job(description="Compact the lake: keep each symbol's newest snapshot and the last before each adjustment.")
def compact_lake() -> None:
    compact_bars()


compaction_schedule = dg.ScheduleDefinition(
    name="compact_lake_daily",
    job=compact_lake,
    cron_schedule=COMPACTION_TIME,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
