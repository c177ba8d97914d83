"""The deployment files as files: the Dockerfile, .dockerignore and the Helm values.

Neither Docker nor Helm runs here. The Dockerfile is read instruction by instruction and held to
what the deployment relies on (a pinned base image, a non-root user, the project installed from
its own pyproject.toml, the code server the chart expects). The Dagster chart's published values schema
is not on any package registry this project reaches, so the values are checked against a schema
of the chart's keys derived from it (dagster_chart_values.schema.json), and their Kubernetes
objects against the `kubernetes` client's models.
"""

import copy
import json
import re
import shlex
import tomllib
from pathlib import Path
from types import SimpleNamespace

import dagster
import jsonschema
import pytest
import yaml
from kubernetes.client import ApiClient, V1JobSpec

from market_assets.settings import DATA_ROOT, EXECUTOR
from market_assets_tests.deploy import dagster_chart as chart
from market_assets_tests.platform import PROJECT_ROOT

SCHEMA = json.loads((Path(__file__).parent / "dagster_chart_values.schema.json").read_text())


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def _project() -> dict:
    """The `[project]` table of pyproject.toml: the name, the Python it requires, the pins."""
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]


class Dockerfile:
    def __init__(self, path: Path) -> None:
        self.instructions = _instructions(path)

    def __getitem__(self, name: str) -> list[str]:
        """Arguments of every `name` instruction, in order."""
        return [arguments for instruction, arguments in self.instructions if instruction.upper() == name]

    def last_index(self, *names: str) -> int:
        return max(i for i, (instruction, _) in enumerate(self.instructions) if instruction.upper() in names)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile(PROJECT_ROOT / "Dockerfile")


def test_the_image_starts_from_a_pinned_python_that_the_project_accepts(dockerfile):
    (base,) = dockerfile["FROM"]
    image, _, tag = base.partition(":")
    assert image == "python" and tag != "latest"
    version = re.match(r"(\d+)\.(\d+)\.(\d+)-", tag)
    assert version, f"the base image tag {tag!r} does not pin a patch release"
    required = re.match(r">=(\d+)\.(\d+)", _project()["requires-python"])
    assert tuple(map(int, version.groups()[:2])) >= tuple(map(int, required.groups()))


def test_the_image_runs_as_a_numeric_non_root_user_that_the_chart_pods_also_require(dockerfile):
    user = dockerfile["USER"][-1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {user} is not a numeric non-root user"
    assert dockerfile.last_index("USER") > dockerfile.last_index("RUN", "COPY", "ADD"), "root after USER"
    values = chart.load_values()
    for context in (
        chart.user_deployment(values)["securityContext"],
        values["runLauncher"]["config"]["k8sRunLauncher"]["securityContext"],
    ):
        assert context["runAsNonRoot"] is True and context["runAsUser"] == int(uid)


def test_the_image_installs_this_project_from_its_metadata_and_nothing_pinned_beside_it(dockerfile):
    installs = [shlex.split(command.split("&&")[0]) for command in dockerfile["RUN"] if command.startswith("pip install")]
    assert len(installs) == 1, "one pip install, of the project itself"
    (requirement,) = [argument for argument in installs[0][2:] if not argument.startswith("-")]
    match = re.fullmatch(r"\.\[([a-z0-9_,]+)\]", requirement)
    assert match, f"the image installs {requirement!r}, not this project (.[extras])"
    extras = set(match.group(1).split(","))
    assert extras == {"postgres", "s3"} and extras <= set(_project()["optional-dependencies"])
    copied = {source for arguments in dockerfile["COPY"] for source in shlex.split(arguments)[:-1]}
    assert copied == {"pyproject.toml", "setup.py", "market_assets"}
    patterns = [line for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert patterns[0] == "*", "the build context starts empty"
    assert {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")} == copied


def test_the_image_serves_the_code_location_the_helm_values_declare(dockerfile):
    deployment = chart.user_deployment(chart.load_values())
    command = json.loads(dockerfile["CMD"][-1])
    assert command == [
        "dagster",
        "api",
        "grpc",
        "-h",
        "0.0.0.0",
        "-p",
        str(deployment["port"]),
        *deployment["dagsterApiGrpcArgs"],
    ]
    assert dockerfile["EXPOSE"] == [str(deployment["port"])]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", _project()["name"]]


def test_the_helm_values_set_only_keys_of_the_chart():
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    jsonschema.Draft7Validator(SCHEMA).validate(chart.load_values())


@pytest.mark.parametrize(
    "path, key",
    [
        (("runLauncher", "config", "k8sRunLauncher"), "resource"),
        (("dagster-user-deployments", "deployments", 0), "envSecret"),
        (("concurrency", "pools"), "default_limit"),
        ((), "dagster-user-deployment"),
    ],
)
def test_a_misspelt_key_in_the_helm_values_is_refused(path, key):
    values = copy.deepcopy(chart.load_values())
    section = values
    for part in path:
        section = section[part]
    section[key] = {}
    with pytest.raises(jsonschema.ValidationError, match=re.escape(repr(key))):
        jsonschema.Draft7Validator(SCHEMA).validate(values)


def _as_model(value: object, model: str) -> object:
    """`value` as the kubernetes client's `model`, which must keep every field it was given."""
    client = ApiClient()
    parsed = client.deserialize(SimpleNamespace(data=json.dumps(value)), model)
    assert client.sanitize_for_serialization(parsed) == value, f"{value} is not a valid {model}"
    return parsed


def test_the_kubernetes_objects_in_the_helm_values_are_valid_kubernetes():
    values = chart.load_values()
    deployment = chart.user_deployment(values)
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    for section in (deployment, launcher, values["dagsterWebserver"], values["dagsterDaemon"]):
        if "resources" in section:
            _as_model(section["resources"], "V1ResourceRequirements")
        if "securityContext" in section:
            _as_model(section["securityContext"], "V1SecurityContext")
    for variable in deployment["env"]:
        _as_model(variable, "V1EnvVar")
    for source in deployment["envSecrets"]:
        _as_model(source, "V1SecretEnvSource")
    # A part of a JobSpec, merged into the one dagster-k8s builds: its keys must be JobSpec fields.
    job_spec = launcher["runK8sConfig"]["jobSpecConfig"]
    assert set(job_spec) <= set(V1JobSpec.attribute_map.values())
    assert isinstance(job_spec["activeDeadlineSeconds"], int) and job_spec["activeDeadlineSeconds"] > 0
    with pytest.raises(AssertionError, match="not a valid V1ResourceRequirements"):
        _as_model({"limit": {"cpu": "1"}}, "V1ResourceRequirements")


def test_the_helm_values_match_the_code_and_the_pinned_dagster():
    text = chart.VALUES.read_text()
    assert f"--version {dagster.__version__}" in text and f"version {dagster.__version__}" in text.splitlines()[1]
    values = chart.load_values()
    deployment = chart.user_deployment(values)
    env = {variable["name"]: variable["value"] for variable in deployment["env"]}
    assert env[EXECUTOR.env_var] == "k8s"
    assert "://" in env[DATA_ROOT.env_var], "pods share no disk: the parquet root must be object storage"
    assert env[DATA_ROOT.env_var].startswith("s3://") and "s3" in _project()["optional-dependencies"]
    assert int(env["MARKET_ASSETS_MAX_SYMBOLS_PER_RUN"]) > 0
    assert deployment["image"]["tag"] not in ("latest", "") and deployment["image"]["pullPolicy"] == "IfNotPresent"
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"


def test_every_instance_has_the_freshness_policies_evaluated():
    local = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    postgres = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster.postgres.yaml").read_text())
    helm = chart.load_values()["additionalInstanceConfig"]
    assert local["freshness"] == postgres["freshness"] == helm["freshness"] == {"enabled": True}
