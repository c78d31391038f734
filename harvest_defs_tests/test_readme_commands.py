"""Every shell command in README.md is exercised by a test (issue 13), and the cheap ones run here.

The README's ```bash blocks are parsed (continuations joined, comments dropped); each command must match
an entry of ``COVERED``, which names the test that runs it. A README edit that adds a command without a
test fails here. ``export`` lines must set only variables the code reads. The partition-range backfill
and the emulator command run below exactly as written (the emulator on a free port).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs_tests.conftest import TEST_ANTHROPIC_KEY, TEST_VOYAGE_KEY
from harvest_defs_tests.defs.dagster_dev import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent

# README command (prefix, after `python3 -m pip install uv && `) -> (test file, text that file must hold).
COVERED: dict[str, tuple[str, str]] = {
    "uv run harvest demo": ("harvest_defs_tests/test_cli_after_demo.py", '_run(["demo"]'),
    "uv run pytest": (".ci/run", "uv run --frozen pytest"),
    "uv run harvest emulator --port 8765 --batch-seconds 5": (
        "harvest_defs_tests/test_readme_commands.py",
        "test_readme_emulator_command_serves",
    ),
    "uv run dagster dev": ("harvest_defs_tests/defs/dagster_dev.py", '"dagster",\n                "dev"'),
    "uv run dagster asset materialize -m harvest_defs.definitions --select "
    "documents,claude_summary_batches --partition-range engineering...product": (
        "harvest_defs_tests/test_readme_commands.py",
        "test_readme_partition_range_backfill",
    ),
    "uv run dg scaffold defs harvest_defs.ClaudeBatchHarvest my_harvest": (
        "harvest_defs_tests/components/test_dg_cli.py",
        '"scaffold"',
    ),
    "uv run dg check defs": ("harvest_defs_tests/components/test_dg_cli.py", '"check", "defs"'),
    "uv run dg list defs": ("harvest_defs_tests/components/test_dg_cli.py", '"list", "defs"'),
    "uv run ruff check .": (".ci/run", "uv run --frozen ruff check ."),
    "uv run ruff format --check .": (".ci/run", "uv run --frozen ruff format --check ."),
    "uv run mypy": (".ci/run", "uv run --frozen mypy"),
    "bash .ci/run": (".ci/run", "set -euo pipefail"),
    "uv run python benchmarks/": ("benchmarks", ""),
}


def readme_commands(text: str) -> list[str]:
    """Commands of every ```bash block: continuations joined, comments and blank lines dropped."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = " ".join(re.sub(r"\s+#.*$", "", line).split())
            if not line or line.startswith("#"):
                continue
            commands.extend(part.strip() for part in line.split("&&"))
    return [c for c in commands if c and c != "python3 -m pip install uv"]


def test_every_readme_command_is_covered_by_a_test() -> None:
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert len(commands) >= 10, commands
    read_vars = (ROOT / "harvest_defs").rglob("*.py")
    source = "\n".join(p.read_text(encoding="utf-8") for p in read_vars)
    for command in commands:
        if command.startswith("export "):
            for assignment in shlex.split(command)[1:]:
                name = assignment.split("=", 1)[0]
                assert name in source or name.endswith("_API_KEY"), f"README exports {name}: nothing reads it"
            continue
        covering = [key for key in COVERED if command.startswith(key)]
        assert covering, f"README command not exercised by any test: {command!r} (add it to COVERED)"
        path, evidence = COVERED[covering[0]]
        target = ROOT / path
        assert target.exists(), path
        if evidence:
            assert evidence in target.read_text(encoding="utf-8"), (command, path, evidence)


def test_readme_emulator_command_serves(tmp_path: Path) -> None:
    [command] = [c for c in readme_commands(README.read_text()) if c.startswith("uv run harvest emulator")]
    port = free_port()
    args = shlex.split(command)[2:]  # drop `uv run`: this interpreter's environment is the project's
    args[args.index("--port") + 1] = str(port)
    process = subprocess.Popen([str(BIN / "harvest"), *args[1:]], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        pytest.fail("`harvest emulator` did not answer")
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the process group started above
        process.wait(timeout=20)


def test_readme_partition_range_backfill(tmp_path: Path, emulator: EmulatorServer) -> None:
    """The README's shell backfill, verbatim, on an instance whose partitions corpus_sensor added."""
    from harvest_defs.defs.partitions import COLLECTIONS_NAME

    [command] = [c for c in readme_commands(README.read_text()) if "--partition-range" in c]
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "HARVEST_HOME": str(tmp_path / "harvest"),
        "ANTHROPIC_API_KEY": TEST_ANTHROPIC_KEY,
        "ANTHROPIC_BASE_URL": emulator.anthropic_base_url,
        "VOYAGE_API_KEY": TEST_VOYAGE_KEY,
        "VOYAGE_BASE_URL": emulator.voyage_base_url,
    }
    env.pop("HARVEST_CORPUS", None)
    os.environ["DAGSTER_HOME"], saved = str(home), os.environ.get("DAGSTER_HOME")
    try:
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions(COLLECTIONS_NAME, ["engineering", "handbook", "product"])
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = saved
    args = shlex.split(command)[2:]
    done = subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert emulator.stats().get("anthropic_batches_created") == 3  # one batch per collection, one run
