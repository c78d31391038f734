"""The Dagster chain on the Postgres backend with no shared local disk, against the DuckDB backend.

Four processes, each with its own fresh ``HARVEST_HOME`` *and* ``DAGSTER_HOME`` (holding only the
``deploy/dagster.postgres.yaml`` instance config), as four pods would run them: (1) ``documents`` +
``claude_summary_batches``, (2) the real ``claude_batch_sensor`` evaluated with a Postgres ledger, (3) the
collect run it requested (summaries, embeddings, passages) and ``rag_index``, (4) ``harvest ask --json``.
Only Postgres (ledger, warehouse, pgvector index, Dagster instance), S3 (moto: snapshots and raw results)
and the APIs are shared; the corpus folder is deleted after step 1, so later steps cannot read it. The
same chain on the DuckDB backend (one process, one home) must retrieve the same top document.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.backends import BackendSettings
from harvest_defs.harvest.corpus import default_corpus_dir

HARVEST = shutil.which("harvest") or str(Path(sys.executable).with_name("harvest"))
INSTANCE_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "dagster.postgres.yaml"
QUESTION = "How fast must the on-call engineer acknowledge a page?"
PARTITION = "handbook"
DOCUMENTS = ("on-call-policy.md", "remote-work.md", "expense-rules.md", "vacation-and-leave.md")


def _corpus(root: Path) -> Path:
    """Four handbook documents of the sample corpus: small, and the question's answer among them."""
    for name in DOCUMENTS:
        target = root / PARTITION / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(default_corpus_dir() / PARTITION / name, target)
    return root


def _pod(tmp: Path, name: str, env: dict[str, str], instance_config: Path | None) -> dict[str, str]:
    """A fresh home for Harvest and for Dagster (only the instance config file in it)."""
    home, dagster_home = tmp / name / "harvest", tmp / name / "dagster"
    home.mkdir(parents=True)
    dagster_home.mkdir(parents=True)
    if instance_config is not None:
        shutil.copy(instance_config, dagster_home / "dagster.yaml")
    return {**env, "HARVEST_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}


def _run(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    started, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(args, capture_output=True, text=True, timeout=480, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    print(f"TIMING {args[3:5]}: {time.monotonic() - started:.1f} s wall, {cpu:.1f} s cpu", file=sys.stderr)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _step(step: str, env: dict[str, str], *extra: str) -> dict[str, Any]:
    module = "harvest_defs_tests.backends.dagster_step"
    return _run([sys.executable, "-m", module, step, PARTITION, *extra], env)


def _ask(env: dict[str, str]) -> dict[str, Any]:
    return _run([HARVEST, "ask", QUESTION, "--json", "--mode", "hybrid"], env)


def _duckdb_reference(
    home: Path, base: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same chain on the DuckDB backend, in this process (one machine: one home, one instance)."""
    import dagster as dg
    from typer.testing import CliRunner

    from harvest_defs.cli import app
    from harvest_defs.defs.build import build_defs
    from harvest_defs_tests.backends.dagster_step import run_all

    with monkeypatch.context() as env:
        for name in [k for k in os.environ if k.startswith("HARVEST_")]:
            env.delenv(name)
        env.setenv("HARVEST_BACKEND", "duckdb")
        env.setenv("HARVEST_HOME", str(home))
        env.setenv("HARVEST_CORPUS", base["HARVEST_CORPUS"])
        with dg.DagsterInstance.ephemeral() as instance:
            chain = run_all(build_defs(sensor_interval=1), instance, PARTITION)
        asked = CliRunner().invoke(app, ["ask", QUESTION, "--json", "--mode", "hybrid"])
        assert asked.exit_code == 0, asked.output
    return chain, dict(json.loads(asked.stdout))


def _dagster_pg_url(pg_dsn: str, database: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{database}"')  # type: ignore[arg-type]
        con.execute(f'CREATE DATABASE "{database}"')  # type: ignore[arg-type]
    base, _, query = pg_dsn.partition("?")  # postgresql://postgres:@/postgres?host=<socket dir>
    server = base.rsplit("/", 1)[0].removeprefix("postgresql")
    return f"postgresql+psycopg2{server}/{database}?{query}"


@pytest.mark.timeout(1200)
def test_dagster_chain_in_four_pods_on_postgres_matches_duckdb(
    api_env: EmulatorServer,
    pg_env: BackendSettings,
    s3_env: str,
    pg_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HARVEST_", "DAGSTER_"))}
    base["HARVEST_CORPUS"] = str(_corpus(tmp_path / "corpus"))
    started, cpu = time.monotonic(), time.process_time()
    duck_chain, duck_answer = _duckdb_reference(tmp_path / "one-machine", base, monkeypatch)
    print(
        f"TIMING duckdb: {time.monotonic() - started:.1f} s, {time.process_time() - cpu:.1f} s cpu",
        file=sys.stderr,
    )

    api_env.reset()  # the Postgres chain sends its own requests
    pg_vars = {k: v for k, v in os.environ.items() if k.startswith("HARVEST_")}
    database = f"dagster_{pg_env.postgres_schema}"
    env = {
        **base,
        **pg_vars,
        "HARVEST_STORAGE_URL": s3_env,
        "DAGSTER_PG_URL": _dagster_pg_url(pg_dsn, database),
    }
    pods = [_pod(tmp_path, f"pod-{i}", env, INSTANCE_CONFIG) for i in range(4)]
    submitted = _step("submit", pods[0])
    shutil.rmtree(base["HARVEST_CORPUS"])  # later pods have no corpus: only the published snapshot
    sensed = _step("sensor", pods[1])
    collected = _step("collect", pods[2], json.dumps(sensed["requests"]))
    answer = _ask(pods[3])

    assert submitted["materialized"] == ["claude_summary_batches", "documents"] and submitted["open"] == 1
    assert [r["assets"] for r in sensed["requests"]] == [
        r["assets"] for r in duck_chain["sensor"]["requests"]
    ]
    assert set(collected["materialized"]) == {
        "claude_summaries",
        "summary_embeddings",
        "chunk_embeddings",
        "rag_index",
    }
    assert collected["checks"] == duck_chain["checks"] and all(collected["checks"].values()), collected
    # Summaries + passages, the same rows on both backends, the Postgres ones in pgvector.
    assert collected["rows_indexed"] == duck_chain["rows_indexed"] > len(DOCUMENTS)
    assert collected["index"].startswith("postgresql:")
    assert (
        collected["resubmit"]
        == duck_chain["resubmit"]
        == {
            "requests_sent": 0,
            "requests_cached": len(DOCUMENTS),
        }
    )
    top = answer["sources"][0]["document_id"]
    assert top == duck_answer["sources"][0]["document_id"] == f"{PARTITION}__on-call-policy"
    # No pod kept state for another: no ledger, DuckDB file or local snapshot a later pod relied on.
    for pod in pods:
        home = Path(pod["HARVEST_HOME"])
        assert not list(home.rglob("ledger.sqlite*")) and not list(home.rglob("*.duckdb")), home
    with psycopg.connect(pg_dsn) as con:
        statuses = con.execute(f"SELECT status FROM {pg_env.postgres_schema}.batches").fetchall()  # type: ignore[arg-type]
    assert statuses == [("collected",)]
