"""``harvest ask`` and ``harvest search``: query the RAG index from the terminal.

Both open the index read-only (a rebuild swaps in a new file, so they never wait on or break one), embed
the question with Voyage (VOYAGE_API_KEY / VOYAGE_BASE_URL) using the index's model and dimension, and
``ask`` answers with Claude (ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL). ``--json`` prints machine-readable
output for scripts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape  # the answer's "[source <id>]" citations are not Rich markup
from rich.panel import Panel
from rich.table import Table

from harvest_defs.cli import app
from harvest_defs.cli.offline import apis_for, resolve_index

if TYPE_CHECKING:
    from harvest_defs.rag.search import Hit

ModeOption = Annotated[str, typer.Option(help="Retrieval: hybrid (vector + BM25, RRF), vector or keyword.")]
IndexOption = Annotated[
    Path | None, typer.Option("--index", help="Index file (default: $HARVEST_HOME/rag.duckdb).")
]
KOption = Annotated[int, typer.Option("--k", min=1, max=100, help="Passages to retrieve.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
RerankOption = Annotated[
    bool,
    typer.Option("--rerank/--no-rerank", help="Rerank the fused candidates with Voyage before answering."),
]
RerankModelOption = Annotated[str, typer.Option("--rerank-model", help="Voyage reranker model.")]
CandidatesOption = Annotated[
    int, typer.Option("--candidates", min=1, max=1000, help="Fused candidates the reranker reads.")
]


def _check_mode(mode: str) -> str:
    from harvest_defs.rag.search import MODES

    if mode not in MODES:
        raise typer.BadParameter(f"choose one of {', '.join(MODES)}", param_hint="--mode")
    return mode


def _hits_table(hits: list[Hit], title: str) -> Table:
    table = Table("#", "document", "passage", "score", "vec", "bm25", "text", title=title)
    for rank, hit in enumerate(hits, 1):
        table.add_row(
            str(rank),
            hit.document_id,
            hit.chunk_id.removeprefix(hit.document_id) or "-",
            f"{hit.score:.4f}",
            str(hit.vector_rank or "-"),
            str(hit.keyword_rank or "-"),
            " ".join(hit.text.split())[:100],
        )
    return table


def _fail(console: Console, error: Exception) -> None:
    """One line instead of a traceback: a missing index or an API error (SDK messages carry no key)."""
    console.print(f"[red]error:[/red] {type(error).__name__}: {error}")
    raise typer.Exit(code=1)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    k: KOption = 5,
    mode: ModeOption = "hybrid",
    as_json: JsonOption = False,
    index: IndexOption = None,
    rerank: RerankOption = True,
    rerank_model: RerankModelOption = "rerank-2.5",
    candidates: CandidatesOption = 30,
) -> None:
    """Answer a question from the RAG index with Claude: the top passages (reranked), cited with their
    documents."""
    from harvest_defs.rag.answer import answer

    console = Console()
    checked = _check_mode(mode)
    index = resolve_index(index)
    try:
        with apis_for(index):
            reranker = None
            if rerank:
                from harvest_defs.rag.rerank import voyage_reranker

                reranker = voyage_reranker(rerank_model)
            result = answer(
                question,
                k=k,
                mode=checked,  # type: ignore[arg-type]
                rag_path=index,
                rerank=reranker,
                candidates=candidates,
            )
    except Exception as error:  # the CLI's boundary: report, exit 1
        _fail(console, error)
        return
    if as_json:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    cited = ", ".join(result.cited_ids) or "none"
    passages = f" (passages: {', '.join(result.cited_chunks)})" if result.cited_chunks else ""
    console.print(
        Panel(escape(result.text), title="answer", subtitle=f"cited: {cited}{passages}", border_style="green")
    )
    console.print(_hits_table(result.sources, "sources"))


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: KOption = 5,
    mode: ModeOption = "hybrid",
    as_json: JsonOption = False,
    index: IndexOption = None,
) -> None:
    """Print the top-k chunks of the RAG index for a query."""
    from harvest_defs.rag.search import search as run_search

    console = Console()
    checked = _check_mode(mode)
    index = resolve_index(index)
    try:
        with apis_for(index):
            hits = run_search(query, k=k, mode=checked, rag_path=index)  # type: ignore[arg-type]
    except Exception as error:  # the CLI's boundary: report, exit 1
        _fail(console, error)
        return
    if as_json:
        typer.echo(json.dumps([hit.as_dict() for hit in hits], ensure_ascii=False))
        return
    console.print(_hits_table(hits, f"{mode} top {k}"))
