"""Planning a close: contiguous blocks of registered symbols, at most so many per run, each symbol once."""

import pandas as pd
import pytest

from market_assets.cli.close import close_index
from market_assets.defs.bars.planning import plan_close_runs
from market_assets.settings import MAX_SYMBOLS_PER_RUN
from market_assets_tests.universe import last_session


def test_plan_splits_only_around_symbols_that_are_not_wanted(platform):
    instance = platform.instance
    instance.add_dynamic_partitions("xnys_symbols", ["A.US", "B.US", "C.US", "D.US", "E.US"])

    runs = plan_close_runs(instance, "DJI", "2026-11-20", ["A.US", "B.US", "D.US", "E.US"], max_symbols=200)

    assert [run.symbols for run in runs] == [("A.US", "B.US"), ("D.US", "E.US")]
    assert runs[0].tags["dagster/asset_partition_range_start"] == "2026-11-20|A.US"
    assert runs[1].tags["dagster/asset_partition_range_end"] == "2026-11-20|E.US"
    with pytest.raises(ValueError, match=r"\['Z.US'\] are not registered"):
        plan_close_runs(instance, "DJI", "2026-11-20", ["A.US", "Z.US"], max_symbols=200)


def test_runs_hold_at_most_max_symbols(platform, synthetic_universe, monkeypatch):
    instance, store = platform.instance, platform.store
    session = last_session(synthetic_universe, "XNYS")
    monkeypatch.setenv(MAX_SYMBOLS_PER_RUN.env_var, "7")

    outcome = close_index(instance, "DJI", session)

    assert [len(run.symbols) for run in outcome.runs] == [6, 6, 6, 6, 6]  # 30 by at most 7, evenly
    assert sorted(sum((run.symbols for run in outcome.runs), ())) == sorted(outcome.members)
    assert len(store.partition_keys("monthly_bars")) == 30


def test_shared_members_are_not_fetched_twice(platform, synthetic_universe):
    instance, server = platform.instance, platform.server
    session = pd.Timestamp(last_session(synthetic_universe, "XNYS"))
    dji = set(synthetic_universe.members("DJI", session))
    ndx = set(synthetic_universe.members("NDX", session))
    close_index(instance, "DJI", f"{session:%Y-%m-%d}")
    server.reset_stats()

    outcome = close_index(instance, "NDX", f"{session:%Y-%m-%d}")

    loaded = {symbol for run in outcome.runs for symbol in run.symbols}
    assert loaded == ndx - dji and len(dji & ndx) > 0
    assert server.stats()["by_route"]["download"] == len(ndx - dji)
