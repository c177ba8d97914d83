"""`python -m market_assets ui`: stopped by SIGTERM, it leaves no process of `dagster dev` behind."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from market_assets_tests.browser import free_port
from market_assets_tests.platform import PROJECT_ROOT
from market_assets_tests.polling import wait_for


def _processes_in(folder: Path) -> dict[int, str]:
    """The command line of each process whose working directory is `folder`, by its id."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd")) == folder:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def test_sigterm_stops_the_ui_and_everything_it_started(tmp_path, synthetic_universe):
    workdir = tmp_path / "demo"
    workdir.mkdir()
    (workdir / "stooq-synthetic").symlink_to(synthetic_universe.data_dir)
    home = workdir / "dagster_home"
    log = tmp_path / "ui.log"
    with open(log, "wb") as output:
        ui = subprocess.Popen(
            [sys.executable, "-m", "market_assets", "ui", "--workdir", str(workdir), "--port", str(free_port())],
            cwd=PROJECT_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "Dagster UI at" in log.read_text(), 300, "the UI to serve", 0.5)
        started = [command[:100] for command in _processes_in(home).values()]
        for part in ("dagster dev", "dagster_webserver", "dagster._daemon run", "dagster api grpc"):
            assert any(part in command for command in started), (part, started)

        ui.send_signal(signal.SIGTERM)
        ui.wait(timeout=90)  # raises when `ui` has not ended by then

        wait_for(lambda: not _processes_in(home), 30, "every process of dagster dev to end", 0.5)
        assert "Traceback" not in log.read_text()
    finally:
        if ui.poll() is None:
            ui.kill()
        for pid in _processes_in(home):
            os.kill(pid, signal.SIGKILL)
