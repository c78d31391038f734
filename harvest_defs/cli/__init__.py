"""The ``harvest`` command. Each sub-command lives in its own module and registers itself on ``app``."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="harvest",
    help="Harvest Claude Message Batches and Voyage embeddings into a DuckDB RAG index.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Harvest Claude Message Batches and Voyage embeddings into a DuckDB RAG index."""


# Sub-command modules register on import; keep these imports after ``app`` exists.
from harvest_defs.cli import ask as _ask  # noqa: E402, F401
from harvest_defs.cli import demo as _demo  # noqa: E402, F401
from harvest_defs.cli import emulator as _emulator  # noqa: E402, F401
from harvest_defs.cli import status as _status  # noqa: E402, F401
