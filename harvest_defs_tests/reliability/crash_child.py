"""A harvesting process that SIGKILLs itself at one exact stage (the crash matrix's child).

Usage: ``python -m harvest_defs_tests.reliability.crash_child TARGET STAGE WORK [CORPUS]``

TARGET: ``claude`` (``claude_message_batches`` in a dlt pipeline, blocking), ``voyage``
(``voyage_embeddings_batch(mode="batch")`` in a dlt pipeline: the Voyage Batch API, blocking) or
``dagster`` (the submit run ``documents + claude_summary_batches``, then the collect run
``claude_summaries + summary_embeddings``, as the daemon would launch them, on an ephemeral instance).
Credentials and base URLs come from the environment (``ANTHROPIC_*``, ``VOYAGE_*``, ``HARVEST_HOME``).

STAGE: ``none`` or the moment the process dies. The kill is a real ``SIGKILL`` (no cleanup, no atexit,
no ``finally``); the hooks below only wrap library functions *in this child* to find the exact moment —
nothing in the library knows about them:

- ``before_create``: the batch create call is about to be sent (Claude: the ledger slot is reserved;
  Voyage: the input file is uploaded and its id recorded);
- ``after_create``: the API answered the create call, the ledger has not heard of the batch id;
- ``mid_poll``: a status retrieve was answered, its result not yet recorded (for ``claude`` the parent
  kills from outside instead, on the ledger showing polled progress: ``STAGE=none`` there);
- ``mid_download``: the first 256 bytes of the results stream were received and written;
- ``mid_load``: dlt's load jobs ran (rows are in DuckDB), the load package is not marked complete and the
  ledger has not marked the batch collected.

The line ``REACHED <stage>`` is printed (flushed) right before the kill, so the parent can tell a kill
at the intended stage from an unrelated crash.
"""

from __future__ import annotations

import inspect
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CLAUDE_MODEL = "claude-haiku-4-5"
N_PROMPTS = 120
PROMPTS_PER_BATCH = 50  # -> 3 request sets
N_TEXTS = 60


def die(stage: str) -> None:
    print(f"REACHED {stage}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def prompts() -> list[dict[str, str]]:
    return [
        {"custom_id": f"doc_{i}", "text": f"Summarize: Document {i} covers topic {i % 9}. It has details."}
        for i in range(N_PROMPTS)
    ]


def texts() -> list[dict[str, str]]:
    return [{"id": f"t-{i}", "text": f"embedding text {i} about subject {i % 7}"} for i in range(N_TEXTS)]


def _wrap(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    setattr(owner, name, make(getattr(owner, name)))


def _install_download_kill(stage: str) -> None:
    """Die after the first chunk of a streamed binary response (results JSONL) has been handed over."""
    import anthropic._response as a_resp
    import openai._response as o_resp

    def make(original: Callable[..., Iterator[bytes]]) -> Callable[..., Iterator[bytes]]:
        def iter_bytes(self: Any, chunk_size: int | None = None) -> Iterator[bytes]:
            for n, chunk in enumerate(original(self, 256)):
                if n == 1:
                    die(stage)
                yield chunk

        return iter_bytes

    for module in (a_resp, o_resp):
        for cls in vars(module).values():
            method = getattr(cls, "__dict__", {}).get("iter_bytes") if isinstance(cls, type) else None
            if (
                method is not None
                and not inspect.iscoroutinefunction(method)
                and not inspect.isasyncgenfunction(method)
            ):
                _wrap(cls, "iter_bytes", make)


def _install_load_kill(stage: str) -> None:
    from dlt.load.load import Load

    def make(original: Callable[..., None]) -> Callable[..., None]:
        def complete_package(self: Any, load_id: str, *args: Any, **kwargs: Any) -> None:
            die(stage)

        return complete_package

    _wrap(Load, "complete_package", make)


def _install_claude_create_kill(stage: str) -> None:
    from harvest_defs.harvest.claude import ClaudeBatchHarvester

    def make(original: Callable[..., str]) -> Callable[..., str]:
        def _create(self: Any, *args: Any, **kwargs: Any) -> str:
            if stage == "before_create":
                die(stage)
            batch_id = original(self, *args, **kwargs)
            die(stage)
            return batch_id

        return _create

    _wrap(ClaudeBatchHarvester, "_create", make)


def _install_voyage_create_kill(stage: str) -> None:
    from openai.resources.batches import Batches

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        def create(self: Any, *args: Any, **kwargs: Any) -> Any:
            if stage == "before_create":
                die(stage)
            batch = original(self, *args, **kwargs)
            die(stage)
            return batch

        return create

    _wrap(Batches, "create", make)


def _install_claude_poll_kill(stage: str) -> None:
    """Die once a retrieve has been answered, before the ledger records what it said."""
    from harvest_defs.harvest.claude import harvester as hmod

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        def poll(self: Any, batch_id: str) -> Any:
            self.client.messages.batches.retrieve(batch_id)
            die(stage)

        return poll

    _wrap(hmod.ClaudeBatchHarvester, "poll", make)


def _install_voyage_poll_kill(stage: str) -> None:
    """The Voyage emulator fixes a batch's duration at creation, so no outside timing: die in the poll."""
    from harvest_defs.harvest.voyage import VoyageBatchHarvester

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        def poll(self: Any, batch_id: str) -> Any:
            self.client.batches.retrieve(batch_id)
            die(stage)

        return poll

    _wrap(VoyageBatchHarvester, "poll", make)


def install(target: str, stage: str) -> None:
    if stage == "mid_download":
        _install_download_kill(stage)
    elif stage == "mid_load":
        _install_load_kill(stage)
    elif stage in ("before_create", "after_create"):
        if target == "voyage":
            _install_voyage_create_kill(stage)
        else:
            _install_claude_create_kill(stage)
    elif stage == "mid_poll" and target == "dagster":
        _install_claude_poll_kill(stage)
    elif stage == "mid_poll" and target == "voyage":
        _install_voyage_poll_kill(stage)


def run_claude(work: Path) -> None:
    from harvest_defs.harvest.claude import ClaudeBatchHarvester, claude_message_batches
    from harvest_defs.harvest.pipeline import create_duckdb_pipeline

    # A slot reserved by a killed process is reconciled with the server after this wait (default 30 s,
    # meant for a concurrently creating process; nothing races here).
    ClaudeBatchHarvester.race_wait_seconds = 0.3
    pipeline = create_duckdb_pipeline(
        "crash_claude", "ai", destination_path=str(work / "claude.duckdb"), pipelines_dir=str(work / "dlt")
    )
    if pipeline.has_pending_data:  # a package a killed run left behind loads first (dlt pitfall)
        pipeline.run()
    pipeline.run(
        claude_message_batches(
            prompts(),
            model=CLAUDE_MODEL,
            max_tokens=64,
            poll_interval=0.2,
            max_requests_per_batch=PROMPTS_PER_BATCH,
            ledger_path=work / "harvest" / "ledger.sqlite",
            raw_dir=work / "harvest" / "raw",
        )
    )


def run_voyage(work: Path) -> None:
    from harvest_defs.harvest.pipeline import create_duckdb_pipeline
    from harvest_defs.harvest.voyage import voyage_embeddings_batch

    pipeline = create_duckdb_pipeline(
        "crash_voyage", "ai", destination_path=str(work / "voyage.duckdb"), pipelines_dir=str(work / "dlt")
    )
    if pipeline.has_pending_data:
        pipeline.run()
    pipeline.run(
        voyage_embeddings_batch(
            texts(),
            model="voyage-3.5",
            mode="batch",
            poll_interval=0.2,
            ledger_path=work / "harvest" / "ledger.sqlite",
            raw_dir=work / "harvest" / "raw",
        )
    )


def run_dagster(corpus: str) -> None:
    import dagster as dg

    from harvest_defs.defs.build import build_defs
    from harvest_defs.defs.local_run import materialize_selection, register_collections
    from harvest_defs.harvest.claude import ClaudeBatchHarvester

    ClaudeBatchHarvester.race_wait_seconds = 0.3
    defs = build_defs(corpus)
    with dg.DagsterInstance.ephemeral() as instance:
        register_collections(instance, Path(corpus))
        materialize_selection(defs, instance, ["documents", "claude_summary_batches"], "alpha")
        materialize_selection(defs, instance, ["claude_summaries", "summary_embeddings"], "alpha")


def main(argv: list[str]) -> int:
    target, stage, work = argv[0], argv[1], Path(argv[2])
    install(target, stage)
    if target == "claude":
        run_claude(work)
    elif target == "voyage":
        run_voyage(work)
    elif target == "dagster":
        run_dagster(argv[3])
    else:
        raise SystemExit(f"unknown target {target!r}")
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
