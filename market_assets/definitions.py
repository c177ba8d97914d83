"""The one `Definitions` object of the code location."""

import dagster as dg

from market_assets.assets.bars import daily_bars, monthly_bars, weekly_bars
from market_assets.assets.composition import index_composition
from market_assets.io_manager import ParquetIOManager
from market_assets.jobs import close_jobs, compositions_job
from market_assets.resources import DataLakeResource, StooqResource

_lake = DataLakeResource()

defs = dg.Definitions(
    assets=[index_composition, daily_bars, weekly_bars, monthly_bars],
    jobs=[compositions_job, *close_jobs.values()],
    resources={
        "stooq": StooqResource(),
        "lake": _lake,
        "io_manager": ParquetIOManager(lake=_lake),
    },
)
