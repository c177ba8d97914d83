"""The compositions domain's definitions: which symbols each index holds, fetched at each close."""

import dagster as dg

from market_assets.defs.compositions.assets import index_composition, index_membership
from market_assets.defs.compositions.jobs import compositions_job, membership_job
from market_assets.defs.compositions.schedules import close_schedules


def compositions_definitions() -> dg.Definitions:
    """The compositions and membership assets, their jobs, and the schedule of each exchange's close."""
    return dg.Definitions(
        assets=[index_composition, index_membership],
        jobs=[compositions_job, membership_job],
        schedules=close_schedules,
    )
