"""The maintenance domain's definitions: what keeps the lake small and the instance quick."""

import dagster as dg

from market_assets import settings
from market_assets.defs.maintenance.compaction import compact_lake, compaction_schedule
from market_assets.defs.maintenance.retention import RetentionResource, prune_instance, retention_schedule
from market_assets.defs.maintenance.sensors import abandoned_runs, partition_status_cache, refresh_partition_status
from market_assets.defs.resources import bound


def maintenance_definitions() -> dg.Definitions:
    """Compaction, retention and the partition-status cache, their schedules and sensors, and the
    sensor that fails runs whose process died."""
    return dg.Definitions(
        jobs=[compact_lake, prune_instance, refresh_partition_status],
        schedules=[compaction_schedule, retention_schedule],
        sensors=[partition_status_cache, abandoned_runs],
        resources={"retention": RetentionResource(days=bound(settings.RETENTION_DAYS))},
    )
