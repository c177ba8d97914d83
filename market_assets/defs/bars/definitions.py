"""The bars domain's definitions: each exchange's daily, weekly and monthly bars, their checks,
the close jobs and the `close_bars` sensor that launches them."""

import dagster as dg

from market_assets.defs.bars.adjustments import adjustment_events
from market_assets.defs.bars.assets import bars_assets
from market_assets.defs.bars.freshness import with_bars_freshness
from market_assets.defs.bars.jobs import close_jobs, verify_bars
from market_assets.defs.bars.resources import DataQualityResource
from market_assets.defs.bars.sensors import close_bars


def bars_definitions() -> dg.Definitions:
    """The bars assets of each followed exchange (with their freshness policy), the adjustment
    events, the close and verification jobs, the sensor, and the `quality` resource."""
    return dg.Definitions(
        assets=[*(with_bars_freshness(assets, code) for code, assets in bars_assets.items()), *adjustment_events],
        jobs=[*close_jobs.values(), verify_bars],
        sensors=[close_bars],
        resources={"quality": DataQualityResource()},
    )
