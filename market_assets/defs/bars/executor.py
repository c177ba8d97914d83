"""Where the step of a close run executes: in the run's own process, or a Kubernetes pod of its own.

By default a run's steps execute in the run's own process (the Definitions' in-process executor):
on one machine a step process would only add seconds of start-up (loading Dagster and the code
again) to a step that fetches concurrently inside itself anyway. On Kubernetes,
`MARKET_ASSETS_EXECUTOR=k8s` gives the bars step of a close run its own pod
(`dagster_k8s.k8s_job_executor`): the step, which builds and writes its partitions as their
answers arrive, gets the CPU and memory it needs while the run's pod stays small, and a hard
deadline, `activeDeadlineSeconds`, which Kubernetes enforces by killing the pod. Dagster
itself has no per-step timeout (only the run-level `dagster/max_runtime`), so a step stuck on a
hung connection would otherwise hold its run forever.

The pod settings travel as the `dagster-k8s/config` tag of the step's op, which only the
Kubernetes executor reads; the other executors ignore it. A deployment overrides them without a
code change through the executor's `per_step_k8s_config` run config.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from market_assets import settings

K8S_CONFIG_TAG = "dagster-k8s/config"

BARS_STEP_K8S_CONFIG: dict[str, Any] = {
    # Writes each partition as it is built, holding a few snapshots at a time whatever the number of
    # symbols of its run; a first close from scratch parses whole histories, twenty years each.
    "container_config": {
        "resources": {
            "requests": {"cpu": "500m", "memory": "1Gi"},
            "limits": {"cpu": "2", "memory": "4Gi"},
        }
    },
    "job_spec_config": {"active_deadline_seconds": 1800},
}
"""The bars step's pod settings in the form of dagster-k8s's user-defined config (snake_case keys)."""


def bars_step_k8s_tags() -> dict[str, Any]:
    """The op tags that carry the bars step's pod resources and deadline to the Kubernetes executor."""
    return {K8S_CONFIG_TAG: BARS_STEP_K8S_CONFIG}


def close_executor() -> dg.ExecutorDefinition | None:
    """The executor of the close jobs as `MARKET_ASSETS_EXECUTOR` selects it (a load setting).

    `None` keeps the Definitions' default (the in-process executor), so nothing changes on one
    machine.
    """
    if settings.EXECUTOR.value().lower() != "k8s":
        return None
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor
