"""``harvest status``: what the ledger knows — batches in flight, ended, collected — without any API call.

The ledger is the source of truth for money already committed, so this is the first thing to look at
after a crash or before a re-run: nothing here contacts Anthropic or Voyage or opens a DuckDB file.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from harvest_defs.cli import app

if TYPE_CHECKING:
    from harvest_defs.harvest.ledger import BatchLedger


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


@app.command()
def status(
    home: Annotated[
        Path | None,
        typer.Option(help="HARVEST_HOME holding ledger.sqlite (default $HARVEST_HOME or ./.harvest)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """List the ledger's batches and request states (no API call, no DuckDB lock)."""
    ledger = _ledger(home)
    path = ledger.path
    batches = ledger.batches()
    requests = {p: ledger.request_counts_by_state(p) for p in sorted({b.provider for b in batches})}
    if as_json:
        rows = [
            {
                "provider": b.provider,
                "partition_key": b.partition_key,
                "batch_id": b.batch_id,
                "status": b.status,
                "request_count": b.request_count,
                "request_counts": b.request_counts,
                "created_at": _when(b.created_at),
                "ended_at": _when(b.ended_at),
                "collected_at": _when(b.collected_at),
                "lost_reason": b.meta.get("lost_reason"),
            }
            for b in batches
        ]
        typer.echo(json.dumps({"batches": rows, "requests": requests}, indent=2))
        return
    table = Table(title=f"batches in {path}")
    for column in ("provider", "partition", "batch id", "status", "requests", "counts", "created (UTC)"):
        table.add_column(column)
    for b in batches:
        counts = ", ".join(f"{k} {v}" for k, v in (b.request_counts or {}).items() if v)
        table.add_row(
            b.provider,
            b.partition_key or "",
            b.batch_id or "(creating)",
            b.status,
            str(b.request_count),
            counts,
            _when(b.created_at),
        )
    console = Console()
    console.print(table)
    for provider, states in requests.items():
        console.print(f"{provider} requests: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
    for b in batches:
        if b.status == "lost":
            console.print(
                f"[yellow]lost[/] {b.provider} batch {b.batch_id} [{b.partition_key}]: "
                f"{b.meta.get('lost_reason', '')} — `harvest resubmit {b.batch_id}` to pay for it again"
            )


def _ledger(home: Path | None) -> BatchLedger:
    """The ledger of ``HARVEST_BACKEND``: the file under the home (which must exist), or the server's."""
    from harvest_defs.harvest.backends import BackendSettings, open_ledger

    settings = BackendSettings.resolve()
    root = home or Path(os.environ.get("HARVEST_HOME") or ".harvest")
    path = root / "ledger.sqlite"
    if settings.name == "duckdb" and not path.exists():
        typer.echo(f"no ledger at {path}: nothing has been submitted from this HARVEST_HOME", err=True)
        raise typer.Exit(code=1)
    return open_ledger(path, settings)


@app.command()
def resubmit(
    batch_id: Annotated[str | None, typer.Argument(help="A lost batch (default: every lost batch).")] = None,
    home: Annotated[
        Path | None, typer.Option(help="HARVEST_HOME (default $HARVEST_HOME or ./.harvest).")
    ] = None,
) -> None:
    """Let the next submit send a lost batch's requests again — a deliberate re-payment, never automatic."""
    ledger = _ledger(home)
    lost = [b for b in ledger.lost() if batch_id in (None, b.batch_id)]
    if batch_id is not None and not lost:
        typer.echo(f"batch {batch_id} is not lost in this ledger (see `harvest status`)", err=True)
        raise typer.Exit(code=1)
    total = sum(ledger.rearm_lost(b.provider, b.batch_id) for b in lost)
    typer.echo(f"{total} request(s) of {len(lost)} lost batch(es) will be sent by the next submit")
