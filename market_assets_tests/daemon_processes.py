"""The processes of a close through the daemon, found from the `dagster-daemon` started for it:
the code servers it starts (`dagster api grpc`) and the run workers they start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from market_assets_tests.polling import wait_for

VENV_BIN = Path(sys.executable).parent


def start_daemon(env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
    """`dagster-daemon run -m market_assets` in a process group of its own (stop it with
    `os.killpg(daemon.pid, ...)`)."""
    return subprocess.Popen(
        [str(VENV_BIN / "dagster-daemon"), "run", "-m", "market_assets"],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, whole command line) of each child process of `pid`."""
    listed = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [(int(line.split(None, 1)[0]), line.split(None, 1)[1]) for line in listed.strip().splitlines()]


def run_worker(daemon: int) -> tuple[int, int] | None:
    """The code server that started a run still executing and that run's process, if there is one.

    The daemon keeps more than one code server (`dagster api grpc`) at times; a run worker is a
    child of one of them started by multiprocessing (`spawn_main`), beside its resource tracker.
    """
    for server, args in children(daemon):
        if " api grpc" in args:
            workers = [pid for pid, command in children(server) if "spawn_main" in command]
            if workers:
                return server, workers[0]
    return None


VICTIMS = ("run worker", "code server", "daemon")


def kill(victim: str, daemon: subprocess.Popen, env: dict[str, str]) -> subprocess.Popen:
    """SIGKILL the `victim` (one of `VICTIMS`) of a close through `daemon`, and return the daemon
    running afterwards: the daemon and all it started die together, and it is started again as a
    supervisor would; the code server and the run worker are left to the daemon and Dagster."""
    server, worker = wait_for(lambda: run_worker(daemon.pid), 10, "a run worker", 0.1)
    if victim == "run worker":
        os.kill(worker, signal.SIGKILL)
    elif victim == "code server":
        os.kill(server, signal.SIGKILL)  # the one that started the run
    else:
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait()
        return start_daemon(env)
    return daemon
