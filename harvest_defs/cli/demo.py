"""``harvest demo``: the whole chain offline — emulator, submit, sensor, collect, embed, index, answer.

Everything a user would click through in ``dagster dev``, run in this process against the local API
emulator: dummy keys and base URLs go into this process's environment only, Dagster uses an ephemeral
instance, and the harvest's files live in ``./.harvest-demo`` (or ``--home``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from harvest_defs.cli import app

DEMO_KEYS = {"ANTHROPIC_API_KEY": "sk-ant-demo-not-a-real-key", "VOYAGE_API_KEY": "pa-demo-not-a-real-key"}
DEFAULT_QUESTION = "What is this corpus about?"


def _first_sample_question(corpus: Path) -> str:
    for candidate in (corpus / "questions.jsonl", corpus.parent / "questions.jsonl"):
        if candidate.exists():
            for line in candidate.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    record = json.loads(line)
                    return str(record.get("question") or record.get("text") or DEFAULT_QUESTION)
    return DEFAULT_QUESTION


REQUIRED_MODULES = (
    "harvest_defs.harvest.ledger",
    "harvest_defs.harvest.claude",
    "harvest_defs.harvest.voyage",
    "harvest_defs.harvest.pipeline",
    "harvest_defs.rag.index",
    "harvest_defs.rag.answer",
)


def _missing_parts() -> list[str]:
    """Modules the chain needs that this checkout lacks: a clear message instead of a traceback mid-run."""
    from importlib.util import find_spec

    return [name for name in REQUIRED_MODULES if find_spec(name) is None]


def _point_at_emulator(anthropic_url: str, voyage_url: str, home: Path) -> None:
    """Only this process's environment: the user's shell and real keys are never touched."""
    os.environ.update(DEMO_KEYS)
    os.environ["ANTHROPIC_BASE_URL"] = anthropic_url
    os.environ["VOYAGE_BASE_URL"] = voyage_url
    os.environ["HARVEST_HOME"] = str(home)


@app.command()
def demo(
    home: Annotated[Path, typer.Option(help="HARVEST_HOME for the demo's files.")] = Path(".harvest-demo"),
    question: Annotated[str | None, typer.Option(help="Question to answer (default: a sample one).")] = None,
    fresh: Annotated[
        bool, typer.Option(help="Delete --home first (otherwise a re-run costs 0 requests).")
    ] = False,
    batch_seconds: Annotated[float, typer.Option(help="Emulated batch processing time.")] = 2.0,
    k: Annotated[int, typer.Option(help="Passages retrieved for the answer.")] = 5,
    rerank: Annotated[
        bool, typer.Option("--rerank/--no-rerank", help="Rerank the fused candidates (Voyage, emulated).")
    ] = True,
    candidates: Annotated[int, typer.Option(min=1, help="Fused candidates the reranker reads.")] = 30,
) -> None:
    """Run the whole chain offline against the local emulator and answer a sample question."""
    console = Console()
    missing = _missing_parts()
    if missing:
        console.print(
            f"[bold red]harvest demo needs parts that are not installed yet:[/] {', '.join(missing)}"
        )
        raise typer.Exit(code=2)
    if fresh and home.exists():
        shutil.rmtree(home)
    home = home.resolve()
    started = time.monotonic()
    from harvest_defs.cli.offline import mark_demo_home

    mark_demo_home(home)  # `harvest ask` / `search` afterwards find this index and its emulator

    from harvest_defs.emulator import EmulatorConfig, EmulatorServer

    with EmulatorServer(EmulatorConfig(batch_processing_seconds=batch_seconds)) as emulator:
        _point_at_emulator(emulator.anthropic_base_url, emulator.voyage_base_url, home)
        console.print(f"[bold green]emulator[/] on {emulator.url} · HARVEST_HOME={home}")
        from harvest_defs.defs.local_run import ChainStepFailed

        try:
            answer = _run_chain(console, question, k, rerank, candidates)
        except ChainStepFailed as exc:
            console.print(f"[bold red]demo stopped:[/] {exc}")
            raise typer.Exit(code=1) from exc
        stats = emulator.stats()

    _print_answer(console, answer)
    sent = {key: value for key, value in stats.items() if value}
    console.print(f"[dim]emulator stats: {json.dumps(sent, sort_keys=True)}[/]")
    console.print(f"[bold]done[/] in {time.monotonic() - started:.1f} s")


def _run_chain(console: Console, question: str | None, k: int, rerank: bool, candidates: int) -> Any:
    import dagster as dg
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from harvest_defs.defs.build import build_defs
    from harvest_defs.defs.local_run import materialize_selection, run_chain

    defs = build_defs(sensor_interval=1)
    store = (defs.resources or {})["store"]
    instance = dg.DagsterInstance.ephemeral()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    )
    labels = {
        "submit": "corpus_sensor: snapshot + submit Message Batches",
        "collect": "claude_batch_sensor: collect + embed",
        "index": "rag_index_sensor: build the RAG index",
    }
    tasks: dict[str, Any] = {}

    def on_step(name: str, done: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = progress.add_task(labels[name], total=total)
        progress.update(tasks[name], completed=done, total=total)

    with progress:
        chain = run_chain(defs, instance, on_step=on_step)
        if not chain.index_runs:  # the index is current already (a re-run): prove it still opens
            materialize_selection(defs, instance, ["rag_index"])

    from harvest_defs.harvest.corpus import default_corpus_dir
    from harvest_defs.rag.answer import answer

    text = question or _first_sample_question(store.corpus_path or default_corpus_dir())
    console.print(Panel(text, title="question"))
    reranker = None
    if rerank:  # as `harvest ask` does: Voyage rerank (real-time) over the fused candidates
        from harvest_defs.rag.rerank import voyage_reranker

        reranker = voyage_reranker()
    return answer(text, k=k, rag_path=store.rag_path, rerank=reranker, candidates=candidates)


def _print_answer(console: Console, result: Any) -> None:
    """``result`` is ``harvest_defs.rag.answer.Answer``: the answer, then the passage it cites with its
    document (what a reader checks the answer against), then every source it was given."""
    cited = ", ".join(result.cited_ids) or "none"
    how = "reranked" if result.reranked else "fused order, no rerank"
    # escape: the answer's "[source <id>]" citations are not Rich markup (unescaped, Rich ate them)
    body = f"{escape(result.text)}\n\n[dim]cited: {cited}[/]"
    console.print(Panel(body, title=f"answer ({how})", border_style="green"))
    by_id = {hit.chunk_id: hit for hit in result.sources}
    label = "cited passage" if result.cited_chunks else "top passage (none cited)"
    for chunk_id in result.cited_chunks[:1] or [h.chunk_id for h in result.sources[:1]]:
        hit = by_id[chunk_id]
        console.print(f"{label}: {hit.chunk_id}")
        console.print(f"of document: {hit.document_id}")
        console.print(Panel(escape(hit.text.strip()[:1200]), title="passage", border_style="cyan"))
    table = Table("document", "passage", "score", "text", title="sources")
    for hit in result.sources:
        passage = hit.chunk_id.removeprefix(hit.document_id) or "-"
        table.add_row(hit.document_id, passage, f"{hit.score:.3f}", hit.text.replace("\n", " ")[:100])
    console.print(table)
