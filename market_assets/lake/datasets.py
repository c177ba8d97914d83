"""The lake's datasets: one folder each under the data root, named as the Dagster asset that
writes it. Every layer names them from here (docs/architecture.md)."""

DAILY_BARS, WEEKLY_BARS, MONTHLY_BARS = "daily_bars", "weekly_bars", "monthly_bars"
BARS = (DAILY_BARS, WEEKLY_BARS, MONTHLY_BARS)
"""The bars datasets, partitioned by session and symbol."""

ADJUSTMENT_EVENTS = "adjustment_events"
INDEX_COMPOSITION = "index_composition"
INDEX_MEMBERSHIP = "index_membership"
