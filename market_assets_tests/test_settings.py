"""The settings: each read from its variable with a clear error naming it, and each documented."""

import re

import dagster as dg
import pytest

from market_assets import settings
from market_assets.defs.resources import ClosePlanningResource
from market_assets_tests.platform import PROJECT_ROOT


@pytest.mark.parametrize(
    ("setting", "text", "says"),
    [
        (settings.PARTITION_DAYS, "a year", "MARKET_ASSETS_PARTITION_DAYS='a year' is not a whole number"),
        (settings.PARTITION_DAYS, "3", "MARKET_ASSETS_PARTITION_DAYS='3': must be at least 7 days"),
        (settings.HEAD_START, "-5", "MARKET_ASSETS_HEAD_START_SECONDS='-5': must be at least 0 seconds"),
        (settings.SOURCE, "ftp", "MARKET_ASSETS_SOURCE='ftp': choose one of http, files"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(monkeypatch, setting, text, says):
    monkeypatch.setenv(setting.env_var, text)

    with pytest.raises(ValueError, match=re.escape(says)):
        setting.value()


def test_a_setting_left_unset_or_blank_is_its_default(monkeypatch):
    monkeypatch.delenv(settings.PARTITION_DAYS.env_var, raising=False)
    assert settings.PARTITION_DAYS.value() == 14
    monkeypatch.setenv(settings.PARTITION_DAYS.env_var, "  ")
    assert settings.PARTITION_DAYS.value() == 14 and not settings.PARTITION_DAYS.is_set()


def test_the_close_delay_is_one_number_or_one_per_exchange(monkeypatch):
    monkeypatch.setenv(settings.CLOSE_DELAY.env_var, "45")
    assert settings.close_delay("XHKG").total_seconds() == 45 * 60
    monkeypatch.setenv(settings.CLOSE_DELAY.env_var, "XNYS=20, XHKG=50")
    assert [settings.close_delay(code).total_seconds() / 60 for code in ("XNYS", "XHKG", "XTKS")] == [20, 50, 30]
    monkeypatch.setenv(settings.CLOSE_DELAY.env_var, "XNYS=soon")
    with pytest.raises(ValueError, match="MARKET_ASSETS_CLOSE_DELAY_MINUTES: 'soon' is not a number of minutes"):
        settings.close_delay("XNYS")


def test_a_count_bound_to_a_variable_is_checked_when_the_resource_is_set_up(monkeypatch):
    monkeypatch.setenv(settings.MAX_SYMBOLS_PER_RUN.env_var, "0")
    planning = ClosePlanningResource(max_symbols_per_run=dg.EnvVar.int(settings.MAX_SYMBOLS_PER_RUN.env_var))

    with pytest.raises(dg.DagsterResourceFunctionError) as refused:
        with dg.build_resources({"planning": planning}):
            pass

    assert str(refused.value.user_exception) == (
        "max_symbols_per_run (MARKET_ASSETS_MAX_SYMBOLS_PER_RUN=0): must be at least 1 symbol"
    )


def test_the_readme_documents_every_setting_and_no_other():
    readme = (PROJECT_ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `((?:MARKET_ASSETS|STOOQ)_[A-Z_]+)`", table, re.MULTILINE))

    assert documented == {setting.env_var for setting in (*settings.RESOURCE_SETTINGS, *settings.LOAD_SETTINGS)}
