"""A close on Kubernetes as deploy/helm/values.yaml deploys it: one Job for the run, one for its step.

The code location runs as the chart runs it (`dagster api grpc -m market_assets` with the image
and container context the chart gives it), the instance has the chart's K8sRunLauncher, and the
run is launched with `dagster job launch`. The Kubernetes API is the loopback stand-in of
`loopback_kubernetes`: it records the Jobs that dagster-k8s renders and runs their containers, so
the run pod really launches the step pod and the step really fetches from the project's Stooq-
compatible server with the URL they get from a secret. The recorded Jobs are then checked
against the `kubernetes` client's models and against what values.yaml and
market_assets/defs/bars/executor.py configure.
"""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dagster as dg
import pandas as pd
import pytest
import yaml
from kubernetes.client import ApiClient, V1Job

from market_assets.definitions import defs
from market_assets.defs.bars.executor import BARS_STEP_K8S_CONFIG
from market_assets.defs.bars.keys import bars_asset_key
from market_assets.defs.bars.planning import plan_close_runs
from market_assets.defs.compositions.jobs import compositions_job
from market_assets.defs.partitions import composition_key
from market_assets.lake.datasets import BARS
from market_assets.lake.store import ParquetStore
from market_assets.settings import EXECUTOR
from market_assets_tests.deploy import dagster_chart as chart
from market_assets_tests.deploy.loopback_kubernetes import LoopbackKubernetes

VENV_BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _set_env(deployment: dict[str, Any], name: str, value: str) -> None:
    """Override one env var of the user deployment, as `helm --set` would at install time."""
    variables = deployment["env"]
    assert any(v["name"] == name for v in variables), f"{name} is not set in values.yaml"
    deployment["env"] = [v if v["name"] != name else {"name": name, "value": value} for v in variables]


def _as_v1_job(body: dict[str, Any]) -> V1Job:
    """The body as the `kubernetes` client's V1Job; a field its models do not know would be lost
    on the way back, so the round trip must give the body unchanged."""
    client = ApiClient()
    job = client.deserialize(SimpleNamespace(data=json.dumps(body)), "V1Job")
    assert client.sanitize_for_serialization(job) == body
    return job


def _env(job: V1Job) -> dict[str, Any]:
    container = job.spec.template.spec.containers[0]
    return {variable.name: variable.value if variable.value_from is None else variable.value_from for variable in container.env}


def _secret_sources(job: V1Job) -> list[str]:
    container = job.spec.template.spec.containers[0]
    return [source.secret_ref.name for source in container.env_from or [] if source.secret_ref]


def _resources(job: V1Job) -> dict[str, Any]:
    return ApiClient().sanitize_for_serialization(job.spec.template.spec.containers[0].resources)


@pytest.fixture
def chart_deployment(tmp_path, stooq_server):
    """The chart's code location and instance on loopback Kubernetes, ready to launch runs."""
    values = chart.load_values()
    deployment = chart.user_deployment(values)
    lake, home, node = tmp_path / "lake", tmp_path / "dagster_home", tmp_path / "node"
    home.mkdir()
    node.mkdir()
    # Install-time overrides: no in-cluster credentials here, and a parquet root this machine reaches.
    launcher_values = values["runLauncher"]["config"]["k8sRunLauncher"]
    launcher_values["loadInclusterConfig"] = False
    _set_env(deployment, "MARKET_ASSETS_DATA_ROOT", str(lake))

    node_env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    with LoopbackKubernetes(node, node_env, home) as cluster:
        launcher_values["kubeconfigFile"] = str(cluster.write_kubeconfig(tmp_path / "kubeconfig"))
        cluster.secrets.update(
            {
                values["global"]["postgresqlSecretName"]: {"postgresql-password": "unused with sqlite"},
                "market-assets-stooq": {"STOOQ_BASE_URL": stooq_server.url},
                "market-assets-object-store": {"AWS_ACCESS_KEY_ID": "unused", "AWS_SECRET_ACCESS_KEY": "unused"},
            }
        )
        cluster.config_maps[chart.user_env_config_map(deployment)] = {}
        instance_yaml = {
            "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": chart.run_launcher_config(values)},
            # The daemon's queue is not under test: runs go straight to the launcher.
            "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"},
            "telemetry": {"enabled": False},
        }
        (home / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml))

        port = _free_port()
        server_env = {**node_env, **chart.code_server_env(values, deployment), "DAGSTER_HOME": str(home)}
        with open(node / "code-server.log", "wb") as log:
            code_server = subprocess.Popen(
                ["dagster", "api", "grpc", "-h", "127.0.0.1", "-p", str(port), *deployment["dagsterApiGrpcArgs"]],
                env=server_env,
                cwd=node,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            workspace = tmp_path / "workspace.yaml"
            workspace.write_text(
                yaml.safe_dump(
                    {"load_from": [{"grpc_server": {"host": "127.0.0.1", "port": port, "location_name": deployment["name"]}}]}
                )
            )
            yield SimpleNamespace(
                values=values,
                deployment=deployment,
                cluster=cluster,
                home=home,
                lake=lake,
                workspace=workspace,
                env=server_env,
                port=port,
            )
        finally:
            code_server.terminate()
            code_server.wait(timeout=30)


def _wait_for_code_server(port: int, env: dict[str, str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        check = subprocess.run(["dagster", "api", "grpc-health-check", "-p", str(port)], env=env, capture_output=True, timeout=60)
        if check.returncode == 0:
            return
        time.sleep(1)
    raise AssertionError(f"the code server on port {port} did not become healthy")


def test_a_close_on_kubernetes_runs_a_pod_for_the_run_and_one_for_its_step_as_configured(
    chart_deployment, stooq_server, synthetic_universe, monkeypatch
):
    deploy = chart_deployment
    session = f"{synthetic_universe.last_session['XNYS']:%Y-%m-%d}"
    members = synthetic_universe.members("DJI", pd.Timestamp(session))
    monkeypatch.setenv("DAGSTER_HOME", str(deploy.home))
    monkeypatch.setenv("MARKET_ASSETS_DATA_ROOT", str(deploy.lake))
    monkeypatch.setenv("STOOQ_BASE_URL", stooq_server.url)
    with dg.DagsterInstance.get() as instance:
        # The composition (which registers the symbols) is loaded here; the close run is under test.
        defs().resolve_job_def(compositions_job.name).execute_in_process(
            instance=instance,
            partition_key=str(composition_key(session, "DJI")),
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        close_run = plan_close_runs(instance, "DJI", session, members, max_symbols=200)[0]
        _wait_for_code_server(deploy.port, deploy.env)
        launched = subprocess.run(
            [
                "dagster",
                "job",
                "launch",
                "-w",
                str(deploy.workspace),
                "-j",
                close_run.job_name,
                "--tags",
                json.dumps(close_run.tags),
            ],
            env=deploy.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert launched.returncode == 0, launched.stdout + launched.stderr
        (run,) = instance.get_runs(dg.RunsFilter(job_name=close_run.job_name))
        deadline = time.monotonic() + 300
        while not instance.get_run_by_id(run.run_id).is_finished and time.monotonic() < deadline:
            time.sleep(1)
        run = instance.get_run_by_id(run.run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS, deploy.cluster.logs()
        expected = {f"{session}|{symbol}" for symbol in close_run.symbols}
        for asset in BARS:
            assert instance.get_materialized_partitions(bars_asset_key("XNYS", asset)) >= expected

    # The run pod ends with the run (failPodOnRunFailure makes its exit code the run's outcome).
    while any(pod.phase == "Running" for pod in deploy.cluster.pods.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert {name: pod.phase for name, pod in deploy.cluster.pods.items()} == {
        job["metadata"]["name"]: "Succeeded" for job in deploy.cluster.jobs
    }
    store = ParquetStore(str(deploy.lake))
    assert all(store.exists(asset, key) for asset in BARS for key in expected)
    assert stooq_server.stats()["by_route"]["download"] == len(close_run.symbols)
    assert deploy.cluster.unhandled == []

    image = chart.image_name(deploy.deployment["image"])
    launcher_values = deploy.values["runLauncher"]["config"]["k8sRunLauncher"]
    (run_job,) = map(_as_v1_job, deploy.cluster.jobs_of("run_worker"))
    steps = {job.metadata.labels["dagster/op"]: job for job in map(_as_v1_job, deploy.cluster.jobs_of("step_worker"))}
    assert sorted(steps) == ["xnys_bars"]
    for job in (run_job, *steps.values()):
        container = job.spec.template.spec.containers[0]
        assert container.image == image
        env = _env(job)
        assert env[EXECUTOR.env_var] == "k8s"
        assert env["MARKET_ASSETS_DATA_ROOT"] == str(deploy.lake)
        assert env["DAGSTER_PG_PASSWORD"].secret_key_ref.name == deploy.values["global"]["postgresqlSecretName"]
        assert {"market-assets-stooq", "market-assets-object-store"} <= set(_secret_sources(job))
        assert "STOOQ_API_KEY" not in env and "STOOQ_BASE_URL" not in env  # secrets stay in secrets
        assert container.security_context.run_as_non_root is True
        assert container.security_context.run_as_user == launcher_values["securityContext"]["runAsUser"]

    assert run_job.spec.template.spec.containers[0].args[:3] == ["dagster", "api", "execute_run"]
    assert _resources(run_job) == deploy.deployment["resources"]
    assert run_job.spec.active_deadline_seconds == launcher_values["runK8sConfig"]["jobSpecConfig"]["activeDeadlineSeconds"]
    for job in steps.values():
        assert job.spec.template.spec.containers[0].args[:3] == ["dagster", "api", "execute_step"]
        assert _resources(job) == BARS_STEP_K8S_CONFIG["container_config"]["resources"]
        assert job.spec.active_deadline_seconds == BARS_STEP_K8S_CONFIG["job_spec_config"]["active_deadline_seconds"]
        assert job.metadata.labels["dagster/run-id"] == run.run_id
