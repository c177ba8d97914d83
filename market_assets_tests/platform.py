"""The platform of an end-to-end test: a fresh Dagster instance in a temporary `DAGSTER_HOME`
holding the project's `dagster.yaml`, its data root, and the Stooq-compatible server the source
points at. `conftest.py` gives every test one (`platform`, `platform_factory`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from market_assets import definitions
from market_assets.lake.store import ParquetStore
from stooq_server import StooqServer

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Platform:
    """The instance, the lake and the server of a test; `env` holds the environment they run in."""

    instance: dg.DagsterInstance
    store: ParquetStore
    server: StooqServer
    env: dict[str, str]

    def job(self, name: str) -> dg.JobDefinition:
        """A job of the code location's definitions, built with this platform's environment."""
        return definitions.defs().resolve_job_def(name)

    def dagster(self, *args: str) -> subprocess.CompletedProcess:
        """The `dagster` command of this environment with `args`, as CI and the daemon's run processes call it."""
        executable = Path(sys.executable).with_name("dagster")
        return subprocess.run([str(executable), *args], capture_output=True, text=True, env=self.env, timeout=300)


@contextmanager
def open_platform(folder: Path, monkeypatch: pytest.MonkeyPatch, server: StooqServer, **env: str) -> Iterator[Platform]:
    """A platform under `folder` against `server`, with `env` set besides its own variables."""
    home, lake = folder / "dagster_home", folder / "lake"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    env = {"DAGSTER_HOME": str(home), "MARKET_ASSETS_DATA_ROOT": str(lake), "STOOQ_BASE_URL": server.url, **env}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.get() as instance:
        yield Platform(instance, ParquetStore(str(lake)), server, {**os.environ, **env})
