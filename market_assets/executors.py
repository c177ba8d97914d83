"""Where the steps of a close run execute: in the run's own process, or one Kubernetes pod per step.

By default a run's steps execute one after the other in the run's own process (the Definitions'
in-process executor): on one machine a step process would only add seconds of start-up (loading
Dagster and the code again) to steps that fetch concurrently inside themselves anyway. On Kubernetes, `MARKET_ASSETS_EXECUTOR=k8s` gives each step its own pod
(`dagster_k8s.k8s_job_executor`): `daily_bars`, which holds every fetched history of the run in
memory, gets the memory it needs while the resampling steps stay small, and each step gets a hard
deadline, `activeDeadlineSeconds`, which Kubernetes enforces by killing the pod. Dagster itself
has no per-step timeout (only the run-level `dagster/max_runtime`), so a step stuck on a hung
connection would otherwise hold its run forever.

The per-step settings travel as the `dagster-k8s/config` tag of each asset's op, which only the
Kubernetes executor reads; the other executors ignore it. A deployment overrides them per step
without a code change through the executor's `per_step_k8s_config` run config.
"""

import os
from typing import Any

import dagster as dg

EXECUTOR_ENV = "MARKET_ASSETS_EXECUTOR"
"""`k8s` for one pod per step; unset (or `default`) for the executor of the Definitions."""

K8S_CONFIG_TAG = "dagster-k8s/config"

STEP_K8S_CONFIG: dict[str, dict[str, Any]] = {
    # Fetches up to MARKET_ASSETS_MAX_SYMBOLS_PER_RUN histories concurrently and keeps them all
    # until the step's output is written: memory grows with the symbols of the run.
    "daily_bars": {
        "container_config": {
            "resources": {
                "requests": {"cpu": "500m", "memory": "1Gi"},
                "limits": {"cpu": "2", "memory": "4Gi"},
            }
        },
        "job_spec_config": {"active_deadline_seconds": 1800},
    },
    # Resampling is pandas over the run's snapshots: CPU-bound and short.
    **dict.fromkeys(
        ("weekly_bars", "monthly_bars"),
        {
            "container_config": {
                "resources": {
                    "requests": {"cpu": "250m", "memory": "512Mi"},
                    "limits": {"cpu": "1", "memory": "2Gi"},
                }
            },
            "job_spec_config": {"active_deadline_seconds": 600},
        },
    ),
}
"""Per-step pod settings in the form of dagster-k8s's user-defined config (snake_case keys)."""


def step_k8s_tags(step: str) -> dict[str, Any]:
    """The op tags that carry `step`'s pod resources and deadline to the Kubernetes executor."""
    return {K8S_CONFIG_TAG: STEP_K8S_CONFIG[step]}


def close_executor() -> dg.ExecutorDefinition | None:
    """The executor of the close jobs as `$MARKET_ASSETS_EXECUTOR` selects it.

    `None` keeps the Definitions' default (the in-process executor), so nothing changes on one
    machine. The choice is read when the code location loads: the code server, the run pod and
    the step pods of a deployment all load it with the same environment.
    """
    choice = os.environ.get(EXECUTOR_ENV, "").strip().lower()
    if choice in ("", "default"):
        return None
    if choice == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    raise ValueError(
        f"{EXECUTOR_ENV}={os.environ[EXECUTOR_ENV]!r} is not an executor of market_assets: "
        "use 'k8s' for one Kubernetes pod per step, or leave it unset"
    )
