"""The code location's one `Definitions`: the domains' assets, jobs, schedules and sensors, and the
resources they share, configured from the environment (`market_assets.settings`)."""

from __future__ import annotations

import dagster as dg

from market_assets import settings
from market_assets.defs.alerts.resources import AlertsResource
from market_assets.defs.alerts.sensors import close_failure_alerts, freshness_alerts
from market_assets.defs.bars.adjustments import adjustment_events
from market_assets.defs.bars.freshness import with_bars_freshness
from market_assets.defs.bars.jobs import bars_assets, close_jobs, verify_bars
from market_assets.defs.bars.resources import DataQualityResource
from market_assets.defs.bars.sensors import close_bars
from market_assets.defs.compositions.assets import index_composition, index_membership
from market_assets.defs.compositions.jobs import compositions_job, membership_job
from market_assets.defs.compositions.schedules import close_schedules
from market_assets.defs.maintenance.compaction import compact_lake, compaction_schedule
from market_assets.defs.maintenance.retention import RetentionResource, prune_instance, retention_schedule
from market_assets.defs.maintenance.sensors import abandoned_runs, partition_status_cache, refresh_partition_status
from market_assets.defs.resources import ClosePlanningResource
from market_assets.lake.io_manager import ParquetIOManager
from market_assets.lake.resource import DataLakeResource
from market_assets.sources.resources import MarketDataSource, StooqFilesResource, StooqResource


@dg.definitions
def defs() -> dg.Definitions:
    """Built when the code location loads, so each process binds its resources to the environment
    it has then (see `market_assets.settings`)."""
    lake = DataLakeResource(root=_bound(settings.DATA_ROOT))
    return dg.Definitions(
        assets=[
            # compositions
            index_composition,
            index_membership,
            # bars, per exchange
            *(with_bars_freshness(assets, code) for code, assets in bars_assets.items()),
            *adjustment_events,
        ],
        jobs=[compositions_job, membership_job, *close_jobs.values(), verify_bars, compact_lake, prune_instance, refresh_partition_status],
        schedules=[*close_schedules, compaction_schedule, retention_schedule],
        sensors=[close_bars, partition_status_cache, abandoned_runs, close_failure_alerts, freshness_alerts],
        # Steps run in the run's process: see market_assets/defs/bars/executor.py.
        executor=dg.in_process_executor,
        resources={
            "stooq": _source(),
            "lake": lake,
            "quality": DataQualityResource(),
            "close": ClosePlanningResource(
                max_symbols_per_run=_bound(settings.MAX_SYMBOLS_PER_RUN),
                catch_up_sessions=_bound(settings.CATCH_UP_SESSIONS),
            ),
            "io_manager": ParquetIOManager(lake=lake),
            "retention": RetentionResource(days=_bound(settings.RETENTION_DAYS)),
            "alerts": AlertsResource(webhook_url=_bound(settings.ALERT_WEBHOOK_URL), ui_url=_bound(settings.UI_URL)),
        },
    )


def _source() -> MarketDataSource:
    """The `stooq` resource: Stooq over HTTP, or its files saved from a browser (README, "Using real
    data"), as `MARKET_ASSETS_SOURCE` chooses; a load setting, since it picks the resource's class."""
    if settings.SOURCE.value().lower() == "files":
        return StooqFilesResource(folder=_bound(settings.FILES))
    return StooqResource(
        base_url=_bound(settings.STOOQ_BASE_URL),
        api_key=_bound(settings.STOOQ_API_KEY),
        cookies=_bound(settings.STOOQ_COOKIES),
    )


def _bound(setting: settings.Setting) -> object:
    """A resource field's value: the setting's variable when it is set, so that each run resolves
    it in its own process and the launchpad names it, else the setting's default."""
    if not setting.is_set():
        return setting.default
    return dg.EnvVar.int(setting.env_var) if isinstance(setting.default, int) else dg.EnvVar(setting.env_var)
