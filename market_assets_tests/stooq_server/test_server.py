"""The Stooq-compatible server and its synthetic data, over real HTTP on loopback."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from lxml import html

from market_assets_tests.platform import PROJECT_ROOT
from stooq_server import Fault, FaultKind, StooqServer, generate_synthetic
from stooq_server.__main__ import main
from stooq_server.synthetic import SyntheticUniverse

HEADER = "Date,Open,High,Low,Close,Volume"
ServerFactory = Callable[..., StooqServer]
Universe = SyntheticUniverse


def get(server: StooqServer, path: str, **params: str) -> requests.Response:
    return requests.get(server.url + path, params=params, timeout=10)


def download(server: StooqServer, symbol: str, **params: str) -> requests.Response:
    return get(server, "/q/d/l/", s=symbol, **{"i": "d", **params})


def daily_file(universe: Universe, symbol: str) -> str:
    """A generated daily file as text (LF line ends)."""
    return (universe.data_dir / "d" / f"{symbol.lower()}.csv").read_text()


def served_file(universe: Universe, symbol: str) -> str:
    """What a download of the whole (unsplit) history must return: the file with CRLF line ends."""
    return daily_file(universe, symbol).replace("\n", "\r\n")


def frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), parse_dates=["Date"])


def number(value: float) -> str:
    """A number as Stooq prints it (`12.5`, `100`)."""
    return f"{value:.12g}"


def page_members(page: str) -> list[str]:
    """The symbols of the member rows in the fth1 table."""
    return html.fromstring(page).xpath('//table[@id="fth1"]/tbody/tr/td[1]/a/text()')


def member_cells(page: str, symbol: str) -> list[str]:
    """Name, last, change and volume of one member row."""
    return html.fromstring(page).xpath(f'//table[@id="fth1"]//tr[td/a="{symbol}"]/td/text()')


def session_before(universe: Universe, calendar: str, sessions_ago: int) -> pd.Timestamp:
    """The session `sessions_ago` sessions before the last one, read from the ^DJI/^HSI file."""
    series = "^dji" if calendar == "XNYS" else "^hsi"
    dates = frame(daily_file(universe, series))["Date"]
    assert dates.iloc[-1] == universe.last_session[calendar]
    return dates.iloc[-1 - sessions_ago]


# --- Synthetic data -------------------------------------------------------------------------------


def test_universe_has_the_documented_shape(synthetic_universe: Universe) -> None:
    us, hk = synthetic_universe.symbols["XNYS"], synthetic_universe.symbols["XHKG"]
    assert len(us) == 122 and len(hk) == 82  # 120 current US members + 2 removed ones
    assert us[:3] == ("SYNU001.US", "SYNU-B.US", "SYNU003.US")
    assert hk[0] == "9001.HK" and hk[-1] == "9082.HK"
    assert len(synthetic_universe.members("DJI")) == 30
    assert len(synthetic_universe.members("NDX")) == 100
    assert len(synthetic_universe.members("HSI")) == 82
    shared = set(synthetic_universe.members("DJI")) & set(synthetic_universe.members("NDX"))
    assert len(shared) == 10
    files = sorted(path.name for path in (synthetic_universe.data_dir / "d").iterdir())
    assert len(files) == 122 + 82 + 3
    assert {"^dji.csv", "^ndx.csv", "^hsi.csv", "synu-b.us.csv"} <= set(files)
    membership = (synthetic_universe.data_dir / "t" / "578.csv").read_text().splitlines()
    assert membership[0] == "symbol,name,added,removed"
    assert "SYNU001.US,Synthetic Industrial 001,," in membership


def test_histories_are_positive_consistent_and_mostly_long(synthetic_universe: Universe) -> None:
    first_dates = []
    for symbol in synthetic_universe.symbols["XNYS"] + synthetic_universe.symbols["XHKG"]:
        text = daily_file(synthetic_universe, symbol)
        assert text.startswith(HEADER + "\n")
        data = frame(text)
        prices = data[["Open", "High", "Low", "Close"]]
        assert (prices > 0).all().all(), symbol
        assert (data["Low"] <= prices[["Open", "Close"]].min(axis=1)).all(), symbol
        assert (data["High"] >= prices[["Open", "Close"]].max(axis=1)).all(), symbol
        assert ((prices * 100).round(6) % 1 == 0).all().all(), symbol  # two decimals at most
        assert (data["Volume"] >= 1).all() and (data["Volume"] % 1 == 0).all(), symbol
        assert data["Date"].is_monotonic_increasing and data["Date"].is_unique, symbol
        first_dates.append(data["Date"].iloc[0])
    late = [day for day in first_dates if day > pd.Timestamp("2004-01-02")]
    assert 2 <= len(late) <= 10
    index = frame(daily_file(synthetic_universe, "^NDX"))
    assert list(index.columns) == ["Date", "Open", "High", "Low", "Close"]
    hk_dates = frame(daily_file(synthetic_universe, "9001.HK"))["Date"]
    assert hk_dates.iloc[-1] == synthetic_universe.last_session["XHKG"]
    assert pd.Timestamp("2024-02-12") not in set(hk_dates)  # Lunar New Year: XHKG closed
    us_dates = frame(daily_file(synthetic_universe, "SYNU001.US"))["Date"]
    assert pd.Timestamp("2024-07-04") not in set(us_dates)  # Independence Day: XNYS closed


def test_splits_drop_raw_prices_by_their_ratio(synthetic_universe: Universe) -> None:
    splits = synthetic_universe.splits
    assert len(splits) >= 2
    assert set(splits["ratio"]) <= {2.0, 3.0, 4.0}
    written = (synthetic_universe.data_dir / "splits.csv").read_text().splitlines()
    assert written[0] == "symbol,date,ratio" and len(written) == len(splits) + 1
    us_splits = splits[splits["symbol"].str.endswith(".US")]
    assert us_splits["date"].max() == session_before(synthetic_universe, "XNYS", 15)  # a recent one
    for symbol, day, ratio in splits.itertuples(index=False):
        data = frame(daily_file(synthetic_universe, symbol)).set_index("Date")
        row = data.index.get_loc(day)
        assert row > 0
        jump = data["Close"].iloc[row] / data["Close"].iloc[row - 1] * ratio
        assert 0.7 < jump < 1.4, (symbol, jump)


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    options = {"first_session": "2023-01-03", "last_session": "2024-06-30", "sizes": {"DJI": 12, "NDX": 15, "HSI": 5}}
    first = generate_synthetic(a, **options)
    generate_synthetic(b, **options)
    files = sorted(path.relative_to(a) for path in a.rglob("*") if path.is_file())
    # Daily files: 12 + 15 - 10 shared + 2 removed US, 5 HK, 3 indices; 3 memberships; splits; manifest.
    assert len(files) == 19 + 5 + 3 + 3 + 2
    for path in files:
        assert (a / path).read_bytes() == (b / path).read_bytes(), path
    assert first.last_session == {"XNYS": pd.Timestamp("2024-06-28"), "XHKG": pd.Timestamp("2024-06-28")}
    other = generate_synthetic(c, seed=8, **options)
    assert (c / "d" / "synu001.us.csv").read_bytes() != (a / "d" / "synu001.us.csv").read_bytes()
    assert other.members("DJI") == first.members("DJI")


# --- Composition pages ----------------------------------------------------------------------------


def test_composition_page_lists_members_with_quotes(stooq_server: StooqServer, synthetic_universe: Universe) -> None:
    response = get(stooq_server, "/t/", i="578")
    assert response.status_code == 200
    page = response.text
    assert "<title>Dow Jones Industrial Average - components - Synthetic Stooq</title>" in page
    header = "<th>Symbol</th><th>Name</th><th>Last</th><th>Change</th><th>Volume</th>"
    assert f'<table id="fth1">\n<thead><tr>{header}</tr></thead>' in page
    assert '<td><a href="/q/?s=synu001.us">SYNU001.US</a></td><td>Synthetic Industrial 001</td>' in page
    assert len(html.fromstring(page).xpath("//table")) >= 3  # the member table is not the only one
    assert page_members(page) == synthetic_universe.members("DJI")
    assert 'id="pager"' not in page
    last = frame(daily_file(synthetic_universe, "SYNU003.US")).iloc[-2:]
    close, previous, volume = last["Close"].iloc[1], last["Close"].iloc[0], int(last["Volume"].iloc[1])
    change = f"{(close / previous - 1) * 100:+.2f}%"
    assert member_cells(page, "SYNU003.US") == ["Synthetic Industrial 003", number(close), change, str(volume)]


def test_long_compositions_are_paged(stooq_server: StooqServer, synthetic_universe: Universe) -> None:
    first, second = get(stooq_server, "/t/", i="580").text, get(stooq_server, "/t/", i="580", l="2").text
    for page in (first, second):
        assert '<a href="/t/?i=580&l=1">1</a> <a href="/t/?i=580&l=2">2</a>' in page
        assert "&l=3" not in page
    assert len(page_members(first)) == 50
    assert page_members(first) + page_members(second) == synthetic_universe.members("NDX")
    assert page_members(get(stooq_server, "/t/", i="580", l="3").text) == []


def test_page_size_is_configurable(server_factory: ServerFactory, synthetic_universe: Universe) -> None:
    server = server_factory(page_size=20)
    page = get(server, "/t/", i="616", l="5").text
    assert '<a href="/t/?i=616&l=5">5</a>' in page and "&l=6" not in page
    assert page_members(page) == synthetic_universe.members("HSI")[80:]


def test_unknown_index_page_has_no_member_table(stooq_server: StooqServer) -> None:
    for stooq_id in ("999", "abc"):
        response = get(stooq_server, "/t/", i=stooq_id)
        assert response.status_code == 200
        assert "<html" in response.text and 'id="fth1"' not in response.text


def test_membership_follows_the_serving_date(stooq_server: StooqServer, synthetic_universe: Universe) -> None:
    dji = synthetic_universe.compositions["DJI"].set_index("symbol")
    assert dji.loc["SYNU030.US", "added"] == session_before(synthetic_universe, "XNYS", 5)
    assert dji.loc["SYNU121.US", "removed"] == session_before(synthetic_universe, "XNYS", 10)

    def listed(as_of: pd.Timestamp | None) -> list[str]:
        stooq_server.as_of = as_of
        return page_members(get(stooq_server, "/t/", i="578").text)

    now = listed(None)
    assert "SYNU030.US" in now and "SYNU121.US" not in now and len(now) == 30
    assert listed(synthetic_universe.last_session["XNYS"]) == now
    before = listed(session_before(synthetic_universe, "XNYS", 11))
    assert "SYNU030.US" not in before and "SYNU121.US" in before and len(before) == 30
    assert len(listed(session_before(synthetic_universe, "XNYS", 10))) == 29  # removal day: gone
    assert len(listed(session_before(synthetic_universe, "XNYS", 6))) == 29
    assert len(listed(session_before(synthetic_universe, "XNYS", 5))) == 30  # addition day: listed
    ndx_before = synthetic_universe.members("NDX", session_before(synthetic_universe, "XNYS", 11))
    assert "SYNU122.US" in ndx_before and "SYNU120.US" not in ndx_before


def test_member_quotes_follow_the_serving_date(stooq_server: StooqServer, synthetic_universe: Universe) -> None:
    day = pd.Timestamp("2015-06-15")
    stooq_server.as_of = day
    row = member_cells(get(stooq_server, "/t/", i="578").text, "SYNU001.US")
    history = frame(daily_file(synthetic_universe, "SYNU001.US")).set_index("Date")
    assert row[1] == number(history.loc[day, "Close"])
    assert row[3] == str(int(history.loc[day, "Volume"]))


# --- Downloads ------------------------------------------------------------------------------------


def test_daily_csv_is_the_file_with_crlf(stooq_server: StooqServer, synthetic_universe: Universe) -> None:
    for symbol in ("SYNU001.US", "synu-b.us", "9010.HK", "^DJI"):
        response = download(stooq_server, symbol)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        assert response.text == served_file(synthetic_universe, symbol)
    assert download(stooq_server, "^hsi").text.startswith("Date,Open,High,Low,Close\r\n2004-01-02,")


def test_date_range_is_inclusive(stooq_server: StooqServer, synthetic_universe: Universe) -> None:
    body = download(stooq_server, "SYNU001.US", d1="20240102", d2="20240108").text
    lines = body.split("\r\n")
    assert lines[0] == HEADER and lines[-1] == ""
    assert [line[:10] for line in lines[1:-1]] == [f"2024-01-0{day}" for day in (2, 3, 4, 5, 8)]
    expected = daily_file(synthetic_universe, "SYNU001.US").splitlines()
    assert lines[1] == next(line for line in expected if line.startswith("2024-01-02"))
    assert download(stooq_server, "SYNU001.US", d1="20240106", d2="20240107").text == "No data"
    open_ended = download(stooq_server, "SYNU001.US", d1="20240102").text.split("\r\n")
    assert open_ended[1].startswith("2024-01-02") and open_ended[-2] == expected[-1]


def test_unknown_symbols_and_bad_parameters_get_no_data(stooq_server: StooqServer) -> None:
    for params in (
        {"s": "NOPE.US"},
        {"s": "../splits"},
        {"s": "synu001.us", "d1": "2024-01-02"},
        {"s": "synu001.us", "i": "q"},
    ):
        response = get(stooq_server, "/q/d/l/", **{"i": "d", **params})
        assert (response.status_code, response.text) == (200, "No data")


@pytest.mark.parametrize(("interval", "period"), [("w", "W-SUN"), ("m", "M")])
def test_weekly_and_monthly_bars(stooq_server: StooqServer, synthetic_universe: Universe, interval: str, period: str) -> None:
    daily = frame(daily_file(synthetic_universe, "SYNU003.US"))
    daily = daily[(daily["Date"] >= "2023-02-01") & (daily["Date"] <= "2023-12-20")]
    groups = daily.groupby(daily["Date"].dt.to_period(period))
    expected = pd.DataFrame(
        {
            "Date": groups["Date"].max().index.to_timestamp(how="end").normalize(),
            "Open": groups["Open"].first(),
            "High": groups["High"].max(),
            "Low": groups["Low"].min(),
            "Close": groups["Close"].last(),
            "Volume": groups["Volume"].sum(),
        }
    ).reset_index(drop=True)
    body = download(stooq_server, "SYNU003.US", i=interval, d1="20230201", d2="20231220").text
    served = frame(body)
    pd.testing.assert_frame_equal(served, expected, check_dtype=False)
    if interval == "m":
        assert served["Date"].dt.strftime("%Y-%m-%d").tolist()[:2] == ["2023-02-28", "2023-03-31"]
        assert served["Date"].iloc[-1] == pd.Timestamp("2023-12-31")  # a month still running, by its end
    else:
        assert (served["Date"].dt.day_of_week == 6).all()  # Stooq dates a week by its Sunday
    assert body.endswith("\r\n") and "\r\n2023-" in body


def test_weekly_index_bars_have_no_volume(stooq_server: StooqServer) -> None:
    body = download(stooq_server, "^ndx", i="w", d1="20240101", d2="20240131").text
    assert body.split("\r\n")[0] == "Date,Open,High,Low,Close"
    labels = [line[:10] for line in body.split("\r\n")[1:-1]]
    assert labels == ["2024-01-07", "2024-01-14", "2024-01-21", "2024-01-28", "2024-02-04"]  # Sundays


def test_saved_polish_crlf_files_are_served_in_english(server_factory: ServerFactory, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "abc.us.csv").write_bytes(
        b"Data,Otwarcie,Najwyzszy,Najnizszy,Zamkniecie,Wolumen\r\n"
        b"2024-01-02,10.50,11.00,10.00,10.80,1200\r\n"
        b"2024-01-03,10.8,12.25,10.7,12,3400.5\r\n"
        b"2024-01-04,12,12,12,12\r\n"
        b"\r\n"
    )
    index = b"Date,Open,High,Low,Close\r\n2024-01-03,100,101,99,100.5\r\n"
    (tmp_path / "d" / "^abc.csv").write_bytes(index)
    server = server_factory(tmp_path)
    assert download(server, "ABC.US").text == (
        "Date,Open,High,Low,Close,Volume\r\n"
        "2024-01-02,10.5,11,10,10.8,1200\r\n"
        "2024-01-03,10.8,12.25,10.7,12,3400.5\r\n"
        "2024-01-04,12,12,12,12\r\n"  # a row without volume, as real Stooq files have
    )
    # Weeks and months are dated by their last calendar day: the Sunday, the month-end.
    assert download(server, "ABC.US", i="w").text == HEADER + "\r\n2024-01-07,10.5,12.25,10,12,4600.5\r\n"
    assert download(server, "^abc", i="m").text == index.decode().replace("2024-01-03", "2024-01-31")
    assert "Stooq-compatible server" in get(server, "/t/", i="578").text
    assert "Synthetic" not in get(server, "/t/", i="578").text


def test_edited_files_are_served_after_a_reload(server_factory: ServerFactory, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    history = tmp_path / "d" / "abc.us.csv"
    history.write_text("Date,Open,High,Low,Close,Volume\n2024-01-02,10,11,9,10.5,100\n2024-01-03,10.5,12,10,11,200\n")
    server = server_factory(tmp_path)
    assert download(server, "ABC.US").text.endswith("2024-01-03,10.5,12,10,11,200\r\n")

    # An inverted high and low, a repeated date and a split: what data-quality tests serve.
    history.write_text(
        "Date,Open,High,Low,Close,Volume\n2024-01-02,10,9,11,10.5,100\n"
        "2024-01-03,10.5,12,10,11,200\n2024-01-03,10.5,12,10,11,200\n2024-01-04,6,6.5,5.5,6,300\n"
    )
    (tmp_path / "splits.csv").write_text("symbol,date,ratio\nABC.US,2024-01-04,2\n")
    assert "2024-01-04" not in download(server, "ABC.US").text  # what was read is kept until a reload

    assert requests.post(f"{server.url}/_admin/reload", timeout=10).json() == {"reloaded": str(tmp_path)}
    assert download(server, "ABC.US").text == (
        "Date,Open,High,Low,Close,Volume\r\n"
        "2024-01-02,5,4.5,5.5,5.25,200\r\n"
        "2024-01-03,5.25,6,5,5.5,400\r\n"
        "2024-01-03,5.25,6,5,5.5,400\r\n"
        "2024-01-04,6,6.5,5.5,6,300\r\n"
    )
    history.unlink()
    server.reload()
    assert download(server, "ABC.US").text == "No data"


def test_a_dividend_adjusts_earlier_prices_but_not_volumes_from_its_date_on(server_factory, tmp_path) -> None:
    universe = generate_synthetic(
        tmp_path / "stooq", first_session="2024-01-02", sizes={"DJI": 4, "NDX": 1, "HSI": 1}, dividends=True
    )
    payers = universe.dividends.groupby("symbol")
    assert len(payers) == sum(-(-len(symbols) // 4) for symbols in universe.symbols.values())  # a quarter
    assert universe.dividends["factor"].between(0.99, 0.9975).all()
    symbol, dividends = next(iter(payers))
    assert dividends["date"].diff().dropna().dt.days.between(80, 100).all()  # quarterly
    day, factor = dividends["date"].iloc[-1], dividends["factor"].iloc[-1]
    server = server_factory(universe.data_dir)
    server.as_of = day - pd.Timedelta(days=1)
    while frame(download(server, symbol).text)["Date"].iloc[-1] >= day:  # the session before the dividend
        server.as_of -= pd.Timedelta(days=1)
    before = frame(download(server, symbol).text)
    server.as_of = day
    after = frame(download(server, symbol).text)

    earlier = after["Date"] < day
    shared = after[earlier].reset_index(drop=True)
    ratio = shared["Close"] / before["Close"].iloc[: len(shared)]
    later_dividends = (dividends["date"] > before["Date"].iloc[-1]).sum()
    assert later_dividends == 1 and np.allclose(ratio, factor, atol=1e-4)
    assert (shared["Volume"] == before["Volume"].iloc[: len(shared)]).all()


def test_history_is_split_adjusted_as_of_the_serving_date(stooq_server: StooqServer, synthetic_universe: Universe) -> None:
    splits = synthetic_universe.splits
    symbol, split_day, ratio = splits[splits["symbol"].str.endswith(".US")].iloc[0]
    raw = frame(daily_file(synthetic_universe, symbol))
    raw_before = raw[raw["Date"] < split_day]
    raw_after = raw[raw["Date"] >= split_day].reset_index(drop=True)
    day_before = raw_before["Date"].iloc[-1]
    prices = ["Open", "High", "Low", "Close"]

    stooq_server.as_of = day_before
    file_lines = daily_file(synthetic_universe, symbol).splitlines()
    assert download(stooq_server, symbol).text == "\r\n".join(file_lines[: len(raw_before) + 1]) + "\r\n"

    for as_of in (split_day, None):
        stooq_server.as_of = as_of
        served = frame(download(stooq_server, symbol).text)
        served_before = served[served["Date"] < split_day]
        served_after = served[served["Date"] >= split_day].reset_index(drop=True)
        assert len(served_before) == len(raw_before)
        expected = (raw_before[prices] / ratio).round(4).to_numpy()
        np.testing.assert_allclose(served_before[prices].to_numpy(), expected, rtol=0, atol=1e-9)
        assert served_before["Volume"].tolist() == (raw_before["Volume"] * ratio).tolist()
        pd.testing.assert_frame_equal(served_after, raw_after.iloc[: len(served_after)])
        assert len(served_after) == (1 if as_of is not None else len(raw_after))

    weekly = frame(download(stooq_server, symbol, i="w", d2=day_before.strftime("%Y%m%d")).text)
    expected_close = round(raw_before["Close"].iloc[-1] / ratio, 4)
    sunday = day_before + pd.Timedelta(days=6 - day_before.day_of_week)
    assert weekly["Date"].iloc[-1] == sunday and weekly["Close"].iloc[-1] == expected_close


# --- API key --------------------------------------------------------------------------------------


def test_downloads_need_the_api_key_when_one_is_set(server_factory: ServerFactory, synthetic_universe: Universe) -> None:
    server = server_factory(api_key="s3cret")
    for params in ({}, {"apikey": "wrong"}):
        response = download(server, "SYNU001.US", **params)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/html")
        assert "An API key is required for CSV downloads" in response.text
        assert '<a href="/q/d/?s=spy.us&get_apikey">' in response.text
    assert download(server, "SYNU001.US", apikey="s3cret").text == served_file(synthetic_universe, "SYNU001.US")
    key_page = requests.get(server.url + "/q/d/?s=spy.us&get_apikey", timeout=10).text
    assert html.fromstring(key_page).xpath('//code[@id="apikey"]/text()') == ["s3cret"]
    assert len(page_members(get(server, "/t/", i="578").text)) == 30


def test_api_key_page_without_a_key(stooq_server: StooqServer) -> None:
    key_page = requests.get(stooq_server.url + "/q/d/?s=spy.us&get_apikey", timeout=10).text
    assert "This server needs no API key for CSV downloads." in key_page
    assert get(stooq_server, "/q/d/", s="spy.us").status_code == 404


# --- Faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "body"),
    [
        (FaultKind.HTTP_500, 500, "Internal Server Error"),
        (FaultKind.HTTP_503, 503, "Service Unavailable"),
        (FaultKind.HTTP_404, 404, "Not Found"),
        (FaultKind.HITS_LIMIT, 200, "Exceeded the daily hits limit"),
        (FaultKind.NO_DATA, 200, "No data"),
        (FaultKind.EMPTY, 200, ""),
    ],
)
def test_faults_with_fixed_answers(stooq_server: StooqServer, kind: FaultKind, status: int, body: str) -> None:
    stooq_server.inject(Fault(kind))
    response = download(stooq_server, "SYNU001.US")
    assert (response.status_code, response.text) == (status, body)
    assert stooq_server.stats()["faults"] == {kind.value: 1}


def test_reset_fault_drops_the_connection(stooq_server: StooqServer) -> None:
    stooq_server.inject(Fault("reset", count=1))
    with pytest.raises(requests.ConnectionError):
        download(stooq_server, "SYNU001.US")
    assert download(stooq_server, "SYNU001.US").status_code == 200


def test_slow_fault_delays_a_normal_answer(stooq_server: StooqServer, synthetic_universe: Universe) -> None:
    stooq_server.inject(Fault("slow", delay=0.4))
    started = time.monotonic()
    response = download(stooq_server, "SYNU001.US")
    assert time.monotonic() - started >= 0.4
    assert response.text == served_file(synthetic_universe, "SYNU001.US")


def test_challenge_fault_sends_a_proof_of_work_page(stooq_server: StooqServer) -> None:
    stooq_server.inject(Fault("challenge", routes=("download", "composition")))
    for response in (download(stooq_server, "SYNU001.US"), get(stooq_server, "/t/", i="578")):
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/html")
        assert html.fromstring(response.text).findtext(".//title") == "Checking your browser..."
        assert 'crypto.subtle.digest("SHA-256"' in response.text
        assert 'fetch("/__verify"' in response.text
        assert 'id="fth1"' not in response.text


def test_truncated_fault_cuts_the_last_line(stooq_server: StooqServer, synthetic_universe: Universe) -> None:
    full = served_file(synthetic_universe, "SYNU001.US")
    full_page = get(stooq_server, "/t/", i="578").text
    stooq_server.inject(Fault("truncated", routes=("download", "composition")))
    body = download(stooq_server, "SYNU001.US").text
    assert full.startswith(body) and not body.endswith("\n")
    kept, cut = body.rsplit("\r\n", 1)
    full_lines = full.rstrip("\r\n").split("\r\n")
    assert kept.split("\r\n") == full_lines[:-1]
    assert 0 < len(cut) < len(full_lines[-1]) and full_lines[-1].startswith(cut)
    page = get(stooq_server, "/t/", i="578").text
    assert full_page.startswith(page) and len(page) < len(full_page)
    assert page.count('<tr><td><a href="/q/?s=') == 30
    assert page.count("</tr>\n") == 29 and "</tbody>" not in page  # the last member row is cut


def test_bad_columns_fault_renames_close(stooq_server: StooqServer, synthetic_universe: Universe) -> None:
    stooq_server.inject(Fault("bad_columns"))
    body = download(stooq_server, "SYNU001.US").text
    assert body == served_file(synthetic_universe, "SYNU001.US").replace(HEADER, "Date,Open,High,Low,Last,Volume")


def test_garbled_fault_makes_prices_non_numeric(stooq_server: StooqServer, synthetic_universe: Universe) -> None:
    stooq_server.inject(Fault("garbled"))
    served = pd.read_csv(io.StringIO(download(stooq_server, "SYNU001.US").text), dtype=str)
    original = frame(daily_file(synthetic_universe, "SYNU001.US"))
    close = pd.to_numeric(served["Close"], errors="coerce")
    assert close.isna().sum() == (len(original) + 9) // 10
    assert close.isna()[::10].all()
    first = number(original["Close"].iloc[0])
    assert served["Close"].iloc[0] == first[:1] + "O" + first[2:]
    assert served["Open"].tolist() == [number(value) for value in original["Open"]]


def test_faults_target_symbols_and_routes(stooq_server: StooqServer) -> None:
    stooq_server.inject(Fault("http_503", symbols={"synu001.us"}))
    stooq_server.inject(Fault("http_500", symbols={"NDX"}, routes=("composition",)))
    assert download(stooq_server, "SYNU001.US").status_code == 503
    assert download(stooq_server, "synu001.us").status_code == 503
    assert download(stooq_server, "SYNU003.US").status_code == 200
    assert get(stooq_server, "/t/", i="580").status_code == 500
    assert get(stooq_server, "/t/", i="578").status_code == 200
    stooq_server.clear_faults()
    assert download(stooq_server, "SYNU001.US").status_code == 200


def test_fault_count_and_order(stooq_server: StooqServer) -> None:
    stooq_server.inject(Fault("http_503", count=2))
    stooq_server.inject(Fault("hits_limit", count=1))
    answers = [download(stooq_server, "SYNU001.US") for _ in range(5)]
    assert [(answer.status_code, answer.text[:9]) for answer in answers] == [
        (503, "Service U"),
        (503, "Service U"),
        (200, "Exceeded "),
        (200, "Date,Open"),
        (200, "Date,Open"),
    ]
    assert stooq_server.stats()["faults"] == {"http_503": 2, "hits_limit": 1}


def test_fault_rate_is_a_deterministic_probability(server_factory: ServerFactory) -> None:
    def statuses(server: StooqServer) -> list[int]:
        server.inject(Fault("http_503", rate=0.3))
        return [get(server, "/q/d/l/", s="NOPE", i="d").status_code for _ in range(200)]

    first, second = statuses(server_factory()), statuses(server_factory())
    assert first == second
    assert 30 <= first.count(503) <= 90
    rare = server_factory()
    rare.inject(Fault("http_503", rate=0.0))
    assert all(get(rare, "/q/d/l/", s="NOPE", i="d").status_code == 200 for _ in range(20))


def test_invalid_faults_are_rejected() -> None:
    with pytest.raises(ValueError):
        Fault("teapot")
    with pytest.raises(ValueError):
        Fault("http_503", rate=1.5)
    with pytest.raises(ValueError):
        Fault("garbled", routes=("composition",))
    round_trip = Fault.from_json(Fault("slow", symbols={"a.us"}, delay=1.0).to_json())
    assert round_trip == Fault(FaultKind.SLOW, symbols={"A.US"}, delay=1.0)


# --- Admin, stats, concurrency --------------------------------------------------------------------


def test_admin_endpoints(stooq_server: StooqServer) -> None:
    url = stooq_server.url
    fault = {"kind": "http_503", "symbols": ["SYNU001.US"], "rate": 1.0, "count": 1, "delay": 0, "routes": ["download"]}
    response = requests.post(f"{url}/_admin/faults", json=[fault], timeout=10)
    assert response.status_code == 200 and response.json()["faults"][0]["kind"] == "http_503"
    refused, answered = download(stooq_server, "SYNU001.US"), download(stooq_server, "SYNU001.US")
    assert refused.status_code == 503
    assert answered.status_code == 200
    page = get(stooq_server, "/t/", i="580")
    stats = requests.get(f"{url}/_admin/stats", timeout=10).json()
    assert stats == stooq_server.stats()
    assert stats["total"] == 3
    assert stats["by_route"] == {"download": 2, "composition": 1, "apikey": 0, "other": 0}
    assert stats["by_symbol"] == {"SYNU001.US": 2}
    assert stats["by_index"] == {"580": 1}
    assert stats["faults"] == {"http_503": 1}
    downloaded = len(refused.content) + len(answered.content)
    assert stats["bytes_by_route"] == {"download": downloaded, "composition": len(page.content)}

    requests.post(f"{url}/_admin/faults", json=[{"kind": "http_500"}], timeout=10)
    assert download(stooq_server, "SYNU001.US").status_code == 500
    assert requests.post(f"{url}/_admin/faults", json=[], timeout=10).json() == {"faults": []}
    assert download(stooq_server, "SYNU001.US").status_code == 200

    def set_as_of(value: str | None) -> object:
        return requests.post(f"{url}/_admin/as_of", json={"as_of": value}, timeout=10).json()

    assert set_as_of("2020-03-31") == {"as_of": "2020-03-31"}
    assert stooq_server.as_of == pd.Timestamp("2020-03-31")
    assert download(stooq_server, "SYNU001.US").text.split("\r\n")[-2].startswith("2020-03-31,")
    assert set_as_of(None) == {"as_of": None}
    assert stooq_server.as_of is None

    bad = [("faults", [{"kind": "teapot"}]), ("faults", {"kind": "http_500"}), ("as_of", {"as_of": "someday"})]
    for path, payload in bad:
        response = requests.post(f"{url}/_admin/{path}", json=payload, timeout=10)
        assert response.status_code == 400 and "error" in response.json()
    stooq_server.reset_stats()
    assert stooq_server.stats()["total"] == 0 and stooq_server.stats()["faults"] == {}


def test_latency_does_not_serialize_requests(server_factory: ServerFactory, synthetic_universe: Universe) -> None:
    server = server_factory(latency=0.3)
    symbols = synthetic_universe.symbols["XNYS"][:20]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda symbol: download(server, symbol, d1="20240101"), symbols))
    elapsed = time.monotonic() - started
    assert [response.status_code for response in responses] == [200] * 20
    assert all(response.text.startswith(HEADER) for response in responses)
    assert 0.3 <= elapsed < 3.0
    assert server.stats()["by_route"]["download"] == 20


def test_stopped_server_refuses_connections(synthetic_universe: Universe) -> None:
    with StooqServer(synthetic_universe.data_dir) as server:
        url = server.url
        session = requests.Session()
        assert session.get(f"{url}/t/?i=578", timeout=10).status_code == 200
    with pytest.raises(requests.ConnectionError):
        session.get(f"{url}/t/?i=578", timeout=10)


# --- Command line ---------------------------------------------------------------------------------


def test_cli_serve_until_sigterm(synthetic_universe: Universe, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    command = [sys.executable, "-m", "stooq_server", "serve"]
    command += ["--data-dir", str(synthetic_universe.data_dir), "--port", "0", "--ready-file", str(ready)]
    command += ["--fault", "http_503@SYNU001.US", "--as-of", "2024-05-31"]
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        url = ready.read_text().strip()
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(f"{url}/q/d/l/?s=SYNU001.US&i=d", timeout=10).status_code == 503
        served = requests.get(f"{url}/q/d/l/?s=SYNU003.US&i=d", timeout=10).text
        assert served.split("\r\n")[-2].startswith("2024-05-31,")
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0
    assert stdout == f"Serving synthetic Stooq-compatible data from {synthetic_universe.data_dir} at {url}\n"


def test_cli_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dates = ["--first-session", "2024-01-02", "--last-session", "2024-03-28"]
    assert main(["generate", "--data-dir", str(tmp_path), *dates, "--sizes", "DJI=3,NDX=4,HSI=2"]) == 0
    assert capsys.readouterr().out == (
        f"Generated synthetic Stooq data in {tmp_path}: 6 XNYS, 2 XHKG symbols; last sessions XNYS 2024-03-28, XHKG 2024-03-28.\n"
    )
    assert (tmp_path / "t" / "580.csv").read_text().count("\n") == 1 + 4 + 1
