"""The one `Definitions` object of the code location."""

import dagster as dg

from market_assets.assets.adjustments import adjustment_events
from market_assets.assets.bars import bars
from market_assets.assets.composition import index_composition
from market_assets.assets.membership import index_membership
from market_assets.freshness import with_bars_freshness
from market_assets.io_manager import ParquetIOManager
from market_assets.jobs import close_jobs, compositions_job, membership_job
from market_assets.resources import DataLakeResource, DataQualityResource, source_from_env
from market_assets.schedules import close_schedules
from market_assets.sensors import close_bars, partition_status_cache

_lake = DataLakeResource()

defs = dg.Definitions(
    assets=[
        index_composition,
        index_membership,
        *with_bars_freshness([bars]),
        adjustment_events,
    ],
    jobs=[compositions_job, membership_job, *close_jobs.values()],
    schedules=close_schedules,
    sensors=[close_bars, partition_status_cache],
    # Steps run in the run's process: see market_assets/executors.py.
    executor=dg.in_process_executor,
    resources={
        # Stooq over HTTP, or its files saved from a browser: $MARKET_ASSETS_SOURCE (README,
        # "Using real data").
        "stooq": source_from_env(),
        "lake": _lake,
        "quality": DataQualityResource(),
        "io_manager": ParquetIOManager(lake=_lake),
    },
)
