"""Shared fixtures: one synthetic universe per test session, Stooq-compatible servers over it, and
`platform` (see `platform.py`), a fresh Dagster instance with its data root and source, as every
end-to-end test starts.

Generating the universe takes seconds, so it is done once; servers are cheap, so every test gets
its own, with no faults, no serving date and fresh statistics. The browser tests' screenshots go
to one folder, which the end of pytest's report names.
"""

from __future__ import annotations

import os

# The tests' partition window: three months, so that it holds a day on which one exchange trades
# and the other is closed, which the project's default two to three weeks may not. Set before
# anything loads the partitions, as for a code location (a load setting).
os.environ.setdefault("MARKET_ASSETS_PARTITION_DAYS", "92")
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from market_assets.cli.close import close_index
from market_assets_tests.lake_files import bars_frames
from market_assets_tests.platform import PROJECT_ROOT, Platform, open_platform
from market_assets_tests.universe import last_session
from stooq_server import StooqServer, generate_synthetic
from stooq_server.synthetic import SyntheticUniverse


@pytest.fixture(scope="session")
def synthetic_universe(tmp_path_factory: pytest.TempPathFactory) -> SyntheticUniverse:
    """The default synthetic universe (DJI 30, NDX 100, HSI 82 members), generated once."""
    return generate_synthetic(tmp_path_factory.mktemp("synthetic_stooq"))


@pytest.fixture(scope="session")
def dji_reference(tmp_path_factory: pytest.TempPathFactory, synthetic_universe: SyntheticUniverse) -> dict[str, pd.DataFrame]:
    """Every bars partition of a fault-free DJI close of the universe's last New York session, by
    its path under the data root (`market_assets_tests.lake_files`): what a close under faults
    must store in the end."""
    with pytest.MonkeyPatch.context() as monkeypatch, StooqServer(synthetic_universe.data_dir) as server:
        with open_platform(tmp_path_factory.mktemp("reference"), monkeypatch, server) as platform:
            close_index(platform.instance, "DJI", last_session(synthetic_universe, "XNYS"))
            return bars_frames(platform.store)


@pytest.fixture
def server_factory(synthetic_universe: SyntheticUniverse) -> Iterator[Callable[..., StooqServer]]:
    """Start servers with custom options (`data_dir` defaults to the synthetic universe's)."""
    servers: list[StooqServer] = []

    def start(data_dir: Path | None = None, **options: Any) -> StooqServer:
        server = StooqServer(data_dir or synthetic_universe.data_dir, **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def stooq_server(server_factory: Callable[..., StooqServer]) -> StooqServer:
    """A running server over the synthetic universe, on a free port."""
    return server_factory()


@pytest.fixture
def platform_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_factory: Callable[..., StooqServer]
) -> Iterator[Callable[..., Platform]]:
    """Make the platform of a test: `platform_factory(server=None, **env)`, with a server of its
    own over the synthetic universe unless one is given, and extra environment variables."""
    with ExitStack() as stack:

        def make(server: StooqServer | None = None, **env: str) -> Platform:
            return stack.enter_context(open_platform(tmp_path, monkeypatch, server or server_factory(), **env))

        yield make


@pytest.fixture
def platform(platform_factory: Callable[..., Platform]) -> Platform:
    """The platform against a server over the synthetic universe."""
    return platform_factory()


UI_ARTIFACTS_ENV = "MARKET_ASSETS_UI_ARTIFACTS"
_UI_ARTIFACTS = pytest.StashKey[Path]()


@pytest.fixture(scope="session")
def ui_artifacts(pytestconfig: pytest.Config) -> Path:
    """Where the browser tests save their screenshots: `$MARKET_ASSETS_UI_ARTIFACTS`, else
    `ui-artifacts/` in the project. Screenshots of an earlier run are removed first."""
    folder = Path(os.environ.get(UI_ARTIFACTS_ENV) or PROJECT_ROOT / "ui-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    pytestconfig.stash[_UI_ARTIFACTS] = folder
    return folder


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Name the screenshots folder at the end of the run, so CI's log says where they are."""
    folder = config.stash.get(_UI_ARTIFACTS, None)
    if folder is None:
        return
    shots = sorted(path.name for path in folder.glob("*.png"))
    terminalreporter.write_sep("-", f"UI screenshots: {len(shots)} in {folder}")
    for name in shots:
        terminalreporter.write_line(f"  {name}")
