"""The partition grids: each exchange's bars on its own sessions and its own symbols."""

import dagster as dg
import pandas as pd

from market_assets.cli.close import close_index
from market_assets.defs.partitions import (
    FIRST_SESSION,
    bars_partitions,
    session_partitions,
    symbol_partitions,
    window_start,
)
from market_assets.domain.exchange_sessions import calendar
from market_assets_tests.universe import last_session


def _dates(definition: dg.MultiPartitionsDefinition) -> list[str]:
    return definition.partitions_defs[0].partitions_def.get_partition_keys()


def test_each_exchange_grid_has_exactly_its_own_sessions():
    """A bars grid lists no day its exchange was closed: no cell there can ever be loaded, and a
    grid over every exchange's sessions would show each such cell as missing."""
    dates = {code: _dates(bars_partitions[code]) for code in ("XNYS", "XHKG")}
    for code, own in dates.items():
        sessions = calendar(code).sessions_in_range(FIRST_SESSION, own[-1])
        assert own == [f"{day:%Y-%m-%d}" for day in sessions], code
    only_new_york = set(dates["XNYS"]) - set(dates["XHKG"])
    only_hong_kong = set(dates["XHKG"]) - set(dates["XNYS"])
    assert only_new_york and only_hong_kong  # Boxing Day, Thanksgiving, ...
    # The compositions' dates are every day on which one of the exchanges trades.
    assert set(session_partitions.get_partition_keys()) == set(dates["XNYS"]) | set(dates["XHKG"])


def test_a_composition_registers_its_members_on_its_exchange_grid_only(platform, synthetic_universe):
    instance = platform.instance
    for index, code in (("DJI", "XNYS"), ("HSI", "XHKG")):
        close_index(instance, index, last_session(synthetic_universe, code))

    us = instance.get_dynamic_partitions(symbol_partitions["XNYS"].name)
    hong_kong = instance.get_dynamic_partitions(symbol_partitions["XHKG"].name)
    assert us and all(symbol.endswith(".US") for symbol in us)
    assert hong_kong and all(symbol.endswith(".HK") for symbol in hong_kong)
    for code, symbols in (("XNYS", us), ("XHKG", hong_kong)):
        session = last_session(synthetic_universe, code)
        materialized = instance.get_materialized_partitions(dg.AssetKey([code.lower(), "daily_bars"]))
        assert materialized == {f"{session}|{symbol}" for symbol in symbols}, code


def test_the_window_starts_on_the_monday_of_the_week_two_weeks_back(monkeypatch):
    """By default the window holds two to three weeks of sessions, and moves once a week."""
    monkeypatch.delenv("MARKET_ASSETS_PARTITION_DAYS", raising=False)

    starts = {day: window_start(pd.Timestamp(day)) for day in ("2026-12-06", "2026-12-07", "2026-12-11", "2026-12-13")}

    assert starts == {
        "2026-12-06": "2026-11-16",
        "2026-12-07": "2026-11-23",
        "2026-12-11": "2026-11-23",
        "2026-12-13": "2026-11-23",
    }
    monkeypatch.setenv("MARKET_ASSETS_PARTITION_DAYS", "92")
    assert window_start(pd.Timestamp("2026-12-07")) == "2026-08-31"
