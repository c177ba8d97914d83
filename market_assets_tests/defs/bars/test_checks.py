"""Asset checks and adjustment detection end to end: bad histories served over HTTP by the project's
server, a real Dagster instance, real parquet; each check fails with the offending dates, and the
weekly and monthly bars of a blocked symbol are not built while the other symbols' are."""

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from market_assets.cli.close import CloseFailed, close_index
from market_assets.defs.bars.checks import VALID_BARS
from market_assets.defs.bars.keys import bars_asset_key
from market_assets.domain.exchange_sessions import calendar
from stooq_server import Fault, FaultKind, generate_synthetic


@pytest.fixture
def universe(tmp_path):
    """A small universe of its own, since the tests edit its files."""
    return generate_synthetic(tmp_path / "stooq", first_session="2019-01-02", sizes={"DJI": 8, "NDX": 1, "HSI": 1})


@pytest.fixture
def platform(platform_factory, universe, server_factory):
    """The platform against a server over the test's own universe."""
    return platform_factory(server=server_factory(universe.data_dir))


def _edit_history(data_dir: Path, symbol: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Rewrite the served daily file of `symbol` (Stooq's format) through `edit`."""
    path = data_dir / "d" / f"{symbol.lower()}.csv"
    edit(pd.read_csv(path)).to_csv(path, index=False, lineterminator="\r\n")


def _evaluations(instance: dg.DagsterInstance, run_ids: list[str]) -> dict[tuple[str, str, str], dg.AssetCheckEvaluation]:
    """`{(asset, check, partition): evaluation}` of the given runs."""
    found = {}
    for run_id in run_ids:
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
            evaluation = entry.dagster_event.event_specific_data
            found[evaluation.asset_key.path[-1], evaluation.check_name, evaluation.partition] = evaluation
    return found


def _day(value: object) -> str:
    return f"{pd.Timestamp(value):%Y-%m-%d}"


def test_bad_histories_fail_their_checks_and_block_only_their_own_bars(platform, universe):
    instance, store, server = platform.instance, platform.store, platform.server
    session = universe.last_session["XNYS"]
    day = _day(session)
    members = universe.members("DJI")
    inverted, duplicated, stale, gap, flat, jump = members[:6]
    edits: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {}

    def invert(frame):  # high and low swapped on two bars
        frame.loc[frame.index[-3:-1], ["High", "Low"]] = frame.loc[frame.index[-3:-1], ["Low", "High"]].to_numpy()
        return frame

    def flatten(frame):  # the last six bars all at the close of the seventh-last
        close = frame["Close"].iloc[-7]
        frame.loc[frame.index[-6:], ["Open", "High", "Low", "Close"]] = close
        return frame

    def triple(frame):  # prices from the third-last bar on, three times higher, as if never adjusted
        frame.loc[frame.index[-3:], ["Open", "High", "Low", "Close"]] *= 3
        return frame

    edits[inverted] = invert
    edits[duplicated] = lambda frame: pd.concat([frame, frame.iloc[[-4]]]).sort_values("Date", kind="stable")
    edits[stale] = lambda frame: frame[frame["Date"] < day]
    edits[gap] = lambda frame: frame.drop(frame.index[-10])
    edits[flat] = flatten
    edits[jump] = triple
    originals = {symbol: pd.read_csv(universe.data_dir / "d" / f"{symbol.lower()}.csv") for symbol in edits}
    for symbol, edit in edits.items():
        _edit_history(universe.data_dir, symbol, edit)
    server.reload()

    with pytest.raises(CloseFailed) as caught:
        close_index(instance, "DJI", day)

    message = str(caught.value)
    for symbol in (inverted, duplicated, stale):
        assert f"{day}|{symbol}: " in message
    assert "3 of 8 partitions not built" in message
    evaluations = _evaluations(instance, [run.run_id for run in instance.get_runs()])
    sessions = calendar("XNYS").sessions_in_range(pd.Timestamp(originals[gap]["Date"].iloc[0]), session)

    def failed(rule: str, symbol: str) -> dg.AssetCheckEvaluation:
        evaluation = evaluations["daily_bars", VALID_BARS, f"{day}|{symbol}"]
        assert not evaluation.passed and evaluation.metadata["failed_rules"].value == rule, (rule, symbol)
        return evaluation

    def offending(rule: str, symbol: str) -> list[str]:
        return failed(rule, symbol).metadata["offending_dates"].value[rule]

    high_low = failed("high_low_consistent", inverted)
    assert offending("high_low_consistent", inverted) == [_day(d) for d in originals[inverted]["Date"].iloc[-3:-1]]
    assert high_low.check_name == "valid_bars" and high_low.severity == dg.AssetCheckSeverity.ERROR
    assert high_low.metadata["blocks"].value == "yes: the partition's weekly_bars and monthly_bars are not built"
    assert high_low.description.startswith("high_low_consistent: 2 bars with high below max(open, close)")
    assert high_low.metadata["offending_count"].value == 2
    assert offending("dates_unique_and_increasing", duplicated) == [_day(originals[duplicated]["Date"].iloc[-4])]
    assert offending("ends_at_session", stale) == [_day(sessions[-2])]
    assert failed("ends_at_session", stale).description == (
        f"ends_at_session: the last bar is dated {_day(sessions[-2])}, not the partition's session {day}"
    )
    missing = failed("no_missing_sessions", gap)
    assert offending("no_missing_sessions", gap) == [_day(originals[gap]["Date"].iloc[-10])]
    assert missing.check_name == "valid_bars" and missing.severity == dg.AssetCheckSeverity.WARN
    assert missing.metadata["blocks"].value == "no"
    assert missing.metadata["judged"].value == "the whole history (first snapshot)"
    assert offending("close_not_repeated", flat) == [_day(d) for d in originals[flat]["Date"].iloc[-6:]]
    assert offending("no_unexplained_jumps", jump) == [_day(originals[jump]["Date"].iloc[-3])]

    daily_run = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=bars_asset_key("XNYS", "daily_bars"), asset_partitions=[f"{day}|{gap}"]),
        limit=1,
    ).records[0]
    assert missing.target_materialization_data.storage_id == daily_run.storage_id  # the snapshot it checked

    for symbol in members:
        key = f"{day}|{symbol}"
        failing = {
            rule
            for (_, _, partition), e in evaluations.items()
            if partition == key and not e.passed
            for rule in e.metadata["failed_rules"].value.split(", ")
        }
        expected = {
            inverted: {"high_low_consistent"},
            duplicated: {"dates_unique_and_increasing"},
            stale: {"ends_at_session"},
            gap: {"no_missing_sessions"},
            flat: {"close_not_repeated"},
            jump: {"no_unexplained_jumps"},
        }.get(symbol, set())
        assert failing == expected, symbol
        blocked = symbol in (inverted, duplicated, stale)
        for asset in ("weekly_bars", "monthly_bars"):
            assert store.exists(asset, key) is not blocked, (asset, symbol)
            assert (key in instance.get_materialized_partitions(bars_asset_key("XNYS", asset))) is not blocked
            if not blocked:
                assert evaluations[asset, VALID_BARS, key].passed
        assert store.exists("daily_bars", key)


def test_a_split_is_recorded_as_an_adjustment_event_not_a_jump(platform, universe):
    instance, store, server = platform.instance, platform.store, platform.server
    sessions = calendar("XNYS").sessions_in_range(
        universe.last_session["XNYS"] - pd.Timedelta(days=10), universe.last_session["XNYS"]
    )
    before, session = _day(sessions[-2]), _day(sessions[-1])
    members = universe.members("DJI", session)
    splitting = members[0]
    server.as_of = before
    close_index(instance, "DJI", before)
    with open(universe.data_dir / "splits.csv", "a") as splits:
        splits.write(f"{splitting},{session},2\n")
    server.reload()
    server.as_of = session

    close_index(instance, "DJI", session)

    events = store.read("adjustment_events", f"{session}|{splitting}")
    previous = store.read("daily_bars", f"{before}|{splitting}")
    assert len(events) == 1
    event = events.iloc[0]
    assert event["symbol"] == splitting and "session" not in events.columns  # the folder says it
    assert [_day(day) for day in store.read_asset("adjustment_events")["session"]] == [session]
    assert event["ratio"] == 2.0 and event["rows_changed"] == len(previous)
    assert _day(event["first_changed_date"]) == _day(previous["date"].iloc[0])
    assert _day(event["last_changed_date"]) == before and _day(event["effective_date"]) == session
    for symbol in members[1:]:
        assert not store.exists("adjustment_events", f"{session}|{symbol}")
    events_key = bars_asset_key("XNYS", "adjustment_events")
    assert instance.get_materialized_partitions(events_key) == {f"{session}|{splitting}"}
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=bars_asset_key("XNYS", "daily_bars"), asset_partitions=[f"{session}|{splitting}"]),
        limit=1,
    ).records[0]
    metadata = record.asset_materialization.metadata
    assert metadata["adjustment_ratio"].value == 2.0
    assert (
        f"past rows from {_day(previous['date'].iloc[0])} to {before} changed by a ratio of 2" in metadata["adjusted_past"].value
    )
    evaluations = _evaluations(instance, [run.run_id for run in instance.get_runs()])
    rewritten = evaluations["daily_bars", VALID_BARS, f"{session}|{splitting}"]
    assert rewritten.passed and rewritten.metadata["judged_rows"].value == len(previous) + 1  # judged whole again
    extended = evaluations["daily_bars", VALID_BARS, f"{session}|{members[1]}"].metadata
    assert extended["judged"].value == f"the 1 bar added after {before}, with the 4 bars before it"
    assert (extended["judged_to"].value, extended["judged_rows"].value) == (session, 5)


def test_a_failing_daily_step_records_the_checks_of_what_it_stored(platform, universe):
    instance, store, server = platform.instance, platform.store, platform.server
    day = _day(universe.last_session["XNYS"])
    missing, inverted = universe.members("DJI")[:2]
    server.inject(Fault(FaultKind.NO_DATA, symbols={missing}))

    def invert(frame):
        frame.loc[frame.index[-1], ["High", "Low"]] = frame.loc[frame.index[-1], ["Low", "High"]].to_numpy()
        return frame

    _edit_history(universe.data_dir, inverted, invert)
    server.reload()

    with pytest.raises(CloseFailed, match=f"{missing}: Stooq answered 'No data'"):
        close_index(instance, "DJI", day)

    evaluations = _evaluations(instance, [run.run_id for run in instance.get_runs()])
    assert store.exists("daily_bars", f"{day}|{inverted}") and not store.exists("daily_bars", f"{day}|{missing}")
    failing = evaluations["daily_bars", VALID_BARS, f"{day}|{inverted}"]
    assert not failing.passed and failing.metadata["offending_dates"].value == {"high_low_consistent": [day]}
    assert not any(partition == f"{day}|{missing}" for _, _, partition in evaluations)
