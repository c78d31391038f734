"""Two submit runs of one partition, started at once on two "machines" (processes, own temp homes).

Nothing is shared but the Postgres server and the API: exactly one batch may be created (paid for), and
both runs must report it. On the SQLite backend the same race is covered by ``harvest/test_ledger.py``
and ``reliability/test_concurrency.py``; two homes there would mean two ledgers, by design.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.backends import BackendSettings, open_ledger

MODEL = "claude-haiku-4-5"


def _submit(home: str, base_url: str, barrier: Any, results: Any) -> None:
    from harvest_defs.harvest.claude import ClaudeBatchHarvester

    harvester = ClaudeBatchHarvester(
        "sk-ant-test-key", base_url, ledger_path=Path(home) / "ledger.sqlite", raw_dir=Path(home) / "raw"
    )
    prompts = [
        {"custom_id": f"doc_{i}", "text": f"Summarize: document {i} on topic {i % 5}."} for i in range(40)
    ]
    barrier.wait()
    started = time.monotonic()
    report = harvester.submit(prompts, MODEL, max_tokens=32, partition_key="p1")
    results.put((report.batch_ids, report.requests_sent, time.monotonic() - started))


def test_two_nodes_submitting_one_partition_create_exactly_one_batch(
    api_env: EmulatorServer, pg_env: BackendSettings, tmp_path: Path
) -> None:
    before = api_env.stats().get("anthropic_batches_created", 0)
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    homes = [tmp_path / "node-a", tmp_path / "node-b"]
    procs = [
        ctx.Process(target=_submit, args=(str(h), api_env.anthropic_base_url, barrier, results))
        for h in homes
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(240)
    assert [p.exitcode for p in procs] == [0, 0]
    reports = [results.get(timeout=5) for _ in procs]
    assert api_env.stats()["anthropic_batches_created"] - before == 1
    (batch_id,) = reports[0][0]
    assert reports[1][0] == [batch_id]
    assert sorted(r[1] for r in reports) == [0, 40]  # one paid, the other found its batch
    ledger = open_ledger(tmp_path / "third-node" / "ledger.sqlite", pg_env)
    assert [b.batch_id for b in ledger.in_flight("claude", "p1")] == [batch_id]
    assert ledger.request_counts_by_state("claude") == {"submitted": 40}
