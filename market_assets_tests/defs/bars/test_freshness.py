"""The bars' freshness policies: due each weekday by their exchange's close plus the delay and the grace."""

import pandas as pd
import pytest

from market_assets.definitions import defs
from market_assets.defs.bars.freshness import bars_freshness_policy
from market_assets.defs.bars.keys import bars_asset_key
from market_assets.settings import CLOSE_DELAY, FRESHNESS_GRACE


@pytest.mark.parametrize(
    "delay, grace, cron, lower_bound",
    [
        (None, None, "30 17 * * 1,2,3,4,5", pd.Timedelta(hours=17, minutes=30)),
        ("XNYS=45", "30", "15 17 * * 1,2,3,4,5", pd.Timedelta(hours=17, minutes=15)),
        ("1049", None, "29 10 * * 2,3,4,5,6", pd.Timedelta(hours=10, minutes=29)),  # past midnight
    ],
)
def test_bars_must_be_updated_each_weekday_by_the_new_york_close_plus_delay_and_grace(
    monkeypatch, delay, grace, cron, lower_bound
):
    for name, value in ((CLOSE_DELAY.env_var, delay), (FRESHNESS_GRACE.env_var, grace)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    policy = bars_freshness_policy("XNYS")

    assert (policy.deadline_cron, policy.timezone) == (cron, "America/New_York")
    assert policy.lower_bound_delta == lower_bound  # since midnight, New York time
    graph = defs().resolve_asset_graph()
    for asset in ("daily_bars", "weekly_bars", "monthly_bars"):
        assert graph.get(bars_asset_key("XNYS", asset)).freshness_policy == policy
    assert graph.get(bars_asset_key("XNYS", "adjustment_events")).freshness_policy is None


def test_hong_kong_bars_are_due_by_hong_kong_close_in_hong_kong_time(monkeypatch):
    """Each exchange's bars have their own policy: Hong Kong's are not late until New York closes."""
    monkeypatch.delenv(CLOSE_DELAY.env_var, raising=False)
    monkeypatch.delenv(FRESHNESS_GRACE.env_var, raising=False)
    policy = bars_freshness_policy("XHKG")

    assert (policy.deadline_cron, policy.timezone) == ("30 17 * * 1,2,3,4,5", "Asia/Hong_Kong")
    graph = defs().resolve_asset_graph()
    assert graph.get(bars_asset_key("XHKG", "daily_bars")).freshness_policy == policy
