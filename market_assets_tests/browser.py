"""The UI of an end-to-end test: `dagster dev` on a free loopback port and Debian's Chromium,
headless, driven by Playwright (`test_ui.py`, `test_another_exchange.py`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, Playwright, expect

from market_assets.cli.ui import dagster_dev_argv
from market_assets_tests.polling import wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 240_000
"""Longest wait for anything the UI shows: runs and page loads share two cores with other work."""


def require_chromium() -> Path:
    """Chromium's path; without it the test fails in CI (which installs it) and is skipped elsewhere."""
    if not CHROMIUM.is_file():
        message = f"{CHROMIUM} not found (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_dagster_dev(home: Path, env: dict[str, str], log_path: Path) -> Iterator[str]:
    """`dagster dev` on the project's workspace with `env`, its instance at `home`, until the block
    ends: yields its URL once it serves, its output in `log_path`."""
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            dagster_dev_argv(port),
            cwd=home,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _serving(url, process, log_path), WAIT_MS / 1000, f"dagster dev at {url}", 0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _serving(url: str, process: subprocess.Popen, log: Path) -> bool:
    if process.poll() is not None:
        pytest.fail(f"dagster dev exited with {process.returncode}:\n{log.read_text()[-3000:]}")
    try:
        return requests.get(f"{url}/server_info", timeout=5).ok
    except requests.ConnectionError:
        return False


def new_page(playwright: Playwright, chromium: Path, height: int = 1000) -> Page:
    """A page of a fresh headless Chromium (closed with the Playwright session)."""
    browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1600, "height": height})
    page.set_default_timeout(WAIT_MS)
    return page


def expect_listed(page: Page, url: str, names: tuple[str, ...], screenshot: Path) -> None:
    """Open the code location's `url` (its jobs or schedules page) and expect each of `names` on it."""
    page.goto(url, wait_until="domcontentloaded")
    for name in names:
        expect(page.get_by_text(name, exact=True).first).to_be_visible()
    page.screenshot(path=screenshot, full_page=True)
