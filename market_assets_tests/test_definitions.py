"""The code location as Dagster loads it: lazily from the package, with its resources bound to the
environment, and run by the real daemon."""

import math
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from market_assets.definitions import defs
from market_assets.domain.exchange_sessions import calendar, latest_closed_session
from market_assets.settings import CATCH_UP_SESSIONS, CLOSE_DELAY
from market_assets_tests.conftest import PROJECT_ROOT
from market_assets_tests.polling import wait_for

VENV_BIN = Path(sys.executable).parent


def test_importing_the_layers_builds_no_definitions():
    """The sources, the lake, the domain and the settings import without Dagster or the definitions;
    the package's code location is built on first use only."""
    probe = (
        "import sys\n"
        "import market_assets, market_assets.sources, market_assets.lake, market_assets.settings\n"
        "import market_assets.domain.candles, market_assets.domain.quality_rules\n"
        "import market_assets.domain.adjustment_detection, market_assets.domain.membership_spells\n"
        "import market_assets.domain.close_timing, stooq_server\n"
        "print(sorted(m for m in ('dagster', 'market_assets.definitions', 'market_assets.defs') if m in sys.modules))\n"
        "market_assets.code_location\n"
        "print('market_assets.definitions' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT)

    assert out.stdout.split("\n")[:2] == ["[]", "True"], out.stderr


@pytest.mark.parametrize("target", [["-m", "market_assets"], ["-w", "workspace.yaml"]])
def test_dagster_loads_the_code_location_from_the_package_and_the_workspace(platform, target):
    validated = subprocess.run(
        [str(VENV_BIN / "dagster"), "definitions", "validate", *target],
        capture_output=True,
        text=True,
        env=platform.env,
        cwd=PROJECT_ROOT,
        timeout=300,
    )

    output = validated.stdout + validated.stderr
    assert validated.returncode == 0, output[-3000:]
    assert "Validation successful for code location market_assets" in output


def test_definitions_load_as_a_code_location():
    dg.Definitions.validate_loadable(defs())

    assert {job.name for job in defs().resolve_all_job_defs()} >= {
        "index_compositions",
        "refresh_membership",
        "dji_close",
        "ndx_close",
        "hsi_close",
        "verify_bars",
        "compact_lake",
        "refresh_partition_status",
        "prune_instance",
    }


def test_each_domain_builds_its_own_definitions_and_the_code_location_merges_them():
    from market_assets.defs.alerts.definitions import alerts_definitions
    from market_assets.defs.bars.definitions import bars_definitions
    from market_assets.defs.compositions.definitions import compositions_definitions
    from market_assets.defs.maintenance.definitions import maintenance_definitions

    domains = [compositions_definitions(), bars_definitions(), maintenance_definitions(), alerts_definitions()]
    location = defs().get_repository_def()

    owned = [
        tuple({item.name for item in items or []} for items in (domain.jobs, domain.schedules, domain.sensors))
        for domain in domains
    ]
    assert owned == [
        ({"index_compositions", "refresh_membership"}, {"xnys_close", "xhkg_close"}, set()),
        ({"dji_close", "ndx_close", "hsi_close", "verify_bars"}, set(), {"close_bars"}),
        (
            {"compact_lake", "prune_instance", "refresh_partition_status"},
            {"compact_lake_daily", "prune_instance_daily"},
            {"abandoned_runs", "partition_status_cache"},
        ),
        (set(), set(), {"close_failure_alerts", "freshness_alerts"}),
    ]
    domain_jobs = {job.name for domain in domains for job in domain.jobs or []}
    assert domain_jobs == {job.name for job in location.get_all_jobs()} - {"__ASSET_JOB"}
    assert {sensor.name for domain in domains for sensor in domain.sensors or []} == {s.name for s in location.sensor_defs}
    assert set(location.get_top_level_resources()) == {
        "stooq",
        "lake",
        "io_manager",
        "planning",
        "quality",
        "retention",
        "alerts",
    }


def test_the_graph_tells_the_exchanges_apart_and_says_what_blocks():
    graph = defs().get_repository_def().asset_graph
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    blocking = {key.asset_key.to_user_string(): graph.get_check_spec(key).blocking for key in graph.asset_check_keys}

    assert groups["xnys/daily_bars"] == groups["xnys/monthly_bars"] == "xnys_bars"
    assert groups["xhkg/daily_bars"] == groups["xhkg/adjustment_events"] == "xhkg_bars"
    assert groups["index_composition"] == "compositions"
    # A failed error rule of a daily snapshot keeps its weekly and monthly bars from being built.
    assert blocking["xnys/daily_bars"] and blocking["xhkg/daily_bars"]
    assert not blocking["xnys/weekly_bars"] and not blocking["xnys/monthly_bars"]


def _launchpad_default(resource: str) -> dict:
    """The config of `resource` that the launchpad of a close job starts from."""
    schema = defs().resolve_job_def("dji_close").run_config_schema.config_type
    return schema.fields["resources"].config_type.fields[resource].config_type.fields["config"].default_value


def test_the_launchpad_shows_each_setting_as_its_variable_or_its_default(monkeypatch):
    monkeypatch.delenv("STOOQ_BASE_URL", raising=False)
    monkeypatch.delenv("MARKET_ASSETS_DATA_ROOT", raising=False)
    monkeypatch.setenv("STOOQ_API_KEY", "a secret")

    stooq, lake = _launchpad_default("stooq"), _launchpad_default("lake")

    assert stooq["base_url"] == "https://stooq.com" and lake["root"] == "data"
    assert stooq["api_key"] == {"env": "STOOQ_API_KEY"}  # the secret's name, never its value
    monkeypatch.setenv("STOOQ_BASE_URL", "http://127.0.0.1:8765")
    monkeypatch.setenv("MARKET_ASSETS_DATA_ROOT", "s3://bucket/lake")
    assert _launchpad_default("stooq")["base_url"] == {"env": "STOOQ_BASE_URL"}
    assert _launchpad_default("lake")["root"] == {"env": "MARKET_ASSETS_DATA_ROOT"}


@pytest.mark.timeout(420)
def test_daemon_runs_the_schedule_and_the_sensor(platform_factory, synthetic_universe):
    """The real daemon ticks the Hong Kong schedule a minute from now and loads the session."""
    now = pd.Timestamp.now(tz="UTC")
    session = latest_closed_session("XHKG", now)
    close = calendar("XHKG").session_close(session)
    # A delay that puts the next tick about 90 s from now, with this session due at that tick.
    delay = math.ceil((now + pd.Timedelta(seconds=90) - close) / pd.Timedelta(minutes=1))
    platform = platform_factory(**{CLOSE_DELAY.env_var: str(delay), CATCH_UP_SESSIONS.env_var: "1"})
    daemon = subprocess.Popen(
        [str(VENV_BIN / "dagster-daemon"), "run", "-m", "market_assets"],
        env=platform.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def succeeded(job: str) -> list[dg.DagsterRun]:
            return platform.instance.get_runs(dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.SUCCESS]))

        composition = wait_for(lambda: succeeded("index_compositions"), 240, "the schedule's run", interval=2)
        bars = wait_for(lambda: succeeded("hsi_close"), 150, "the sensor's bars run", interval=2)
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)

    assert composition[0].tags["dagster/schedule_name"] == "xhkg_close"
    assert composition[0].tags["dagster/partition"] == f"{session:%Y-%m-%d}|HSI"
    assert bars[0].tags["dagster/sensor_name"] == "close_bars"
    symbol = synthetic_universe.members("HSI", session)[0]
    assert platform.store.read("monthly_bars", f"{session:%Y-%m-%d}|{symbol}")["last_session"].max() == session
