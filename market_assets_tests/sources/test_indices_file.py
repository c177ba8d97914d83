"""The followed indices from a YAML file: the shipped one gives DJI, NDX and HSI as they have always
been; another adds an index on any exchange; a file that cannot be used is refused, naming the file,
the entry and what is wrong, and the code location does not load."""

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from market_assets.sources.indices import (
    DEFAULT_FILE,
    IndicesFileError,
    StockIndex,
    exchange_of,
    followed_exchanges,
    followed_indices,
    get_index,
    load_indices,
    publication_delay,
)
from market_assets_tests.conftest import PROJECT_ROOT

VENV_BIN = Path(sys.executable).parent

WITH_WIG20 = """\
indices:
  - {name: DJI, title: Dow Jones Industrial Average, stooq_id: 578, calendar: XNYS}
  - {name: NDX, title: Nasdaq-100, stooq_id: 580, calendar: XNYS}
  - {name: HSI, title: Hang Seng Index, stooq_id: 616, calendar: XHKG}
  - {name: WIG20, stooq_id: 9020, calendar: XWAR}
"""


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "indices.yaml"
    path.write_text(text)
    return path


def test_the_shipped_file_follows_dji_ndx_and_hsi(monkeypatch):
    monkeypatch.delenv("MARKET_ASSETS_INDICES_FILE", raising=False)

    assert list(followed_indices().values()) == [
        StockIndex("DJI", "Dow Jones Industrial Average", 578, "XNYS", ".US", "^DJI"),
        StockIndex("NDX", "Nasdaq-100", 580, "XNYS", ".US", "^NDX"),
        StockIndex("HSI", "Hang Seng Index", 616, "XHKG", ".HK", "^HSI"),
    ]
    assert followed_exchanges() == ("XHKG", "XNYS")
    assert (exchange_of("AAPL.US"), exchange_of("0005.HK")) == ("XNYS", "XHKG")
    assert load_indices(DEFAULT_FILE) is followed_indices()


def test_a_file_adds_an_index_on_another_exchange(monkeypatch, tmp_path):
    monkeypatch.setenv("MARKET_ASSETS_INDICES_FILE", str(_file(tmp_path, WITH_WIG20)))

    wig20 = get_index("wig20")
    assert wig20 == StockIndex("WIG20", "WIG20", 9020, "XWAR", "", "^WIG20")
    assert followed_exchanges() == ("XHKG", "XNYS", "XWAR")
    # Polish symbols have no suffix on Stooq: a symbol with none of the others' suffixes is Warsaw's.
    assert [exchange_of(symbol) for symbol in ("PKN", "AAPL.US", "0005.HK")] == ["XWAR", "XNYS", "XHKG"]


def test_an_exchange_is_loaded_after_the_longest_delay_of_its_indices(monkeypatch, tmp_path):
    """An index's own publication delay wins over the setting; the indices of one exchange share
    its schedule's ticks, so the exchange waits for the latest of them."""
    text = WITH_WIG20.replace("calendar: XWAR}", "calendar: XWAR, publication_delay_minutes: 90}")
    monkeypatch.setenv("MARKET_ASSETS_INDICES_FILE", str(_file(tmp_path, text)))
    monkeypatch.setenv("MARKET_ASSETS_CLOSE_DELAY_MINUTES", "XNYS=20,XHKG=45")

    assert [publication_delay(code) / timedelta(minutes=1) for code in ("XNYS", "XHKG", "XWAR")] == [20, 45, 90]
    _file(tmp_path, text.replace("calendar: XNYS}", "calendar: XNYS, publication_delay_minutes: 10}", 1))
    load_indices.cache_clear()
    assert publication_delay("XNYS") == timedelta(minutes=20)  # NDX has none of its own: the setting's 20
    _file(tmp_path, text.replace("calendar: XNYS}", "calendar: XNYS, publication_delay_minutes: 50}"))
    load_indices.cache_clear()
    assert publication_delay("XNYS") == timedelta(minutes=50)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("indices: [{name: SPX, stooq_id: 1, calendar: XNY}]", "index 1 (SPX): calendar 'XNY' is not an exchange_calendars code"),
        (
            "indices: [{name: DJI, stooq_id: 578, calendar: XNYS}, {name: DJI, stooq_id: 579, calendar: XNYS}]",
            "index 2 (DJI): the name DJI is listed twice",
        ),
        (
            "indices: [{name: DJI, stooq_id: 578, calendar: XNYS}, {name: SPX, stooq_id: 578, calendar: XNYS}]",
            "index 2 (SPX): stooq_id 578 is DJI's too",
        ),
        ("indices: [{name: SPX, calendar: XNYS}]", "index 1 (SPX): missing stooq_id"),
        ("indices: [{name: S|P, stooq_id: 1, calendar: XNYS}]", "index 1 (S|P): name 'S|P' is not a valid partition key"),
        ("indices: [{name: spx, stooq_id: 1, calendar: XNYS}]", "index 1 (spx): name 'spx' is not a valid partition key"),
        ("indices: [{name: SPX, stooq_id: one, calendar: XNYS}]", "index 1 (SPX): stooq_id 'one' is not the positive number"),
        (
            "indices: [{name: SPX, stooq_id: 1, calendar: XNYS, delay: 30}]",
            "index 1 (SPX): unknown field delay (known: calendar, name, publication_delay_minutes, stooq_id, "
            "stooq_symbol, symbol_suffix, title)",
        ),
        (
            "indices: [{name: SPX, stooq_id: 1, calendar: XNYS, publication_delay_minutes: -5}]",
            "index 1 (SPX): publication_delay_minutes -5 is not a number of minutes >= 0",
        ),
        (
            "indices: [{name: SPX, stooq_id: 1, calendar: XNYS}, {name: TSX, stooq_id: 2, calendar: XTSE}]",
            "index 2 (TSX): no symbol_suffix known for XTSE",
        ),
        (
            "indices: [{name: SPX, stooq_id: 1, calendar: XNYS}, {name: TSX, stooq_id: 2, calendar: XTSE, symbol_suffix: .us}]",
            "index 2 (TSX): symbol_suffix '.US' is SPX's too, on XNYS",
        ),
        ("indices: []", "expected a list of indices under `indices:`"),
        ("- DJI", "expected a list of indices under `indices:`"),
        ("indices: [DJI]", "index 1: expected name, stooq_id and calendar, found 'DJI'"),
        ("indices: [{name: DJI", "not YAML"),
    ],
    ids=[
        "unknown-calendar",
        "duplicate-name",
        "duplicate-page-id",
        "missing-field",
        "name-with-bar",
        "name-in-lower-case",
        "page-id-not-a-number",
        "unknown-field",
        "negative-delay",
        "calendar-without-suffix",
        "suffix-of-two-exchanges",
        "empty-list",
        "not-a-mapping",
        "entry-not-a-mapping",
        "not-yaml",
    ],
)
def test_a_bad_file_is_an_error_naming_the_file_the_entry_and_the_problem(tmp_path, text, says):
    path = _file(tmp_path, text)

    with pytest.raises(IndicesFileError, match=re.escape(f"{path}: ") + ".*" + re.escape(says)):
        load_indices(path)


def test_a_missing_file_names_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("MARKET_ASSETS_INDICES_FILE", str(tmp_path / "nowhere.yaml"))

    with pytest.raises(IndicesFileError, match=re.escape(f"MARKET_ASSETS_INDICES_FILE: cannot read {tmp_path}/nowhere.yaml")):
        followed_indices()


def _validate(platform, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "dagster"), "definitions", "validate", "-m", "market_assets"],
        capture_output=True,
        text=True,
        env={**platform.env, "MARKET_ASSETS_INDICES_FILE": str(path)},
        cwd=PROJECT_ROOT,
        timeout=300,
    )


def test_the_code_location_follows_the_file(platform, tmp_path):
    """A fourth index gets its close job and its index partition, and its exchange its schedule,
    when the code location loads; a bad file stops it from loading, naming the entry."""
    path = _file(tmp_path, WITH_WIG20)
    probe = (
        "from market_assets.definitions import defs\n"
        "from market_assets.defs.partitions import index_partitions\n"
        "d = defs()\n"
        "print(sorted(job.name for job in d.resolve_all_job_defs() if job.name.endswith('_close')))\n"
        "print(sorted(s.name for s in d.schedules if s.name.endswith('_close')))\n"
        "print(index_partitions.get_partition_keys())\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=300,
        env={**platform.env, "MARKET_ASSETS_INDICES_FILE": str(path)},
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.splitlines() == [
        "['dji_close', 'hsi_close', 'ndx_close', 'wig20_close']",
        "['xhkg_close', 'xnys_close', 'xwar_close']",
        "['DJI', 'NDX', 'HSI', 'WIG20']",
    ]
    assert _validate(platform, path).returncode == 0

    _file(tmp_path, WITH_WIG20.replace("XWAR", "XWA"))
    refused = _validate(platform, path)
    assert refused.returncode != 0
    assert f"{path}: index 4 (WIG20): calendar 'XWA' is not an exchange_calendars code" in refused.stdout + refused.stderr
