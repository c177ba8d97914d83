"""What a new user's mistakes in the settings give on the command line: one line on stderr naming
the setting and the fix, and a non-zero exit, from real `python -m market_assets` processes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pandas as pd
import pytest

from market_assets.cli.close import close_index
from market_assets_tests.object_store import CREDENTIALS, s3_server
from market_assets_tests.platform import PROJECT_ROOT
from market_assets_tests.universe import last_session

FIX = "set MARKET_ASSETS_DATA_ROOT to the data root that `python -m market_assets demo` or a close wrote, e.g. ./demo/lake"


def _run(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "market_assets", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def _refused(result: subprocess.CompletedProcess) -> str:
    """The one line a refused command printed on stderr."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(result.stderr.splitlines()) == 1, result.stderr[-3000:]
    return result.stderr.strip()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a fresh instance (no materializations) and a data root that does not exist."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    return {**os.environ, "DAGSTER_HOME": str(home), "MARKET_ASSETS_DATA_ROOT": str(tmp_path / "nowhere")}


@pytest.mark.parametrize(
    "command",
    [
        ["verify", "DJI"],
        ["compact", "--dry-run"],
        ["migrate", "--dry-run"],
        ["sql", "SELECT 1"],
        ["read", "daily", "--index", "DJI"],
    ],
    ids=["verify", "compact", "migrate", "sql", "read"],
)
def test_a_data_root_without_a_lake_is_refused_naming_it(env, tmp_path, command):
    refused = _run(env, *command)

    assert _refused(refused) == f"no lake at {tmp_path / 'nowhere'} (MARKET_ASSETS_DATA_ROOT): {FIX}"
    assert refused.stdout == ""


def test_a_folder_that_holds_no_lake_is_refused_and_an_empty_one_is_a_lake_with_nothing_stored(env, tmp_path):
    """The demo's folder instead of its lake is refused; an empty folder is a lake not written yet."""
    demo = tmp_path / "demo"
    (demo / "lake").mkdir(parents=True)

    refused = _run({**env, "MARKET_ASSETS_DATA_ROOT": str(demo)}, "compact", "--dry-run")
    empty = _run({**env, "MARKET_ASSETS_DATA_ROOT": str(demo / "lake")}, "compact", "--dry-run")
    unset = _run({key: value for key, value in env.items() if key != "MARKET_ASSETS_DATA_ROOT"}, "sql", "SELECT 1", cwd=tmp_path)

    assert _refused(refused) == (
        f"no lake at {demo} (MARKET_ASSETS_DATA_ROOT): it holds no index_composition, daily_bars or other folder of a lake: {FIX}"
    )
    assert empty.returncode == 0 and empty.stdout.startswith(f"lake at {demo / 'lake'}:"), empty.stderr
    assert _refused(unset) == f"no lake at {tmp_path / 'data'} (MARKET_ASSETS_DATA_ROOT is not set: the default, data): {FIX}"


def test_an_object_store_root_with_nothing_under_it_is_refused(env, monkeypatch):
    with s3_server() as endpoint:
        store_env = {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}
        for name, value in store_env.items():
            monkeypatch.setenv(name, value)
        # Put with boto3, not through a store in this process: s3fs would keep its filesystem, bound
        # to this server's endpoint, for every later s3:// root of the test session.
        composition = io.BytesIO()
        pd.DataFrame({"symbol": ["AAPL.US"]}).to_parquet(composition)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="lake")
        s3.put_object(Bucket="lake", Key="root/index_composition/session=2026-11-20/DJI.parquet", Body=composition.getvalue())

        refused = _run({**env, **store_env, "MARKET_ASSETS_DATA_ROOT": "s3://lake/typo"}, "sql", "SELECT 1")
        read = _run(
            {**env, **store_env, "MARKET_ASSETS_DATA_ROOT": "s3://lake/root"}, "sql", "SELECT symbol FROM index_composition"
        )

    assert _refused(refused) == f"no lake at s3://lake/typo (MARKET_ASSETS_DATA_ROOT): {FIX}"
    assert read.returncode == 0 and "AAPL.US" in read.stdout, read.stderr[-3000:]


def test_a_broken_indices_file_is_one_line_and_leaves_help_and_the_lake_readers_working(env, tmp_path):
    broken = tmp_path / "indices.yaml"
    broken.write_text("indices:\n  - {name: DJI, stooq_id: 578, calendar: XNSY}\n")
    lake = tmp_path / "lake"
    lake.mkdir()
    env = {**env, "MARKET_ASSETS_INDICES_FILE": str(broken), "MARKET_ASSETS_DATA_ROOT": str(lake)}

    helped = _run(env, "--help")
    read = _run(env, "sql", "SELECT 42 AS answer")
    closed, planned = _run(env, "close"), _run(env, "plan", "DJI")
    unreadable = _run({**env, "MARKET_ASSETS_INDICES_FILE": str(tmp_path / "indices.yml")}, "verify")

    assert helped.returncode == 0 and "python -m market_assets close DJI NDX" in helped.stdout, helped.stderr[-3000:]
    assert read.returncode == 0 and "42" in read.stdout, read.stderr[-3000:]
    says = f"{broken}: index 1 (DJI): calendar 'XNSY' is not an exchange_calendars code (for example XNYS, XHKG, XWAR)"
    assert _refused(closed) == says and _refused(planned) == says
    assert _refused(unreadable) == (
        f"MARKET_ASSETS_INDICES_FILE: cannot read {tmp_path / 'indices.yml'} (No such file or directory): "
        "set it to the YAML file of the followed indices, or unset it for the shipped DJI, NDX, HSI"
    )


def test_an_indices_file_that_is_not_yaml_is_one_line(env, tmp_path):
    broken = tmp_path / "indices.yaml"
    broken.write_text("indices: [{name: DJI\n")

    planned = _run({**env, "MARKET_ASSETS_INDICES_FILE": str(broken)}, "plan")

    assert _refused(planned) == f"{broken}: not YAML, line 2, column 1: expected ',' or '}}', but got '<stream end>'"


@pytest.mark.parametrize(
    "value, says",
    [
        (
            "abc",
            "MARKET_ASSETS_PARTITION_DAYS='abc' is not a whole number (days of sessions the date partitions cover, "
            "back to that week's Monday): set a whole number, or unset it for the default, 14",
        ),
        ("3", "MARKET_ASSETS_PARTITION_DAYS='3': must be at least 7 days, or unset it for the default, 14"),
    ],
)
def test_a_bad_partition_window_is_one_line(env, value, says):
    planned = _run({**env, "MARKET_ASSETS_PARTITION_DAYS": value}, "plan", "DJI")

    assert _refused(planned) == says


def test_a_bad_resource_setting_is_one_line_not_dagsters_config_error(env):
    planned = _run({**env, "MARKET_ASSETS_MAX_SYMBOLS_PER_RUN": "many"}, "plan", "DJI")

    assert _refused(planned) == (
        "MARKET_ASSETS_MAX_SYMBOLS_PER_RUN='many' is not a whole number (the most symbols one close run loads): "
        "set a whole number, or unset it for the default, 1000"
    )


def test_an_instance_needs_dagster_home(env):
    closed = _run({key: value for key, value in env.items() if key != "DAGSTER_HOME"}, "close", "DJI")
    relative = _run({**env, "DAGSTER_HOME": "dagster_home"}, "plan", "DJI")

    fix = "set DAGSTER_HOME to the absolute path of the instance's folder, e.g. $PWD/demo/dagster_home"
    assert _refused(closed) == f"DAGSTER_HOME is not set: {fix}"
    assert _refused(relative) == f"DAGSTER_HOME=dagster_home is not absolute: {fix}"


@pytest.mark.parametrize("command", ["close", "plan", "verify"])
def test_a_session_before_the_exchanges_calendar_is_refused_by_the_partition_window(platform, command):
    """exchange_calendars covers fewer years than a date can name: the window is asked first."""
    Path(platform.env["MARKET_ASSETS_DATA_ROOT"]).mkdir(parents=True, exist_ok=True)

    refused = _run(platform.env, command, "DJI", "--session", "1999-01-01")

    assert refused.returncode != 0
    assert "index DJI: 1999-01-01 is before the partition window, which starts on " in refused.stderr, refused.stderr
    assert "receieved" not in refused.stderr and "Traceback" not in refused.stderr
    assert platform.server.stats()["total"] == 0


def test_an_instance_that_records_another_lake_is_refused_before_anything(platform, synthetic_universe, tmp_path):
    """The demo's instance with the data root left unset: refused naming both roots, nothing
    written under the wrong one, nothing asked of the source."""
    session = last_session(synthetic_universe, "XNYS")
    close_index(platform.instance, "DJI", session)
    platform.server.reset_stats()
    lake, elsewhere = platform.env["MARKET_ASSETS_DATA_ROOT"], tmp_path / "elsewhere"
    elsewhere.mkdir()
    unset = {key: value for key, value in platform.env.items() if key != "MARKET_ASSETS_DATA_ROOT"}

    results = {
        command: _run(unset, command, "DJI", "--session", session, cwd=elsewhere) for command in ("close", "plan", "verify")
    }

    home = platform.env["DAGSTER_HOME"]
    for command, result in results.items():
        assert _refused(result) == (
            f"the instance at {home} (DAGSTER_HOME) records its materializations under {lake}, not under "
            f"{elsewhere / 'data'} (MARKET_ASSETS_DATA_ROOT is not set: the default, data): "
            f"set MARKET_ASSETS_DATA_ROOT={lake}, or DAGSTER_HOME to the instance of {elsewhere / 'data'}"
        ), command
    assert list(elsewhere.iterdir()) == [] and platform.server.stats()["total"] == 0
    planned = _run(platform.env, "plan", "DJI", "--session", session)
    assert planned.returncode == 0 and planned.stdout.startswith("# nothing to run"), planned.stderr[-3000:]


def test_a_plan_whose_composition_file_is_gone_fails_in_one_line(platform, synthetic_universe):
    session = last_session(synthetic_universe, "XNYS")
    close_index(platform.instance, "DJI", session)
    path = platform.store.path("index_composition", f"{session}|DJI")
    os.remove(path)

    planned = _run(platform.env, "plan", "DJI", "--session", session)

    assert _refused(planned) == (
        f"plan: index_composition[{session}|DJI]: nothing stored at {path}, though the instance records it: "
        f"load it again with `python -m market_assets close DJI --session {session} --force`"
    )
    assert planned.stdout == ""


def test_help_and_the_lake_only_commands_load_no_dagster(tmp_path):
    """`--help`, `read`, `factors`, `sql` and the dry runs of `compact` and `migrate`, on an empty
    lake, each in a process of its own that then says whether Dagster was imported."""
    (tmp_path / "lake").mkdir()
    env = {**os.environ, "MARKET_ASSETS_DATA_ROOT": str(tmp_path / "lake"), "DAGSTER_HOME": str(tmp_path)}
    probe = (
        "import sys\nfrom market_assets.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('dagster loaded:', 'dagster' in sys.modules, file=sys.stderr)"
    )
    commands = [
        ["--help"],
        ["read", "daily", "SYNU001.US"],
        ["factors", "SYNU001.US"],
        ["sql", "SELECT 1"],
        ["compact", "--dry-run"],
        ["migrate", "--dry-run"],
    ]

    loaded = {
        " ".join(command): subprocess.run(
            [sys.executable, "-c", probe, *command], capture_output=True, text=True, env=env, timeout=300
        ).stderr.splitlines()[-1]
        for command in commands
    }

    assert loaded == {" ".join(command): "dagster loaded: False" for command in commands}
