"""``harvest ask`` / ``search`` right after ``harvest demo``: find the demo's index, and its emulator.

Why: the demo writes ``./.harvest-demo`` and runs the emulator only while it runs, so a newcomer's next
command (``harvest ask "..."``) used to fail twice — no ``.harvest/rag.duckdb``, then no API to embed the
question with. When nothing says otherwise (no ``--index``, no ``HARVEST_HOME``, no ``.harvest`` index)
the demo's index is used; when that index was built by the demo and no base URL or real key is set, the
bundled emulator is started in this process for the command's duration. Both are said on stderr. With
real keys or base URLs set, nothing changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

DEMO_HOME = Path(".harvest-demo")
DEMO_MARKER = "demo.json"
_API_VARIABLES = ("ANTHROPIC_BASE_URL", "VOYAGE_BASE_URL", "ANTHROPIC_API_KEY", "VOYAGE_API_KEY")


def mark_demo_home(home: Path) -> None:
    """Written by ``harvest demo``: this folder's index was built against the emulator."""
    home.mkdir(parents=True, exist_ok=True)
    (home / DEMO_MARKER).write_text(json.dumps({"built_by": "harvest demo", "apis": "emulator"}) + "\n")


def resolve_index(index: Path | None) -> Path | None:
    """The index to open: ``--index``, else ``$HARVEST_HOME``'s or ``.harvest``'s, else the demo's."""
    if index is not None or os.environ.get("HARVEST_HOME"):
        return index
    default = Path(".harvest") / "rag.duckdb"
    demo = DEMO_HOME / "rag.duckdb"
    if not default.exists() and demo.exists():
        typer.echo(f"using the demo's index {demo} (no .harvest/rag.duckdb, HARVEST_HOME unset)", err=True)
        return demo
    return index


@contextmanager
def apis_for(index: Path | None) -> Iterator[None]:
    """Start the bundled emulator for an index the demo built, when no API is configured."""
    from harvest_defs.rag.index import default_index_path

    path = index or default_index_path()
    configured = any(os.environ.get(name) for name in _API_VARIABLES)
    if configured or not (path.parent / DEMO_MARKER).exists():
        yield
        return
    from harvest_defs.cli.demo import DEMO_KEYS
    from harvest_defs.emulator import EmulatorConfig, EmulatorServer

    with EmulatorServer(EmulatorConfig(batch_processing_seconds=0.0)) as emulator:
        typer.echo(
            f"this index was built by `harvest demo`: answering with the bundled emulator on {emulator.url} "
            "(set real keys to use the real APIs)",
            err=True,
        )
        saved = {name: os.environ.get(name) for name in _API_VARIABLES}
        os.environ.update(DEMO_KEYS)
        os.environ["ANTHROPIC_BASE_URL"] = emulator.anthropic_base_url
        os.environ["VOYAGE_BASE_URL"] = emulator.voyage_base_url
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
