"""The Stooq client against the project's Stooq-compatible server, over real HTTP on loopback."""

from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from market_assets.sources import (
    StooqApiKeyRequired,
    StooqChallengeError,
    StooqClient,
    StooqConnectionError,
    StooqFormatError,
    StooqHitsLimitError,
    StooqHttpError,
    StooqNoDataError,
    StooqServerError,
    StooqTimeoutError,
    UnknownIndexError,
)
from market_assets.sources.parsing import parse_history_csv
from market_assets_tests.universe import FIXTURES
from stooq_server import Fault, FaultKind, StooqServer

US = "SYNU001.US"


@pytest.fixture
def client(stooq_server):
    with StooqClient(stooq_server.url, retries=2, backoff=0.01, read_timeout=5) as client:
        yield client


def _daily_file(universe, symbol: str) -> pd.DataFrame:
    frame = pd.read_csv(universe.data_dir / "d" / f"{symbol.lower()}.csv", parse_dates=["Date"])
    return frame.rename(columns=str.lower)


@pytest.mark.parametrize("index, size", [("DJI", 30), ("NDX", 100), ("HSI", 82)])
def test_composition_lists_every_member_across_pages(client, synthetic_universe, index, size):
    members = client.composition(index)

    assert list(members.columns[:2]) == ["symbol", "name"]
    assert len(members) == size
    assert members["symbol"].is_unique
    last = max(synthetic_universe.last_session.values())
    assert sorted(members["symbol"]) == sorted(synthetic_universe.members(index, last))
    assert members["name"].str.startswith("Synthetic").all()


def test_composition_of_an_unknown_index_names_the_known_ones(client):
    with pytest.raises(UnknownIndexError, match="'SPX'.*DJI, NDX, HSI"):
        client.composition("SPX")


def test_daily_history_equals_the_served_file(client, synthetic_universe):
    bars = client.history(US)

    expected = _daily_file(synthetic_universe, US)
    assert list(bars.columns) == ["date", "open", "high", "low", "close", "volume"]
    assert str(bars["date"].dtype) == "datetime64[ns]" and str(bars["volume"].dtype) == "Float64"
    assert len(bars) == len(expected) > 5000
    assert bars["date"].is_monotonic_increasing and bars["date"].is_unique
    pd.testing.assert_series_equal(bars["close"], expected["close"], check_names=False)
    assert bars["volume"].iloc[-1] == expected["volume"].iloc[-1]


def test_date_range_is_sent_as_d1_d2(client):
    bars = client.history(US, start="2024-03-01", end="2024-03-31")

    assert bars["date"].min() >= pd.Timestamp("2024-03-01")
    assert bars["date"].max() <= pd.Timestamp("2024-03-31")
    assert len(bars) == 20  # NYSE sessions in March 2024 (Good Friday is 29 March)


def test_weekly_and_monthly_sum_the_daily_volume(client):
    daily = client.history(US, "d", start="2024-01-01", end="2024-06-30")
    weekly = client.history(US, "w", start="2024-01-01", end="2024-06-30")
    monthly = client.history(US, "m", start="2024-01-01", end="2024-06-30")

    assert len(monthly) == 6
    march = daily[daily["date"].dt.month == 3]
    row = monthly[monthly["date"].dt.month == 3].iloc[0]
    assert row["date"] == pd.Timestamp("2024-03-31")  # Stooq dates a month by its last day, a Sunday here
    assert row["volume"] == march["volume"].sum()
    assert row["high"] == march["high"].max() and row["open"] == march["open"].iloc[0]
    assert weekly["volume"].sum() == daily["volume"].sum()


def test_index_series_have_no_volume(client):
    bars = client.history("^DJI")

    assert bars["volume"].isna().all()
    assert len(bars) > 5000


def test_one_client_serves_many_threads(client, synthetic_universe):
    symbols = synthetic_universe.members("NDX", max(synthetic_universe.last_session.values()))[:24]
    with ThreadPoolExecutor(max_workers=12) as pool:
        closes = list(pool.map(lambda s: client.history(s)["close"].iloc[-1], symbols))

    expected = [_daily_file(synthetic_universe, s)["close"].iloc[-1] for s in symbols]
    assert closes == expected


# Every answer that is not data becomes its own error, naming the symbol and the URL.


@pytest.mark.parametrize(
    "kind, error_type, problem",
    [
        (FaultKind.HTTP_404, StooqHttpError, "Stooq answered HTTP 404"),
        (FaultKind.HITS_LIMIT, StooqHitsLimitError, "'Exceeded the daily hits limit'"),
        (FaultKind.CHALLENGE, StooqChallengeError, "browser check (a proof-of-work page)"),
        (FaultKind.NO_DATA, StooqNoDataError, "Stooq answered 'No data'"),
        (FaultKind.EMPTY, StooqFormatError, "Stooq answered with an empty body"),
        (FaultKind.TRUNCATED, StooqFormatError, "the CSV is truncated: its last line"),
        (FaultKind.BAD_COLUMNS, StooqFormatError, "unexpected CSV header"),
        (FaultKind.GARBLED, StooqFormatError, "has an unparsable"),
    ],
)
def test_permanent_answers_fail_once_with_a_clear_message(stooq_server, client, kind, error_type, problem):
    stooq_server.inject(Fault(kind, symbols={US}))

    with pytest.raises(error_type) as caught:
        client.history(US)

    error = caught.value
    assert not error.retryable
    assert str(error).startswith(f"{US}: ")
    assert problem in str(error)
    assert f"(GET {stooq_server.url}/q/d/l/?s=synu001.us&i=d)" in str(error)
    assert stooq_server.stats()["by_symbol"][US] == 1  # not retried


@pytest.mark.parametrize(
    "fault, error_type, problem",
    [
        (Fault(FaultKind.HTTP_503), StooqServerError, "Stooq answered HTTP 503"),
        (Fault(FaultKind.HTTP_500), StooqServerError, "Stooq answered HTTP 500"),
        (Fault(FaultKind.RESET), StooqConnectionError, "the connection failed"),
        (Fault(FaultKind.SLOW, delay=1.5), StooqTimeoutError, "timed out reading after 0.5 s"),
    ],
)
def test_transient_failures_are_retried_then_reported(stooq_server, fault, error_type, problem):
    stooq_server.inject(fault)

    with StooqClient(stooq_server.url, retries=2, backoff=0.01, read_timeout=0.5) as client:
        with pytest.raises(error_type) as caught:
            client.history(US)

    assert caught.value.retryable
    assert problem in str(caught.value) and "retrying may help" in str(caught.value)
    assert stooq_server.stats()["by_symbol"][US] == 3  # first try and two retries


def test_a_short_burst_of_errors_is_absorbed_by_retries(stooq_server, client):
    stooq_server.inject(Fault(FaultKind.HTTP_503, count=2))

    bars = client.history(US)

    assert len(bars) > 5000
    assert stooq_server.stats()["faults"]["http_503"] == 2


def test_connection_refused_names_the_url():
    with StooqClient("http://127.0.0.1:9", retries=0, connect_timeout=1) as client:
        with pytest.raises(
            StooqConnectionError,
            match=r"SYNU001.US: the connection failed .* \(GET http://127.0.0.1:9/q/d/l/\?s=synu001.us&i=d\)",
        ):
            client.history(US)


def test_composition_page_behind_the_browser_check(stooq_server, client):
    stooq_server.inject(Fault(FaultKind.CHALLENGE, routes=("composition",)))

    with pytest.raises(StooqChallengeError, match=r"^index DJI: .*GET .*/t/\?i=578"):
        client.composition("DJI")


def test_api_key_is_required_sent_and_never_shown(synthetic_universe):
    with StooqServer(synthetic_universe.data_dir, api_key="s3cret-key") as server:
        with StooqClient(server.url, retries=0) as anonymous:
            with pytest.raises(StooqApiKeyRequired) as caught:
                anonymous.history(US)
        assert "get_apikey" in str(caught.value) and "STOOQ_API_KEY" in str(caught.value)

        with StooqClient(server.url, api_key="s3cret-key", retries=0) as keyed:
            assert len(keyed.history(US)) > 5000
            server.inject(Fault(FaultKind.NO_DATA))
            with pytest.raises(StooqNoDataError) as caught:
                keyed.history(US)
        assert "apikey=***" in str(caught.value)
        assert "s3cret-key" not in str(caught.value)

        server.clear_faults()
        with StooqClient(server.url, api_key="wrong", retries=0) as wrong:
            with pytest.raises(StooqApiKeyRequired):
                wrong.history(US)


# Real recorded Stooq downloads (../shared/fixtures), when present.

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"recorded Stooq files not found at {FIXTURES}")


@needs_fixtures
def test_polish_header_and_fractional_adjusted_volume():
    text = (FIXTURES / "aapl_us_d.csv").read_text()

    bars = parse_history_csv(text, "AAPL.US", "file")

    assert bars["date"].iloc[0] == pd.Timestamp("1984-09-07")
    assert bars["date"].iloc[-1] == pd.Timestamp("2023-03-17")
    assert bars["close"].iloc[0] == pytest.approx(0.100763)
    assert bars["volume"].iloc[0] == pytest.approx(97676041.83885)
    assert bars["close"].iloc[-1] == 155.0


@needs_fixtures
def test_crlf_and_trailing_blank_line():
    text = (FIXTURES / "^dji_d.csv").read_bytes().decode()

    bars = parse_history_csv(text, "^DJI", "file")

    assert bars["date"].iloc[-1] == pd.Timestamp("2022-12-30")
    assert bars["close"].iloc[-1] == 33147.25
    assert len(bars) == len(text.strip().splitlines()) - 1


@needs_fixtures
def test_recorded_files_served_and_fetched(tmp_path):
    (tmp_path / "d").mkdir()
    for name, symbol in [("brk-a_us_d.csv", "brk-a.us"), ("msft_us_d.csv", "msft.us")]:
        (tmp_path / "d" / f"{symbol}.csv").write_bytes((FIXTURES / name).read_bytes())

    with StooqServer(tmp_path) as server, StooqClient(server.url, retries=0) as client:
        brk = client.history("BRK-A.US")
        msft = client.history("MSFT.US", start="2023-03-01")

    assert brk["close"].max() > 400_000 and brk["volume"].iloc[-1] == 5263
    assert msft["date"].iloc[0] == pd.Timestamp("2023-03-01")
    assert msft["close"].iloc[-1] == 279.43
