"""Prices as traded, as adjusted, as known: DJI closed live for a quarter of sessions (the server
serving each as its own day, with its quarterly dividends and a split), then an older session
backfilled today. Each snapshot records when it was fetched: a knowledge-time read returns what had
been fetched by then; as-traded prices are the server's raw ones, and prices adjusted as of a day
are what the server served that day; from the reader, the CLI and DuckDB, on the lake as written
and once compacted."""

import io
import shutil
import subprocess

import pandas as pd
import pytest

from market_assets.cli.close import close_index
from market_assets.defs.partitions import FIRST_SESSION
from market_assets.domain.exchange_sessions import calendar
from market_assets.lake.compaction import compact
from market_assets.lake.reader import SNAPSHOT_COLUMNS, LakeReader, LakeReadError
from market_assets.lake.sql import connect
from market_assets_tests.lake_files import lake_command
from market_assets_tests.platform import open_platform
from stooq_server import StooqServer, generate_synthetic

SESSIONS = 63
"""A quarter of live closes, each dividend payer paying about once in it; fewer when the tests'
partition window, which must also hold the backfilled session and a gap, has fewer sessions."""


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """The root, the live sessions with the instant after each close, the backfilled session and
    the instant after its close, and the members of each session."""
    folder = tmp_path_factory.mktemp("known")
    universe = generate_synthetic(
        folder / "stooq", first_session="2016-01-04", sizes={"DJI": 4, "NDX": 1, "HSI": 1}, dividends=True
    )
    window = calendar("XNYS").sessions_in_range(FIRST_SESSION, universe.last_session["XNYS"])[-(SESSIONS + 2) :]
    sessions = [f"{day:%Y-%m-%d}" for day in window]
    backfilled, live = sessions[0], sessions[2:]
    splitting, split_on = universe.members("DJI", live[-1])[0], live[len(live) // 2]
    with open(universe.data_dir / "splits.csv", "a") as splits:
        splits.write(f"{splitting},{split_on},2\n")
    monkeypatch = pytest.MonkeyPatch()
    server = StooqServer(universe.data_dir).start()
    known = {}
    try:
        with open_platform(folder, monkeypatch, server) as platform:
            before_any = pd.Timestamp.now(tz="UTC")
            for session in live:
                server.as_of = session
                close_index(platform.instance, "DJI", session)
                known[session] = pd.Timestamp.now(tz="UTC")
            server.as_of = None  # today: the answers hold every session since
            close_index(platform.instance, "DJI", backfilled)
            after_backfill = pd.Timestamp.now(tz="UTC")
            yield {
                "root": str(folder / "lake"),
                "store": platform.store,
                "live": live,
                "known": known,
                "before_any": before_any,
                "backfilled": backfilled,
                "after_backfill": after_backfill,
                "members": {session: universe.members("DJI", session) for session in [backfilled, *live]},
                "raw": universe.data_dir / "d",
                "splitting": splitting,
                "events": _served_events(universe, splitting, split_on, live),
            }
    finally:
        server.stop()
        monkeypatch.undo()


def _served_events(universe, splitting: str, split_on: str, live: list[str]) -> pd.DataFrame:
    """The splits and dividends the server applies during the live sessions after the first
    (`symbol, effective_date, ratio`): those the closes must see."""
    ours = pd.DataFrame({"symbol": [splitting], "date": [pd.Timestamp(split_on)], "ratio": [2.0]})
    dividends = universe.dividends.assign(ratio=1.0 / universe.dividends["factor"])
    events = pd.concat([universe.splits, ours, dividends[["symbol", "date", "ratio"]]], ignore_index=True)
    seen = events["date"].between(pd.Timestamp(live[1]), pd.Timestamp(live[-1]))
    return events[seen].rename(columns={"date": "effective_date"}).sort_values(["symbol", "effective_date"])


def _snapshots(frame: pd.DataFrame) -> dict[str, pd.Timestamp]:
    """The session of each symbol's snapshot in a read."""
    return frame.groupby("symbol")["session"].first().to_dict()


def _expected_knowledge(lake, instant: pd.Timestamp) -> dict[str, pd.Timestamp]:
    """Each symbol's newest live session closed by `instant`."""
    expected = {}
    for session in lake["live"]:
        if lake["known"][session] <= instant:
            expected.update((symbol, pd.Timestamp(session)) for symbol in lake["members"][session])
    return expected


def _assert_knowledge_time_reads_are_exact(lake) -> None:
    reader, store = LakeReader(lake["root"]), lake["store"]
    symbols = sorted(set(lake["members"][lake["live"][0]]))
    connection = connect(lake["root"])
    for session in [*lake["live"][::8], lake["live"][-1]]:
        instant = lake["known"][session]
        read = reader.bars("daily", symbols, known_at=instant)
        assert _snapshots(read) == {s: d for s, d in _expected_knowledge(lake, instant).items() if s in symbols}
        assert not read["backfilled"].any() and (read["fetched_at"] <= instant).all()
        for symbol, snapshot in _snapshots(read).items():
            own = read[read["symbol"] == symbol].drop(columns=list(SNAPSHOT_COLUMNS)).reset_index(drop=True)
            pd.testing.assert_frame_equal(own, store.read("daily_bars", f"{snapshot:%Y-%m-%d}|{symbol}"))
        sql = connection.sql(f"SELECT * FROM daily_bars_known_at('{instant.tz_convert(None)}')").df()
        assert _snapshots(sql[sql["symbol"].isin(symbols)]) == _snapshots(read)
        assert len(sql[sql["symbol"].isin(symbols)]) == len(read)


def _assert_the_backfill_is_marked_and_unseen_before_its_fetch(lake) -> None:
    reader, backfilled = LakeReader(lake["root"]), lake["backfilled"]
    symbol = lake["members"][backfilled][0]
    as_of = reader.bars("daily", [symbol], as_of=backfilled)
    assert (as_of["session"] == pd.Timestamp(backfilled)).all() and as_of["backfilled"].all()
    weekly = reader.bars("weekly", [symbol], as_of=backfilled)
    assert weekly["backfilled"].all()
    assert not reader.bars("daily", [symbol], as_of=lake["live"][0])["backfilled"].any()
    # After the last live close and before the backfill's fetch, the old session was not known.
    with pytest.raises(LakeReadError, match=rf"no snapshot of a session at or before {backfilled} of {symbol} fetched"):
        reader.bars("daily", [symbol], as_of=backfilled, known_at=lake["known"][lake["live"][-1]])
    late = reader.bars("daily", [symbol], as_of=backfilled, known_at=lake["after_backfill"])
    assert (late["session"] == pd.Timestamp(backfilled)).all()
    with pytest.raises(LakeReadError, match=rf"no snapshot of {symbol} fetched at or before"):
        reader.bars("daily", [symbol], known_at=lake["before_any"])
    sql = connect(lake["root"]).sql(f"SELECT DISTINCT backfilled FROM daily_bars_as_of('{backfilled}')").df()
    assert sql["backfilled"].tolist() == [True]


def test_each_snapshot_records_when_it_was_fetched_and_the_backfill_says_so(lake):
    rows = connect(lake["root"]).sql("SELECT * FROM lake_snapshots").df()

    fetched = pd.to_datetime(rows["fetched_at"], utc=True)
    sessions = rows["session"].astype(str)
    before = lake["before_any"]
    for session in lake["live"]:  # each fetched during its own close, after the one before it
        assert fetched[sessions == session].between(before, lake["known"][session], inclusive="right").all(), session
        before = lake["known"][session]
    assert fetched[sessions == lake["backfilled"]].between(before, lake["after_backfill"], inclusive="right").all()
    assert set(rows.loc[rows["backfilled"], "session"].astype(str)) == {lake["backfilled"]}
    assert len(rows[rows["session"].astype(str) == lake["backfilled"]]) == 3 * len(lake["members"][lake["backfilled"]])


def test_knowledge_time_reads_return_what_was_fetched_by_then(lake):
    _assert_knowledge_time_reads_are_exact(lake)


def test_a_backfill_is_marked_and_not_known_before_it_was_fetched(lake):
    _assert_the_backfill_is_marked_and_unseen_before_its_fetch(lake)


def test_the_cli_reads_at_an_instant_and_warns_of_backfills(lake):
    backfilled, session = lake["backfilled"], lake["live"][1]
    symbol = lake["members"][session][0]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return lake_command(lake["root"], "read", "daily", symbol, "--format", "csv", *args)

    known = cli("--known-at", f"{lake['known'][session]:%Y-%m-%dT%H:%M:%S.%f}")
    assert known.returncode == 0, known.stderr
    assert set(pd.read_csv(io.StringIO(known.stdout))["session"]) == {session} and known.stderr == ""
    old = cli("--as-of", backfilled)
    assert old.returncode == 0 and "1 snapshot(s) were backfilled" in old.stderr and f"{symbol} ({backfilled})" in old.stderr
    bad = cli("--known-at", "yesterday-ish")
    assert bad.returncode == 2 and "known_at 'yesterday-ish' is not an instant" in bad.stderr
    splitting = lake["splitting"]
    traded = lake_command(lake["root"], "read", "daily", splitting, "--prices", "as_traded", "--format", "csv")
    assert traded.returncode == 0, traded.stderr
    expected = LakeReader(lake["root"]).bars("daily", [splitting], prices="as_traded")
    printed = pd.read_csv(io.StringIO(traded.stdout))
    assert printed["close"].to_numpy() == pytest.approx(expected["close"].to_numpy(), nan_ok=True)
    assert printed["prices"].tolist() == expected["prices"].tolist()
    factors = lake_command(lake["root"], "factors", splitting, "NOPE.US")
    assert factors.returncode == 2 and "no snapshot of NOPE.US" in factors.stderr
    factors = lake_command(lake["root"], "factors", splitting, "--format", "csv")
    assert factors.returncode == 0, factors.stderr
    assert pd.read_csv(io.StringIO(factors.stdout))["ratio"].tolist() == pytest.approx(
        LakeReader(lake["root"]).adjustment_factors([splitting])["ratio"].tolist()
    )


def test_both_reads_stay_exact_on_a_compacted_lake(lake, tmp_path):
    root = tmp_path / "lake"
    shutil.copytree(lake["root"], root)
    compacted = {**lake, "root": str(root), "store": LakeReader(str(root)).store}
    report = compact(compacted["store"])
    assert sum(report.removed.values()) > 0

    _assert_knowledge_time_reads_are_exact(compacted)
    _assert_the_backfill_is_marked_and_unseen_before_its_fetch(compacted)
    for symbol, traded in _assert_prices_as_traded_and_as_adjusted(compacted).items():
        pd.testing.assert_frame_equal(traded, LakeReader(lake["root"]).bars("daily", [symbol], prices="as_traded"))


def _raw(lake, symbol: str) -> pd.DataFrame:
    """The server's raw history of `symbol`: prices as traded, volumes as traded."""
    raw = pd.read_csv(lake["raw"] / f"{symbol.lower()}.csv", parse_dates=["Date"])
    return raw.rename(columns=str.lower)


def _first_live(lake, symbol: str) -> pd.Timestamp:
    return pd.Timestamp(next(session for session in lake["live"] if symbol in lake["members"][session]))


def _assert_prices_as_traded_and_as_adjusted(lake) -> dict[str, pd.DataFrame]:
    reader, store = LakeReader(lake["root"]), lake["store"]
    newest, count = lake["live"][-1], len(lake["live"])
    reads = {}
    for symbol in lake["members"][newest]:
        first = _first_live(lake, symbol)
        traded = reader.bars("daily", [symbol], prices="as_traded")
        known = traded[traded["date"] >= first]
        assert (known["prices"] == "as traded").all() and len(known) >= 1
        assert traded.loc[traded["date"] < first, "close"].isna().all()
        assert traded.loc[traded["date"] < first, "prices"].str.startswith(f"unknown before {first:%Y-%m-%d}").all()
        raw = _raw(lake, symbol).set_index("date").loc[known["date"]]
        assert known["close"].to_numpy() == pytest.approx(raw["close"].to_numpy(), rel=1e-5)
        assert known["open"].to_numpy() == pytest.approx(raw["open"].to_numpy(), rel=1e-5)
        assert known["volume"].astype(float).to_numpy() == pytest.approx(raw["volume"].to_numpy(), rel=1e-5)
        for day in [lake["live"][i] for i in (0, count // 3, count // 2, count - 2)]:
            if pd.Timestamp(day) < first:
                continue
            adjusted = reader.bars("daily", [symbol], prices=f"adjusted_as_of:{day}", end=day)
            served = store.read("daily_bars", f"{day}|{symbol}")  # what the server served that day
            assert (adjusted["prices"] == f"adjusted as of {day}").all() and len(adjusted) == len(served)
            assert adjusted["close"].to_numpy() == pytest.approx(served["close"].to_numpy(), rel=1e-5)
            assert adjusted["volume"].astype(float).to_numpy() == pytest.approx(
                served["volume"].astype(float).to_numpy(), rel=1e-5
            )
        reads[symbol] = traded
    return reads


def test_every_adjustment_of_the_quarter_was_seen(lake):
    factors = LakeReader(lake["root"]).adjustment_factors(lake["members"][lake["live"][-1]])

    served = lake["events"][lake["events"]["symbol"].isin(lake["members"][lake["live"][-1]])]
    assert len(served) >= 3
    assert factors[["symbol", "effective_date"]].values.tolist() == served[["symbol", "effective_date"]].values.tolist()
    assert factors["ratio"].to_numpy() == pytest.approx(served["ratio"].to_numpy(), rel=1e-5)
    splits = factors["ratio"] >= 2
    assert factors.loc[splits, "volume_ratio"].to_numpy() == pytest.approx(1 / factors.loc[splits, "ratio"], rel=1e-5)
    assert (factors.loc[~splits, "volume_ratio"] == 1.0).all()  # dividends leave volumes alone
    for _, own in factors.groupby("symbol"):  # a factor multiplies its ratio and every later one
        assert own["cumulative_factor"].to_numpy() == pytest.approx(own["ratio"][::-1].cumprod()[::-1].to_numpy())
    assert (factors["as_traded_from"] >= pd.Timestamp(lake["live"][0])).all()


def test_as_traded_prices_are_the_raw_ones_and_adjusted_as_of_d_what_was_served_on_d(lake):
    _assert_prices_as_traded_and_as_adjusted(lake)
    with pytest.raises(LakeReadError, match=r"prices adjusted as of .* are not known for .*: its first live snapshot is of"):
        LakeReader(lake["root"]).bars("daily", [lake["splitting"]], prices=f"adjusted_as_of:{lake['backfilled']}")
    with pytest.raises(LakeReadError, match=r"prices 'as_traded' are read from daily bars, not weekly"):
        LakeReader(lake["root"]).bars("weekly", [lake["splitting"]], prices="as_traded")


def test_sql_reads_prices_as_traded_and_adjustment_factors(lake):
    connection, reader = connect(lake["root"]), LakeReader(lake["root"])
    symbol, newest = lake["splitting"], lake["live"][-1]

    sql = connection.sql(f"SELECT * FROM daily_bars_as_traded('{newest}') WHERE symbol = '{symbol}' ORDER BY date").df()
    factors = connection.sql("SELECT * FROM adjustment_factors ORDER BY symbol, effective_date").df()

    traded = reader.bars("daily", [symbol], prices="as_traded")
    assert sql["close"].to_numpy() == pytest.approx(traded["close"].to_numpy(), rel=1e-9, nan_ok=True)
    assert (sql["as_traded_from"] == _first_live(lake, symbol)).all()
    expected = reader.adjustment_factors(sorted(set(factors["symbol"])))
    assert factors["cumulative_factor"].to_numpy() == pytest.approx(expected["cumulative_factor"].to_numpy())
    day = lake["live"][len(lake["live"]) // 3]
    adjusted = connection.sql(
        f"SELECT close FROM daily_bars_adjusted_as_of('{newest}', '{day}') WHERE symbol = '{symbol}' AND date <= '{day}' ORDER BY date"
    ).df()
    served = lake["store"].read("daily_bars", f"{day}|{symbol}")
    assert adjusted["close"].to_numpy() == pytest.approx(served["close"].to_numpy(), rel=1e-5)
