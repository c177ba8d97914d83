"""The compositions end to end: a member that leaves and one that joins between two closes, as the
membership table records them."""

from market_assets.cli.close import close_index
from market_assets.domain.exchange_sessions import calendar
from market_assets.domain.membership_spells import members_on


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
    assert added["symbol"] in instance.get_dynamic_partitions("symbols")
    assert store.exists("daily_bars", f"{after:%Y-%m-%d}|{added['symbol']}")
