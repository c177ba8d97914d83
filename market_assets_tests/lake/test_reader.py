"""Reading the lake: each symbol's newest snapshot, or what was known after a session's close
(before a later split rewrote the past), members and panels, from the Python API and the CLI."""

import io

import pandas as pd
import pytest

from market_assets.cli.close import close_index
from market_assets.domain.exchange_sessions import calendar
from market_assets.lake.reader import SNAPSHOT_COLUMNS, LakeReader, LakeReadError
from market_assets_tests.lake_files import lake_command
from market_assets_tests.platform import open_platform
from stooq_server import StooqServer, generate_synthetic


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """Two DJI closes and one HSI close; the second DJI close after a 2-for-1 split of one member."""
    folder = tmp_path_factory.mktemp("reader")
    universe = generate_synthetic(folder / "stooq", first_session="2019-01-02", sizes={"DJI": 4, "NDX": 1, "HSI": 2})
    monkeypatch = pytest.MonkeyPatch()
    server = StooqServer(universe.data_dir).start()
    last = universe.last_session["XNYS"]
    first, second = (f"{day:%Y-%m-%d}" for day in calendar("XNYS").sessions_window(last, -2))
    splitting = universe.members("DJI", second)[0]
    with open_platform(folder, monkeypatch, server) as platform:
        server.as_of = first
        close_index(platform.instance, "DJI", first)
        with open(universe.data_dir / "splits.csv", "a") as splits:
            splits.write(f"{splitting},{second},2\n")
        server.reload()
        server.as_of = None
        close_index(platform.instance, "DJI", second)
        hsi = f"{universe.last_session['XHKG']:%Y-%m-%d}"
        close_index(platform.instance, "HSI", hsi)
        yield {
            "store": platform.store,
            "first": first,
            "second": second,
            "hsi": hsi,
            "splitting": splitting,
            "root": str(folder / "lake"),
        }
    server.stop()
    monkeypatch.undo()


def _without_snapshot_columns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=list(SNAPSHOT_COLUMNS)).reset_index(drop=True)


def test_the_newest_snapshot_of_each_symbol_by_default(lake):
    store, reader = lake["store"], LakeReader(lake["root"])
    dji = store.read("index_composition", f"{lake['second']}|DJI")["symbol"].tolist()
    hsi_symbol = store.read("index_composition", f"{lake['hsi']}|HSI")["symbol"].iloc[0]

    daily = reader.bars("daily", [dji[0], hsi_symbol])

    assert set(daily["symbol"]) == {dji[0], hsi_symbol}
    for symbol, session in ((dji[0], lake["second"]), (hsi_symbol, lake["hsi"])):
        own = daily[daily["symbol"] == symbol]
        assert (own["session"] == pd.Timestamp(session)).all()
        pd.testing.assert_frame_equal(_without_snapshot_columns(own), store.read("daily_bars", f"{session}|{symbol}"))


def test_as_of_reads_what_was_known_after_that_close_before_the_split(lake):
    store, reader, symbol = lake["store"], LakeReader(lake["root"]), lake["splitting"]
    before = store.read("daily_bars", f"{lake['first']}|{symbol}")

    known_then = reader.bars("daily", [symbol], as_of=lake["first"])
    newest = reader.bars("daily", [symbol])

    pd.testing.assert_frame_equal(_without_snapshot_columns(known_then), before)
    shared = newest[newest["date"] <= before["date"].iloc[-1]]
    assert shared["close"].to_numpy() * 2 == pytest.approx(before["close"].to_numpy(), rel=1e-3)
    # A day with no snapshot of its own (the weekend after) reads the newest one before it.
    weekend = pd.Timestamp(lake["second"]) + pd.Timedelta(days=(5 - pd.Timestamp(lake["second"]).day_of_week) % 7 or 7)
    assert (reader.bars("daily", [symbol], as_of=weekend)["session"] <= weekend).all()


def test_weekly_bars_of_an_index_between_two_dates(lake):
    reader = LakeReader(lake["root"])
    members = reader.members("DJI", lake["first"])

    weekly = reader.bars("weekly", index="DJI", start="2024-01-01", end="2024-03-31")

    assert sorted(set(weekly["symbol"])) == members
    assert weekly["date"].between(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-03-31")).all()
    assert (weekly["date"].dt.day_of_week == 6).all()
    assert {"period_start", "period_end", "last_session", "sessions", "incomplete"} <= set(weekly.columns)


def test_a_panel_holds_the_members_of_that_day_as_known_that_day(lake):
    store, reader = lake["store"], LakeReader(lake["root"])

    panel = reader.panel("DJI", lake["first"])

    members = store.read("index_composition", f"{lake['first']}|DJI")["symbol"].tolist()
    assert sorted(panel.columns) == sorted(members)
    symbol = lake["splitting"]
    before = store.read("daily_bars", f"{lake['first']}|{symbol}").set_index("date")["close"]
    pd.testing.assert_series_equal(panel[symbol].dropna(), before, check_names=False)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r, lake: r.bars("daily", ["NOPE.US"]), r"daily_bars: no snapshot of NOPE.US stored under"),
        (lambda r, lake: r.bars("hourly", ["X.US"]), r"unknown kind of bars 'hourly' \(one of: daily, weekly, monthly\)"),
        (lambda r, lake: r.bars("daily", index="FTSE"), r"index 'FTSE': no composition stored \(stored: DJI, HSI\)"),
        (
            lambda r, lake: r.bars("daily", ["X.US"], as_of="2001-01-01"),
            r"as_of 2001-01-01 is before the first stored session of daily_bars, 20",
        ),
        (lambda r, lake: r.bars("daily", index="DJI", as_of="someday"), r"as_of 'someday' is not a date"),
        (lambda r, lake: r.panel("DJI", lake["first"], field="closing"), r"field 'closing' is not a column of daily_bars"),
    ],
)
def test_what_the_lake_cannot_answer_is_named(lake, call, message):
    with pytest.raises(LakeReadError, match=message):
        call(LakeReader(lake["root"]), lake)


def test_a_symbol_first_stored_after_as_of_says_when_it_was(lake):
    hsi_symbol = lake["store"].read("index_composition", f"{lake['hsi']}|HSI")["symbol"].iloc[0]
    day = min(lake["first"], lake["hsi"])
    dji_symbol = lake["splitting"]
    if lake["hsi"] <= lake["first"]:
        pytest.skip("the HSI session is not after the first DJI session today")
    with pytest.raises(LakeReadError, match=rf"no snapshot at or before {day} of {hsi_symbol} \(its first is {lake['hsi']}\)"):
        LakeReader(lake["root"]).bars("daily", [dji_symbol, hsi_symbol], as_of=day)


def test_the_read_command_prints_csv_writes_parquet_and_names_what_it_cannot_find(lake, tmp_path):
    symbol = lake["splitting"]
    expected = LakeReader(lake["root"]).bars("daily", [symbol], as_of=lake["first"], start="2024-01-01")

    as_csv = lake_command(
        lake["root"], "read", "daily", symbol, "--as-of", lake["first"], "--start", "2024-01-01", "--format", "csv"
    )

    assert as_csv.returncode == 0, as_csv.stderr
    read_back = pd.read_csv(io.StringIO(as_csv.stdout), parse_dates=["date", "session"])
    assert len(read_back) == len(expected) and read_back["close"].tolist() == pytest.approx(expected["close"].tolist())
    out = tmp_path / "dji.parquet"
    as_parquet = lake_command(lake["root"], "read", "monthly", "--index", "DJI", "--format", "parquet", "-o", str(out))
    assert as_parquet.returncode == 0, as_parquet.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(out), LakeReader(lake["root"]).bars("monthly", index="DJI"))
    table = lake_command(lake["root"], "read", "weekly", symbol, "--start", "2024-01-01", "--end", "2024-01-31")
    assert table.returncode == 0 and "2024-01-28" in table.stdout and symbol in table.stdout
    unknown = lake_command(lake["root"], "read", "daily", "NOPE.US")
    assert unknown.returncode == 2 and "NOPE.US" in unknown.stderr and "Traceback" not in unknown.stderr
    early = lake_command(lake["root"], "read", "daily", symbol, "--as-of", "2001-01-02")
    assert early.returncode == 2 and "before the first stored session of daily_bars" in early.stderr


def test_the_sql_command_answers_over_views_of_the_lake(lake):
    symbol = lake["splitting"]
    newest = LakeReader(lake["root"]).bars("daily", [symbol])

    done = lake_command(
        lake["root"],
        "sql",
        f"SELECT count(*) AS n, max(close) AS top FROM latest_daily_bars WHERE symbol = '{symbol}'",
        "--format",
        "csv",
    )

    assert done.returncode == 0, done.stderr
    row = pd.read_csv(io.StringIO(done.stdout)).iloc[0]
    assert row["n"] == len(newest) and row["top"] == pytest.approx(newest["close"].max())
    as_of = lake_command(
        lake["root"],
        "sql",
        f"SELECT max(close) AS top FROM daily_bars_as_of('{lake['first']}') WHERE symbol = '{symbol}'",
        "--format",
        "csv",
    )
    assert as_of.returncode == 0, as_of.stderr
    before = LakeReader(lake["root"]).bars("daily", [symbol], as_of=lake["first"])
    assert pd.read_csv(io.StringIO(as_of.stdout)).iloc[0]["top"] == pytest.approx(before["close"].max())
    wrong = lake_command(lake["root"], "sql", "SELECT closing FROM daily_bars")
    assert wrong.returncode == 2 and "closing" in wrong.stderr and "Traceback" not in wrong.stderr
