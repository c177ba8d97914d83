"""Where the step of a close run executes: in the run's own process, or, with
`MARKET_ASSETS_EXECUTOR=k8s`, a Kubernetes pod of its own, whose settings travel as the step's
`dagster-k8s/config` tag. Why: docs/design.md#per-step-pods-on-kubernetes.
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
    """The executor of the close jobs as `MARKET_ASSETS_EXECUTOR` selects it (a load setting);
    `None` keeps the Definitions' default, the in-process executor."""
    if settings.EXECUTOR.value().lower() != "k8s":
        return None
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor
