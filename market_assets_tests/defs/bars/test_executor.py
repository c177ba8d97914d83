"""Where a close run's step executes: `MARKET_ASSETS_EXECUTOR` selects the Kubernetes executor for the
close jobs when the code location loads, and for them only."""

import json
import os
import subprocess
import sys

import pytest
from dagster_k8s import k8s_job_executor

from market_assets.defs.bars.executor import close_executor
from market_assets.settings import EXECUTOR


def test_the_executor_switch_is_k8s_or_the_default_and_nothing_else(monkeypatch):
    monkeypatch.delenv(EXECUTOR.env_var, raising=False)
    assert close_executor() is None
    monkeypatch.setenv(EXECUTOR.env_var, "default")
    assert close_executor() is None
    monkeypatch.setenv(EXECUTOR.env_var, " K8s ")
    assert close_executor() is k8s_job_executor
    monkeypatch.setenv(EXECUTOR.env_var, "celery")
    with pytest.raises(ValueError, match=f"{EXECUTOR.env_var}='celery'"):
        close_executor()


def test_the_close_jobs_switch_executor_when_the_code_location_loads_and_only_they_do():
    probe = (
        "import json\n"
        "from market_assets.definitions import defs\n"
        "print(json.dumps({job.name: job.executor_def.name for job in defs().resolve_all_job_defs()}))\n"
    )

    def executors(**env: str) -> dict[str, str]:
        base = {key: value for key, value in os.environ.items() if key != EXECUTOR.env_var}
        done = subprocess.run([sys.executable, "-c", probe], env={**base, **env}, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    default, on_kubernetes = executors(), executors(**{EXECUTOR.env_var: "k8s"})
    close_jobs = {name for name in default if name.endswith("_close")}
    assert close_jobs == {"dji_close", "ndx_close", "hsi_close"}
    assert {on_kubernetes[name] for name in close_jobs} == {"k8s"}
    # Unset, every job keeps the Definitions' executor: steps in the run's own process.
    assert set(default.values()) == {"in_process"}
    assert {name: on_kubernetes[name] for name in default if name not in close_jobs} == {
        name: executor for name, executor in default.items() if name not in close_jobs
    }
