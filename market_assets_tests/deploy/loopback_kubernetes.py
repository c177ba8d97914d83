"""A stand-in for a Kubernetes cluster: the batch API on loopback, and a node that runs Jobs' pods.

No cluster runs here, so the Jobs that dagster-k8s creates are tested as they are rendered: the
API records every Job body exactly as the `kubernetes` client sent it, and the node runs each
Job's container as a local process, with the environment Kubernetes would give it (`env` with
`valueFrom` secrets, `envFrom` secrets and config maps, a missing reference failing the pod). A
rendered Job that names the wrong secret, drops an env var or has unusable args therefore fails
the run as it would on a cluster. What a node cannot mimic here is not pretended: images are not
pulled (the container runs with this machine's Python), resources and deadlines are recorded, not
enforced, and the instance config map mounted at DAGSTER_HOME is the test's own instance folder.

Only the calls dagster-k8s makes to run a job are served: create a Job, read it and its status,
delete it. Anything else is answered 404 and kept in `unhandled`, so a test can tell.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_JOBS = re.compile(r"^/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs(?:/(?P<name>[^/?]+)(?P<status>/status)?)?$")


class PodConfigError(Exception):
    """What Kubernetes reports as CreateContainerConfigError: a referenced secret or key is missing."""


@dataclass
class Pod:
    job: dict[str, Any]
    log: Path
    process: subprocess.Popen | None = None
    error: str | None = None

    @property
    def phase(self) -> str:
        if self.error:
            return "Failed"
        code = self.process.poll()
        return "Running" if code is None else "Succeeded" if code == 0 else "Failed"


@dataclass
class LoopbackKubernetes:
    """The API server and its one node. `node_env` is what every container starts from (PATH to
    this project's Python); `dagster_home` stands for the instance config map mounted at
    DAGSTER_HOME."""

    workdir: Path
    node_env: Mapping[str, str]
    dagster_home: Path
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    unhandled: list[str] = field(default_factory=list)
    pods: dict[str, Pod] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LoopbackKubernetes:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for pod in self.pods.values():
            if pod.process and pod.process.poll() is None:
                pod.process.kill()
                pod.process.wait(timeout=10)
        self._server.shutdown()
        self._server.server_close()

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig that points the `kubernetes` client at this API."""
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "loopback", "cluster": {"server": self.url}}],
                    "users": [{"name": "loopback", "user": {"token": "loopback"}}],
                    "contexts": [{"name": "loopback", "context": {"cluster": "loopback", "user": "loopback"}}],
                    "current-context": "loopback",
                }
            )
        )
        return path

    def jobs_of(self, component: str) -> list[dict[str, Any]]:
        """Recorded Jobs of a dagster-k8s component: `run_worker` or `step_worker`."""
        return [j for j in self.jobs if j["metadata"]["labels"].get("app.kubernetes.io/component") == component]

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{pod.error or pod.log.read_text()}" for name, pod in self.pods.items())

    # The node.

    def create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        job = {
            **body,
            "metadata": {**body["metadata"], "namespace": namespace, "uid": str(uuid.uuid4())},
        }
        with self._lock:
            self.jobs.append(body)
            pod = self.pods[name] = Pod(job, self.workdir / f"{name}.log")
        try:
            container = body["spec"]["template"]["spec"]["containers"][0]
            env = self._container_env(container)
        except PodConfigError as error:
            pod.error = f"CreateContainerConfigError: {error}"
            return job
        argv = [*container.get("command", []), *container.get("args", [])]
        argv[0] = shutil.which(argv[0], path=env["PATH"]) or argv[0]
        with open(pod.log, "wb") as log:
            pod.process = subprocess.Popen(argv, env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        return job

    def job_with_status(self, name: str) -> dict[str, Any] | None:
        pod = self.pods.get(name)
        if pod is None:
            return None
        phase = pod.phase
        counts = {"Running": "active", "Succeeded": "succeeded", "Failed": "failed"}
        return {**pod.job, "status": {counts[phase]: 1}}

    def _container_env(self, container: Mapping[str, Any]) -> dict[str, str]:
        """`envFrom` first, then `env` over it, as the kubelet resolves them."""
        env = dict(self.node_env)
        for source in container.get("envFrom", []):
            for kind, store in (("configMapRef", self.config_maps), ("secretRef", self.secrets)):
                if kind in source:
                    reference = source[kind]
                    if reference["name"] in store:
                        env.update(store[reference["name"]])
                    elif not reference.get("optional"):
                        raise PodConfigError(f"{kind} {reference['name']!r} not found")
        for variable in container.get("env", []):
            if "valueFrom" not in variable:
                env[variable["name"]] = variable.get("value", "")
                continue
            source = variable["valueFrom"]
            kind, store = ("secretKeyRef", self.secrets) if "secretKeyRef" in source else ("configMapKeyRef", self.config_maps)
            reference = source[kind]
            value = store.get(reference["name"], {}).get(reference["key"])
            if value is None:
                raise PodConfigError(f"{kind} {reference['name']}/{reference['key']} not found")
            env[variable["name"]] = value
        env["DAGSTER_HOME"] = str(self.dagster_home)
        return env


def _handler(cluster: LoopbackKubernetes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _not_found(self) -> None:
            cluster.unhandled.append(f"{self.command} {self.path}")
            self._answer(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})

        def do_POST(self) -> None:
            match = _JOBS.match(self.path.split("?")[0])
            if not match or match["name"]:
                return self._not_found()
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self._answer(201, cluster.create_job(match["ns"], body))

        def do_GET(self) -> None:
            match = _JOBS.match(self.path.split("?")[0])
            if match and match["name"]:
                job = cluster.job_with_status(match["name"])
                return self._answer(200, job) if job else self._not_found()
            self._not_found()

        def do_DELETE(self) -> None:
            match = _JOBS.match(self.path.split("?")[0])
            pod = cluster.pods.get(match["name"]) if match and match["name"] else None
            if pod is None:
                return self._not_found()
            if pod.process and pod.process.poll() is None:
                pod.process.kill()
            self._answer(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

    return Handler
