"""What the `dagster/dagster` chart 1.13.27 makes of deploy/helm/values.yaml, for the keys it uses.

Helm cannot run here, so the two renderings the Jobs depend on are reproduced from the chart's
templates, key by key, for the values this project sets:

- the run launcher section of the instance config map (`templates/helpers/instance/_run-launcher.tpl`,
  `dagsterYaml.runLauncher.k8s`);
- the code server's environment (`charts/dagster-user-deployments/templates/deployment-user.yaml`
  and its `dagsterUserDeployments.k8sContainerContext` helper): the image it reports, and the
  container context (env, secrets, resources) it hands to every run it launches.

A key this module does not know fails loudly rather than being skipped, so a value added to
values.yaml cannot silently go untested.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from market_assets_tests.platform import PROJECT_ROOT

VALUES = PROJECT_ROOT / "deploy" / "helm" / "values.yaml"
RELEASE = "market-assets"
NAMESPACE = "market-assets"
FULLNAME = f"{RELEASE}-dagster"
"""`dagster.fullname`: the release name, then the chart name, unless the release already holds it."""
DAGSTER_HOME = "/opt/dagster/dagster_home"
"""The chart's default `global.dagsterHome`."""

_RUN_K8S_CONFIG_KEYS = {
    "containerConfig": "container_config",
    "podSpecConfig": "pod_spec_config",
    "podTemplateSpecMetadata": "pod_template_spec_metadata",
    "jobSpecConfig": "job_spec_config",
    "jobMetadata": "job_metadata",
}


def load_values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


def user_deployment(values: dict[str, Any], name: str = "market-assets") -> dict[str, Any]:
    deployments = values["dagster-user-deployments"]["deployments"]
    return next(d for d in deployments if d["name"] == name)


def image_name(image: dict[str, Any]) -> str:
    """`dagster.dagsterImage.name`."""
    return f"{image['repository']}:{image['tag']}"


def run_launcher_config(values: dict[str, Any]) -> dict[str, Any]:
    """The `run_launcher.config` of the instance's dagster.yaml (`dagsterYaml.runLauncher.k8s`)."""
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher", launcher["type"]
    k8s = launcher["config"]["k8sRunLauncher"]
    known = {
        "imagePullPolicy",
        "loadInclusterConfig",
        "kubeconfigFile",
        "jobNamespace",
        "envConfigMaps",
        "envSecrets",
        "envVars",
        "volumeMounts",
        "volumes",
        "labels",
        "resources",
        "failPodOnRunFailure",
        "schedulerName",
        "securityContext",
        "runK8sConfig",
    }
    assert set(k8s) <= known, f"runLauncher keys not rendered here: {set(k8s) - known}"
    config: dict[str, Any] = {
        "load_incluster_config": k8s["loadInclusterConfig"],
        "job_namespace": k8s.get("jobNamespace") or NAMESPACE,
        "image_pull_policy": k8s["imagePullPolicy"],
        "service_account_name": FULLNAME,
        "dagster_home": DAGSTER_HOME,
        "instance_config_map": f"{FULLNAME}-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }
    if k8s.get("kubeconfigFile"):
        config["kubeconfig_file"] = k8s["kubeconfigFile"]
    if k8s.get("envConfigMaps"):
        config["env_config_maps"] = [source["name"] for source in k8s["envConfigMaps"]]
    if k8s.get("envSecrets"):
        config["env_secrets"] = [source["name"] for source in k8s["envSecrets"]]
    for key, name in [
        ("envVars", "env_vars"),
        ("volumeMounts", "volume_mounts"),
        ("volumes", "volumes"),
        ("labels", "labels"),
        ("resources", "resources"),
        ("schedulerName", "scheduler_name"),
        ("securityContext", "security_context"),
    ]:
        if k8s.get(key):
            config[name] = k8s[key]
    if k8s.get("failPodOnRunFailure"):
        config["fail_pod_on_run_failure"] = True
    if k8s.get("runK8sConfig"):
        config["run_k8s_config"] = {_RUN_K8S_CONFIG_KEYS[key]: value for key, value in k8s["runK8sConfig"].items()}
    return config


def user_env_config_map(deployment: dict[str, Any]) -> str:
    """The config map the chart makes of a deployment's `env` when it is a mapping."""
    return f"{FULLNAME}-{deployment['name']}-user-env"


def code_server_env(values: dict[str, Any], deployment: dict[str, Any]) -> dict[str, str]:
    """Environment of the code server container (`deployment-user.yaml`), secrets left out."""
    known = {
        "name",
        "image",
        "dagsterApiGrpcArgs",
        "port",
        "includeConfigInLaunchedRuns",
        "env",
        "envConfigMaps",
        "envSecrets",
        "resources",
        "securityContext",
        "volumeMounts",
        "volumes",
        "labels",
        "schedulerName",
    }
    assert set(deployment) <= known, f"user deployment keys not rendered here: {set(deployment) - known}"
    assert isinstance(deployment.get("env", []), list), "env as a mapping goes to a config map: not rendered here"
    context: dict[str, Any] = {
        "image_pull_policy": deployment["image"]["pullPolicy"],
        "env_config_maps": [
            user_env_config_map(deployment),
            *(source["name"] for source in deployment.get("envConfigMaps", [])),
        ],
    }
    if deployment.get("envSecrets"):
        context["env_secrets"] = [source["name"] for source in deployment["envSecrets"]]
    for key, name in [
        ("volumeMounts", "volume_mounts"),
        ("volumes", "volumes"),
        ("labels", "labels"),
        ("resources", "resources"),
        ("schedulerName", "scheduler_name"),
    ]:
        if deployment.get(key):
            context[name] = deployment[key]
    context["namespace"] = NAMESPACE
    context["service_account_name"] = f"{FULLNAME}-user-deployments"
    if deployment.get("env"):
        context["env"] = deployment["env"]
    context["run_k8s_config"] = {"pod_spec_config": {"automount_service_account_token": True}}
    env = {"DAGSTER_CURRENT_IMAGE": image_name(deployment["image"])}
    if deployment.get("includeConfigInLaunchedRuns", {"enabled": True})["enabled"]:
        env["DAGSTER_CLI_API_GRPC_CONTAINER_CONTEXT"] = json.dumps({"k8s": context})
    env.update({variable["name"]: variable["value"] for variable in deployment.get("env", [])})
    return env
