"""`python -m market_assets ui`: the Dagster UI on the demo's instance and lake, with the demo's
synthetic data served on loopback, so that materializing from the browser works at once.

`dagster dev` (webserver and daemon) runs in the instance's folder, so the `dagster.yaml` there is
the one in use, until Ctrl-C or SIGTERM, which stop it, everything it started, and the server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from market_assets.cli.demo import PROJECT_ROOT, demo_folders
from stooq_server import StooqServer

READY_SECONDS = 300
"""How long `dagster dev` may take to answer before the command gives up (it loads the code location)."""
STOP_SECONDS = 30
"""How long `dagster dev` may take to shut down its webserver, daemon and code servers."""


def run_ui(workdir: Path, port: int) -> int:
    """Serve the demo's data set under `workdir` and run `dagster dev` on its instance at `port`;
    `dagster dev`'s exit status. Ctrl-C or SIGTERM stops `dagster dev` and every process it started."""
    folders = demo_folders(workdir)
    url = f"http://127.0.0.1:{port}"
    with StooqServer(folders.source) as server:
        print(f"Synthetic Stooq-compatible server at {server.url}; Dagster instance in {folders.home}", flush=True)
        # A process group of its own: the webserver, the daemon and the code servers are stopped together.
        process = subprocess.Popen(
            dagster_dev_argv(port),
            cwd=folders.home,
            env={**os.environ, **folders.environment(server.url)},
            start_new_session=True,
        )
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            if _ready(url, process):
                print(f"Dagster UI at {url} (Ctrl-C stops it)", flush=True)
            return process.wait()
        except KeyboardInterrupt:
            return _stop(process)
        finally:
            signal.signal(signal.SIGTERM, previous)
            if process.poll() is None:
                _stop(process)


def dagster_dev_argv(port: int) -> list[str]:
    """`dagster dev` on the project's workspace, serving the UI at 127.0.0.1:`port`."""
    return [
        str(Path(sys.executable).with_name("dagster")),
        "dev",
        "-w",
        str(PROJECT_ROOT / "workspace.yaml"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop(process: subprocess.Popen) -> int:
    """Stop `dagster dev`'s process group as Ctrl-C in its terminal would, killing what is left
    after `STOP_SECONDS`; its exit status."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()
    finally:
        try:  # the code servers and the daemon's children, once dagster dev itself is gone
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _ready(url: str, process: subprocess.Popen) -> bool:
    """Whether the webserver answers, before `dagster dev` exits or `READY_SECONDS` pass."""
    deadline = time.monotonic() + READY_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/server_info", timeout=5).ok:
                return True
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    if process.poll() is None:
        print(f"dagster dev did not answer at {url} within {READY_SECONDS} s", file=sys.stderr)
    return False
