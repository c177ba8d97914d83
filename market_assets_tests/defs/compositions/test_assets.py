"""The compositions end to end: a member that leaves and one that joins between two closes, as the
membership table records them; several indices of a session in one run."""

import pandas as pd

from market_assets.cli.close import close_index
from market_assets.defs.compositions.assets import index_composition
from market_assets.defs.partitions import composition_blocks, index_partitions
from market_assets.defs.runs import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from market_assets.domain.exchange_sessions import calendar
from market_assets.domain.membership_spells import members_on
from market_assets.sources.indices import followed_indices
from market_assets_tests.universe import last_session


def test_composition_change_between_two_sessions(platform, synthetic_universe):
    instance, store, server = platform.instance, platform.store, platform.server
    changes = synthetic_universe.compositions["DJI"]
    added = changes.dropna(subset=["added"]).iloc[0]
    removed = changes.dropna(subset=["removed"]).iloc[0]
    before = calendar("XNYS").previous_session(removed["removed"])
    after = synthetic_universe.last_session["XNYS"]
    for session in (before, after):
        server.as_of = session
        close_index(instance, "DJI", f"{session:%Y-%m-%d}")
    result = platform.job("refresh_membership").execute_in_process(instance=instance)
    assert result.success

    membership = store.read("index_membership")
    assert members_on(membership, "DJI", before) == synthetic_universe.members("DJI", before)
    assert members_on(membership, "DJI", after) == synthetic_universe.members("DJI", after)
    left = membership[membership["symbol"] == removed["symbol"]].iloc[0]
    joined = membership[membership["symbol"] == added["symbol"]].iloc[0]
    assert (left["last_seen"], bool(left["current"])) == (before, False)
    assert (joined["first_seen"], bool(joined["current"])) == (after, True)
    assert added["symbol"] in instance.get_dynamic_partitions("xnys_symbols")
    assert store.exists("daily_bars", f"{after:%Y-%m-%d}|{added['symbol']}")


def test_one_run_stores_the_compositions_of_a_range_of_indices(platform, synthetic_universe):
    """A range over the index dimension (DJI..NDX, the XNYS indices, neighbours in its order) is
    one run with one step: both compositions stored, their new symbols registered index by index."""
    instance, store, server = platform.instance, platform.store, platform.server
    session = last_session(synthetic_universe, "XNYS")
    tags = {PARTITION_RANGE_START_TAG: f"{session}|DJI", PARTITION_RANGE_END_TAG: f"{session}|NDX"}

    result = platform.job("index_compositions").execute_in_process(instance=instance, tags=tags)

    assert result.success
    assert sum(1 for event in result.all_events if event.is_step_start) == 1
    dji, ndx = (synthetic_universe.members(index, pd.Timestamp(session)) for index in ("DJI", "NDX"))
    assert store.read("index_composition", f"{session}|DJI")["symbol"].tolist() == dji
    assert store.read("index_composition", f"{session}|NDX")["symbol"].tolist() == ndx
    assert instance.get_dynamic_partitions("xnys_symbols") == list(dict.fromkeys(dji + ndx))
    assert instance.get_materialized_partitions(index_composition.key) == {f"{session}|DJI", f"{session}|NDX"}
    assert set(server.stats()["by_index"]) == {str(followed_indices()[index].stooq_id) for index in ("DJI", "NDX")}


def test_composition_blocks_are_rectangles_of_wanted_partitions_only():
    """Indices of a session group when neighbours in the index dimension (DJI, NDX, HSI), never
    across an index that is not wanted or across dates."""
    assert index_partitions.get_partition_keys() == ["DJI", "NDX", "HSI"]
    assert composition_blocks(["2026-12-01|HSI", "2026-12-01|NDX", "2026-12-01|DJI"]) == [
        ["2026-12-01|DJI", "2026-12-01|NDX", "2026-12-01|HSI"]
    ]
    assert composition_blocks(["2026-12-01|DJI", "2026-12-01|NDX", "2026-12-02|HSI"]) == [
        ["2026-12-01|DJI", "2026-12-01|NDX"],
        ["2026-12-02|HSI"],
    ]
    assert composition_blocks(["2026-12-01|DJI", "2026-12-01|HSI"]) == [["2026-12-01|DJI"], ["2026-12-01|HSI"]]
