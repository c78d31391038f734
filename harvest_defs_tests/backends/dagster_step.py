"""One step of the *Dagster* chain in its own process, as a run pod or the daemon would execute it.

``python -m harvest_defs_tests.backends.dagster_step <step> <partition> [run requests JSON]``: the code
location is ``build_defs()`` over ``HARVEST_CORPUS`` (real assets, real resources, real dlt loads); the
instance is ``DagsterInstance.get()`` from ``DAGSTER_HOME`` (the test gives every process its own home
holding only ``dagster.yaml``: on Postgres the instance's state is the server's, as in a deployment).
The backend, DSN, schema and storage URL come from the ``HARVEST_*`` environment; ``HARVEST_HOME`` is the
process's own temp folder. Prints one JSON line.

Steps: ``submit`` (``documents`` + ``claude_summary_batches``), ``sensor`` (the real
``claude_batch_sensor`` ticked until it requests the collect run; its requests are printed), ``collect``
(executes those requests: ``claude_summaries`` + ``summary_embeddings`` + ``chunk_embeddings``, then
``rag_index``), ``all`` (the three in one process: the one-machine DuckDB reference).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import dagster as dg

from harvest_defs.defs.build import build_defs
from harvest_defs.defs.local_run import (
    check_result,
    materialize_selection,
    register_collections,
    tick_sensor,
)

SUBMIT = ["documents", "claude_summary_batches"]


def _materialized(result: dg.ExecuteInProcessResult) -> list[str]:
    return sorted({e.asset_key.to_user_string() for e in result.get_asset_materialization_events()})


def submit(defs: dg.Definitions, instance: dg.DagsterInstance, partition: str) -> dict[str, Any]:
    store = (defs.resources or {})["store"]
    register_collections(instance, store.corpus_path)  # what corpus_sensor's first tick does
    result = materialize_selection(defs, instance, SUBMIT, partition, raise_on_error=False)
    check_result(result, "submit")
    return {"materialized": _materialized(result), "open": len(store.ledger().open_submissions("claude"))}


def sensor(defs: dg.Definitions, instance: dg.DagsterInstance, partition: str) -> dict[str, Any]:
    cursor: str | None = None
    deadline = time.monotonic() + 180
    while True:
        tick = tick_sensor(defs, instance, "claude_batch_sensor", cursor)
        cursor = tick.cursor
        if tick.run_requests:
            break
        assert time.monotonic() < deadline, f"no collect request: {tick.skip_reason}"
        time.sleep(0.3)
    requests = [
        {
            "partition_key": r.partition_key,
            "assets": [k.to_user_string() for k in r.asset_selection or []],
            "tags": {**(r.tags or {}), "dagster/run_key": r.run_key or ""},
        }
        for r in tick.run_requests
    ]
    assert [r["partition_key"] for r in requests] == [partition], requests
    return {"requests": requests, "cursor": cursor}


def collect(
    defs: dg.Definitions, instance: dg.DagsterInstance, requests: list[dict[str, Any]]
) -> dict[str, Any]:
    materialized: list[str] = []
    checks: dict[str, bool] = {}
    for request in requests:
        result = materialize_selection(
            defs,
            instance,
            request["assets"],
            request["partition_key"],
            tags=request["tags"],
            raise_on_error=False,
        )
        check_result(result, "collect")
        materialized += _materialized(result)
        checks.update({c.check_name: c.passed for c in result.get_asset_check_evaluations()})
    index = materialize_selection(defs, instance, ["rag_index"], raise_on_error=False)
    check_result(index, "rag_index")
    checks.update({c.check_name: c.passed for c in index.get_asset_check_evaluations()})
    [event] = [e for e in index.get_asset_materialization_events()]
    meta = {k: v.value for k, v in (event.materialization.metadata or {}).items()}
    # Submitting the same partition again from this pod: every request is a cache hit (ledger + warehouse
    # on the server, the snapshot from object storage), nothing is sent.
    partition = requests[0]["partition_key"] if requests else None
    again = materialize_selection(defs, instance, ["claude_summary_batches"], partition)
    [resubmit] = [e.materialization for e in again.get_asset_materialization_events()]
    return {
        "materialized": [*materialized, *_materialized(index)],
        "checks": checks,
        "rows_indexed": meta["rows_indexed"],
        "index": str(meta["index_path"]),
        "resubmit": {k: resubmit.metadata[k].value for k in ("requests_sent", "requests_cached")},
    }


def run_all(defs: dg.Definitions, instance: dg.DagsterInstance, partition: str) -> dict[str, Any]:
    """The three steps in one process and one home: the one-machine reference."""
    submitted = submit(defs, instance, partition)
    sensed = sensor(defs, instance, partition)
    return {"submit": submitted, "sensor": sensed, **collect(defs, instance, sensed["requests"])}


def main(step: str, partition: str, requests: str | None) -> dict[str, Any]:
    defs = build_defs(sensor_interval=1)
    with dg.DagsterInstance.get() as instance:
        if step == "submit":
            return submit(defs, instance, partition)
        if step == "sensor":
            return sensor(defs, instance, partition)
        if step == "collect":
            return collect(defs, instance, json.loads(requests or "[]"))
        assert step == "all", step
        return run_all(defs, instance, partition)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)))
