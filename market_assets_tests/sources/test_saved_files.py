"""The files source: Stooq's bulk archives, saved CSVs and composition pages, read like the HTTP source.

The saved files are made the way a user makes them: bulk archives in stooq.com's layout holding
exactly what the project's server serves, and pages and CSVs saved from that server over HTTP.
"""

import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from market_assets.sources import (
    StooqClient,
    StooqFileError,
    StooqFileMissing,
    StooqFiles,
    StooqStaleFile,
    followed_indices,
)
from market_assets.sources.parsing import BULK_HEADER, parse_history_csv
from market_assets_tests.sources.user_files import ARCHIVES, saved_csv_symbol
from market_assets_tests.universe import FIXTURES
from stooq_server import StooqServer
from stooq_server.bulk import bulk_member


@pytest.fixture
def files(saved_files):
    with StooqFiles(saved_files) as files:
        yield files


def _http_history(server: StooqServer, symbol: str) -> pd.DataFrame:
    """What the HTTP source answers for `symbol`: its whole history as served today."""
    with StooqClient(server.url, retries=0) as client:
        return client.history(symbol, "d")


@pytest.mark.parametrize("index", list(followed_indices()))
def test_composition_from_saved_pages_equals_the_served_one(files, stooq_server, index):
    with StooqClient(stooq_server.url, retries=0) as client:
        served = client.composition(index)

    pd.testing.assert_frame_equal(files.composition(index), served)


@pytest.mark.parametrize("calendar", ["XNYS", "XHKG"])
def test_history_from_an_archive_equals_the_served_one(files, stooq_server, synthetic_universe, calendar):
    session = synthetic_universe.last_session[calendar]
    earlier = session - pd.Timedelta(days=40)
    for symbol in synthetic_universe.symbols[calendar][:3]:
        for day in (session, earlier):
            from_files = files.daily_history(symbol.lower(), day)
            # Bars after `day` too, as the HTTP source answers: they mark a backfill.
            pd.testing.assert_frame_equal(from_files, _http_history(stooq_server, symbol))


def test_history_from_a_saved_csv_and_from_an_unpacked_archive(saved_files, tmp_path, stooq_server, synthetic_universe):
    session = synthetic_universe.last_session["XNYS"]
    saved_csv = saved_csv_symbol(synthetic_universe)
    in_archive = synthetic_universe.members("DJI")[0]
    with zipfile.ZipFile(saved_files / ARCHIVES["XNYS"]) as archive:
        archive.extractall(tmp_path / "d_us_txt")
    shutil.copy(next(saved_files.glob("*_d.csv")), tmp_path)

    with StooqFiles(tmp_path) as unpacked:
        for symbol in (saved_csv, in_archive):
            pd.testing.assert_frame_equal(unpacked.daily_history(symbol, session), _http_history(stooq_server, symbol))


def _archive_of(tmp_path: Path, files: dict[str, str]) -> Path:
    path = tmp_path / "d_us_txt.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for symbol, text in files.items():
            archive.writestr(bulk_member(symbol), text)
    return path


_GOOD = [
    "ABC.US,D,20261116,000000,10,11,9.5,10.5,1000,0",
    "ABC.US,D,20261117,000000,10.5,12,10,11.5,1500,0",
    "ABC.US,D,20261118,000000,11.5,11.75,11,11.25,1200,0",
]


def _bulk(*rows: str, header: str = BULK_HEADER) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


@pytest.mark.parametrize(
    "text, problem",
    [
        (
            _bulk(*_GOOD, header="<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOLUME>"),
            f"unexpected header '<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOLUME>'; expected {BULK_HEADER}",
        ),
        (
            _bulk(_GOOD[0], _GOOD[2], _GOOD[1]),
            "line 4 has the date 2026-11-17, earlier than 2026-11-18 on line 3: the dates are out of order",
        ),
        (
            _bulk(_GOOD[0], _GOOD[1], _GOOD[1].replace("10.5,12", "10.6,12")),
            "the date 2026-11-17 is on more than one line (3 and 4)",
        ),
        (
            _bulk(_GOOD[0], _GOOD[1].replace(",11.5,1500", ",n/a,1500"), _GOOD[2]),
            "line 3 has an unparsable close 'n/a'",
        ),
        (
            _bulk(_GOOD[0], _GOOD[1].replace(",D,", ",60,"), _GOOD[2]),
            "line 3 has the period '60', not D: not a file of the daily archives",
        ),
    ],
    ids=["wrong header", "date out of order", "duplicate date", "non-numeric price", "intraday file"],
)
def test_a_bad_archive_member_is_an_error_naming_the_archive_and_the_member(tmp_path, text, problem):
    archive = _archive_of(tmp_path, {"ABC.US": text, "XYZ.US": _bulk(*_GOOD).replace("ABC", "XYZ")})

    with StooqFiles(tmp_path) as files:
        with pytest.raises(StooqFileError) as caught:
            files.daily_history("ABC.US", pd.Timestamp("2026-11-18"))
        assert len(files.daily_history("XYZ.US", pd.Timestamp("2026-11-18"))) == 3

    message = str(caught.value)
    assert message.startswith(f"ABC.US: {problem} (archive {archive}, member data/daily/us/nyse stocks/1/abc.us.txt).")
    assert "replace it with a fresh download" in message


def test_a_symbol_not_in_the_archive_and_a_stale_archive(tmp_path):
    archive = _archive_of(tmp_path, {"ABC.US": _bulk(*_GOOD)})

    with StooqFiles(tmp_path) as files:
        with pytest.raises(StooqFileMissing) as missing:
            files.daily_history("NOPE.US", pd.Timestamp("2026-11-18"))
        with pytest.raises(StooqStaleFile) as stale:
            files.daily_history("abc.us", pd.Timestamp("2026-11-19"))

    assert str(missing.value).startswith(
        f"NOPE.US: no bulk file nope.us.txt in the archives (found: {archive}) and no saved CSV "
        f"nope_us_d.csv (folder {tmp_path})."
    )
    assert str(stale.value).startswith(
        "abc.us: the session 2026-11-19 is later than the archive's last date for it, 2026-11-18 "
        f"(archive {archive}, member data/daily/us/nyse stocks/1/abc.us.txt). Download a newer archive"
    )


def test_a_symbol_in_two_places_is_refused(saved_files, tmp_path):
    shutil.copy(saved_files / ARCHIVES["XHKG"], tmp_path)
    with zipfile.ZipFile(saved_files / ARCHIVES["XHKG"]) as archive:
        archive.extractall(tmp_path / "d_hk_txt")
        member = next(name for name in archive.namelist() if name.endswith(".txt"))
    symbol = Path(member).stem.upper()

    with StooqFiles(tmp_path) as files, pytest.raises(StooqFileError, match="more than one file holds it") as caught:
        files.daily_history(symbol, pd.Timestamp("2026-11-18"))
    assert f"archive {tmp_path / 'd_hk_txt.zip'}, member {member}" in str(caught.value)
    assert f"archive {tmp_path / 'd_hk_txt'}, member {member}" in str(caught.value)


def test_composition_pages_missing_or_incomplete(saved_files, tmp_path):
    page = (saved_files / "pages" / "NDX.html").read_text()
    (tmp_path / "ndx.HTML").write_text(page.replace('href="/t/', 'href="t/'))  # links as saved

    with StooqFiles(tmp_path) as files:
        with pytest.raises(StooqFileMissing) as dji:
            files.composition("DJI")
        with pytest.raises(StooqFileMissing) as ndx:
            files.composition("NDX")

    assert "index DJI: no saved composition page: save https://stooq.com/t/?i=578 as DJI.html" in str(dji.value)
    assert (
        "index NDX: the list goes on over pages not saved: save https://stooq.com/t/?i=580&l=2 as NDX_2.html "
        f"(file {tmp_path / 'ndx.HTML'})"
    ) in str(ndx.value)


def test_an_index_whose_name_has_an_underscore_is_read_from_its_saved_pages(saved_files, tmp_path, monkeypatch):
    with StooqFiles(saved_files / "pages") as ndx:
        expected = ndx.composition("NDX")
    indices = tmp_path / "indices.yaml"
    indices.write_text("indices:\n  - name: US_MARKET\n    title: a market\n    stooq_id: 580\n    calendar: XNYS\n")
    monkeypatch.setenv("MARKET_ASSETS_INDICES_FILE", str(indices))
    pages = tmp_path / "pages"
    pages.mkdir()
    first = (saved_files / "pages" / "NDX.html").read_text()
    (pages / "us_market.html").write_text(first)

    with StooqFiles(pages) as files, pytest.raises(StooqFileMissing) as caught:
        files.composition("US_MARKET")
    assert "save https://stooq.com/t/?i=580&l=2 as US_MARKET_2.html" in str(caught.value)

    (pages / "us_market_2.html").write_text((saved_files / "pages" / "ndx_2.html").read_text())
    with StooqFiles(pages) as files:
        assert files.composition("US_MARKET").equals(expected)


def test_a_page_that_is_not_a_composition_names_the_file(tmp_path):
    (tmp_path / "HSI.html").write_text("<html><body><p>Checking your browser (proof-of-work)</p></body></html>")

    with StooqFiles(tmp_path) as files, pytest.raises(StooqFileError) as caught:
        files.composition("HSI")

    assert str(caught.value).startswith(
        f"index HSI: Stooq answered with its browser check (a proof-of-work page) (file {tmp_path / 'HSI.html'})"
    )


# Real recorded Stooq downloads (../shared/fixtures), when present.

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"recorded Stooq files not found at {FIXTURES}")


def _as_bulk_member(symbol: str, csv_text: str) -> str:
    """A recorded `/q/d/l/` CSV rewritten in the bulk format, cell for cell (a row without its
    volume gets an empty `<VOL>`)."""
    rows = [line.split(",") for line in csv_text.splitlines()[1:] if line.strip()]
    cells = [(row[0].replace("-", ""), ",".join(row[1:] + [""] * (6 - len(row)))) for row in rows]
    return _bulk(*(f"{symbol},D,{day},000000,{values},0" for day, values in cells))


@needs_fixtures
def test_recorded_files_read_as_saved_csvs_and_as_bulk_members(tmp_path):
    for name in ("aapl_us_d.csv", "brk-a_us_d.csv", "^dji_d.csv"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    msft = (FIXTURES / "msft_us_d.csv").read_text()
    _archive_of(tmp_path, {"MSFT.US": _as_bulk_member("MSFT.US", msft)})
    session = pd.Timestamp("2023-03-17")

    with StooqFiles(tmp_path) as files:
        aapl = files.daily_history("AAPL.US", session)
        brk = files.daily_history("brk-a.us", session)
        dji = files.daily_history("^DJI", pd.Timestamp("2022-12-30"))
        from_bulk = files.daily_history("msft.us", pd.Timestamp("2020-06-30"))

    expected = parse_history_csv((FIXTURES / "aapl_us_d.csv").read_text(), "AAPL.US", "file")
    pd.testing.assert_frame_equal(aapl, expected)
    dji_file = parse_history_csv((FIXTURES / "^dji_d.csv").read_text(), "^DJI", "file")
    assert brk["close"].max() > 400_000
    pd.testing.assert_frame_equal(dji, dji_file)  # the whole file, past the session asked for
    pd.testing.assert_frame_equal(from_bulk, parse_history_csv(msft, "MSFT.US", "file"))
