"""`DataQualityResource`: the thresholds of the warning checks on daily bars (`checks.py`)."""

import dagster as dg
from pydantic import Field


class DataQualityResource(dg.ConfigurableResource):
    """Thresholds of the data-quality checks on daily bars, set in the launchpad or `definitions.py`."""

    max_daily_move: float = Field(
        default=0.4,
        description="Largest move of a close from the previous close (0.4 = 40 %) not flagged as a "
        "jump; a 2-for-1 split left unadjusted moves it by 50 %",
    )
    stale_sessions: int = Field(default=5, description="Bars in a row with the same close that mark a feed as stale")
