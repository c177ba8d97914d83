"""`python -m market_assets ui`: the Dagster UI on the demo's instance and lake, with the demo's
synthetic data served on loopback, so that materializing from the browser works at once.

`dagster dev` (webserver and daemon) runs in the instance's folder, so the `dagster.yaml` there is
the one in use, until Ctrl-C, which stops it and the server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from market_assets.cli.demo import PROJECT_ROOT, demo_folders
from stooq_server import StooqServer

READY_SECONDS = 300
"""How long `dagster dev` may take to answer before the command gives up (it loads the code location)."""


def run_ui(workdir: Path, port: int) -> int:
    """Serve the demo's data set under `workdir` and run `dagster dev` on its instance at `port`;
    `dagster dev`'s exit status."""
    folders = demo_folders(workdir)
    url = f"http://127.0.0.1:{port}"
    with StooqServer(folders.source) as server:
        print(f"Synthetic Stooq-compatible server at {server.url}; Dagster instance in {folders.home}", flush=True)
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster")), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=folders.home,
            env={**os.environ, **folders.environment(server.url)},
        )
        try:
            if _ready(url, process):
                print(f"Dagster UI at {url} (Ctrl-C stops it)", flush=True)
            return process.wait()
        except KeyboardInterrupt:  # the terminal sent it to dagster dev too, which shuts down
            return process.wait()


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
