"""The request budget: the `stooq` pool caps requests in flight across every run of the instance."""

import subprocess
import sys

import pytest

from market_assets.sources.request_budget import POOL, RequestBudget
from market_assets_tests.universe import last_session


def test_the_stooq_pool_caps_requests_in_flight_across_runs(platform, server_factory, synthetic_universe, tmp_path):
    """Two closes in two processes at once, with the pool set to 2: never more than 2 requests."""
    instance = platform.instance
    server = server_factory(latency=0.05)
    instance.event_log_storage.set_concurrency_slots("stooq", 2)
    env = {**platform.env, "STOOQ_BASE_URL": server.url}
    closes = [
        subprocess.Popen(
            [sys.executable, "-m", "market_assets", "close", index, "--session", last_session(synthetic_universe, calendar)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index, calendar in (("DJI", "XNYS"), ("HSI", "XHKG"))
    ]
    outputs = [close.communicate(timeout=600)[0] for close in closes]

    assert [close.returncode for close in closes] == [0, 0], outputs
    stats = server.stats()
    assert stats["by_route"]["download"] == 30 + 82
    assert stats["peak_in_flight"] == 2
    assert instance.event_log_storage.get_concurrency_info("stooq").claimed_slots == []


def test_a_worker_waits_for_a_slot_held_by_a_dead_run_only_so_long(platform):
    platform.instance.event_log_storage.set_concurrency_slots(POOL, 1)
    assert platform.instance.event_log_storage.claim_concurrency_slot(POOL, "dead-run", "daily_bars").is_claimed
    budget = RequestBudget(platform.instance, "live-run", "daily_bars", max_wait=0.5)

    with pytest.raises(
        TimeoutError, match="waited 0.5 s for a slot of the pool 'stooq' \\(limit 1\\), all held by runs dead-run"
    ):
        with budget.slot(0):
            pass

    assert platform.instance.event_log_storage.get_concurrency_info(POOL).active_run_ids == {"dead-run"}
