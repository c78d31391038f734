"""A real ``dagster dev`` (webserver + daemon + code server) on a free port, driven through GraphQL.

Used by the end-to-end test that takes the user's path: launch a materialization the way the UI does,
let the daemon's sensors do the rest, and read the results back through the same API the UI reads.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

PROJECT = Path(__file__).resolve().parents[2]
LOCATION = "harvest_defs"
REPOSITORY = "__repository__"
ASSET_JOB = "__ASSET_JOB"

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on UnauthorizedError { message }
  }
}
"""

MATERIALIZATIONS = """
query Materializations($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    __typename
    ... on Asset { assetMaterializations(limit: 100) { runId partition } }
  }
}
"""

RUNS = """
query Runs { runsOrError { ... on Runs { results { runId status tags { key value } } } } }
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DagsterDev:
    def __init__(self, url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.url = url
        self.process = process
        self.log_path = log_path

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        return dict(body["data"])

    def launch_assets(self, keys: list[str], partition: str | None = None) -> str:
        tags = [{"key": "dagster/partition", "value": partition}] if partition else []
        params = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "pipelineName": ASSET_JOB,
                "assetSelection": [{"path": [k]} for k in keys],
            },
            "mode": "default",
            "executionMetadata": {"tags": tags},
        }
        result = self.graphql(LAUNCH, {"params": params})["launchPipelineExecution"]
        if result["__typename"] != "LaunchRunSuccess":
            raise AssertionError(f"launch failed: {result}")
        return str(result["run"]["runId"])

    def materialized_partitions(self, key: str) -> list[str | None]:
        data = self.graphql(MATERIALIZATIONS, {"key": {"path": [key]}})["assetOrError"]
        if data["__typename"] != "Asset":
            return []
        return [m["partition"] for m in data["assetMaterializations"]]

    def runs(self) -> list[dict[str, Any]]:
        return list(self.graphql(RUNS)["runsOrError"]["results"])

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    query = {"query": "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited early:\n{log_path.read_text(errors='replace')[-4000:]}")
        try:
            response = httpx.post(f"{url}/graphql", json=query, timeout=5)
            nodes = response.json()["data"]["repositoriesOrError"].get("nodes")
            if response.status_code == 200 and nodes:
                return
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            pass
        time.sleep(0.5)
    raise TimeoutError(
        f"dagster dev not ready after {timeout} s:\n{log_path.read_text(errors='replace')[-4000:]}"
    )


@contextmanager
def dagster_dev(workdir: Path, env: Mapping[str, str], *, timeout: float = 120) -> Iterator[DagsterDev]:
    """Start ``dagster dev -w workspace.yaml`` with a temp DAGSTER_HOME holding the project's dagster.yaml."""
    dagster_home = workdir / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT / "dagster.yaml", dagster_home / "dagster.yaml")
    port = free_port()
    log_path = workdir / "dagster_dev.log"
    full_env = {**os.environ, **env, "DAGSTER_HOME": str(dagster_home), "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagster",
                "dev",
                "-w",
                str(PROJECT / "workspace.yaml"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=workdir,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log_path, timeout)
        yield DagsterDev(url, process, log_path)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # our own process group, started above
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
