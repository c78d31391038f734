"""Fetch an SDK's sdist and run parts of its own test suite against the emulator (helpers for
``test_sdk_conformance``).

The SDKs' generated ``tests/api_resources`` call every endpoint with minimal and with "all params"
bodies and validate the responses strictly against the SDK's types — written for a mock server at
``TEST_API_BASE_URL``. Pointing them at the emulator checks the emulator's wire fidelity with tests nobody
here wrote. The sdist is downloaded with pip (PyPI) into a cache directory once; if that fails (offline),
the caller skips with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

# A replacement for the suite's conftest.py, which also wires up snapshot plugins (inline_snapshot,
# http_snapshot) that the api_resources tests selected here never use. It keeps what they do use: the
# ``client`` / ``async_client`` fixtures (strict and loose response validation) and async test marking.
CONFTEST = """
from __future__ import annotations

import os
from typing import Any, AsyncIterator, Iterator

import pytest
from pytest_asyncio import is_async_test

{imports}

pytest.register_assert_rewrite("tests.utils")

base_url = os.environ["TEST_API_BASE_URL"]
api_key = "my-api-key"


def pytest_collection_modifyitems(items: list[pytest.Function]) -> None:
    for item in items:
        if is_async_test(item):
            item.add_marker(pytest.mark.asyncio(loop_scope="session"), append=False)


@pytest.fixture(scope="session")
def client(request: Any) -> Iterator[Any]:
    strict = getattr(request, "param", True)
    with {sync_client}(base_url=base_url, api_key=api_key, _strict_response_validation=strict) as client:
        yield client


@pytest.fixture(scope="session")
async def async_client(request: Any) -> AsyncIterator[Any]:
    param = getattr(request, "param", True)
    strict = param if isinstance(param, bool) else param.get("strict", True)
    options = dict(base_url=base_url, api_key=api_key, _strict_response_validation=strict)
    async with {async_client}(**options) as client:
        yield client
"""


@dataclass(frozen=True)
class Suite:
    package: str
    version: str
    files: tuple[str, ...]  # test modules and helper files/packages under tests/
    imports: str
    sync_client: str
    async_client: str
    plugins: tuple[str, ...] = ()


def _pip() -> list[str] | None:
    """A pip to download with: this interpreter's, else one on PATH (uv venvs ship without pip)."""
    probe = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [sys.executable, "-m", "pip"]
    for name in ("pip", "pip3"):
        found = shutil.which(name)
        if found:
            return [found]
    return None


def fetch_sdist(package: str, version: str, cache: Path) -> Path:
    """The extracted sdist directory (downloaded once into ``cache``); raises RuntimeError when offline."""
    root = cache / f"{package}-{version}"
    if (root / "tests").is_dir():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    pip = _pip()
    if pip is None:
        raise RuntimeError("no pip available to download the sdist")
    spec = f"{package}=={version}"
    done = subprocess.run(
        [*pip, "download", "--no-binary", ":all:", "--no-deps", spec, "-d", str(cache)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    archives = sorted(cache.glob(f"{package}-{version}.tar.gz"))
    if not archives:
        raise RuntimeError(f"pip download {spec} failed: {done.stderr.strip()[-500:]}")
    with tarfile.open(archives[0]) as tar:
        tar.extractall(cache, filter="data")
    return root


def stage(suite: Suite, sdist: Path, target: Path) -> Path:
    """Copy the selected test files (and package __init__ files) into ``target/tests``."""
    if target.exists():
        shutil.rmtree(target)
    for rel in suite.files:
        src = sdist / "tests" / rel
        dst = target / "tests" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)
        for parent in Path(rel).parents:
            init = target / "tests" / parent / "__init__.py"
            if not init.exists():
                init.write_text("")
    conftest = CONFTEST.format(
        imports=suite.imports, sync_client=suite.sync_client, async_client=suite.async_client
    )
    (target / "tests" / "conftest.py").write_text(conftest)
    return target


@dataclass(frozen=True)
class Outcome:
    passed: set[str]
    failed: dict[str, str]  # test id -> first line of the failure
    skipped: set[str]
    log: str


def run(suite: Suite, staged: Path, base_url: str, selection: list[str], timeout: float = 240) -> Outcome:
    """Run the staged tests in a subprocess (fresh interpreter: no plugin or import clashes)."""
    report = staged / "report.jsonl"
    report.unlink(missing_ok=True)
    plugin = staged / "outcome_plugin.py"
    plugin.write_text(
        "import json\n"
        "def pytest_runtest_logreport(report):\n"
        "    if report.when == 'call' or report.outcome != 'passed':\n"
        f"        with open({str(report)!r}, 'a') as fh:\n"
        "            msg = str(report.longrepr).splitlines()[-1] if report.longrepr else ''\n"
        "            row = {'id': report.nodeid, 'outcome': report.outcome, 'msg': msg}\n"
        "            fh.write(json.dumps(row) + '\\n')\n"
    )
    env = {**os.environ, "TEST_API_BASE_URL": base_url, "PYTHONPATH": str(staged)}
    for name in list(env):
        if name.startswith(("ANTHROPIC_", "OPENAI_")):
            del env[name]
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "outcome_plugin"]
    for extra in suite.plugins:
        args += ["-p", extra]
    args += ["-o", "asyncio_mode=auto", "-o", "addopts=", "-o", "timeout=60", "--rootdir", str(staged)]
    done = subprocess.run(
        [*args, *selection], cwd=staged, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    passed: set[str] = set()
    failed: dict[str, str] = {}
    skipped: set[str] = set()
    if report.exists():
        for line in report.read_text().splitlines():
            row = json.loads(line)
            if row["outcome"] == "passed":
                passed.add(row["id"])
            elif row["outcome"] == "skipped":
                skipped.add(row["id"])
            else:
                failed[row["id"]] = row["msg"]
    return Outcome(passed, failed, skipped, done.stdout[-4000:] + done.stderr[-2000:])
