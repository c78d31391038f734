"""``harvest emulator``: the local Anthropic + Voyage API emulator in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from harvest_defs.cli import app


@app.command()
def emulator(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 = any free port).")] = 8765,
    host: Annotated[str, typer.Option(help="Interface to bind; keep loopback.")] = "127.0.0.1",
    config: Annotated[Path | None, typer.Option(help="TOML file with emulator settings.")] = None,
    batch_seconds: Annotated[float | None, typer.Option(help="Batch processing time in seconds.")] = None,
    latency_ms: Annotated[float | None, typer.Option(help="Latency added to every API response.")] = None,
    voyage_rpm: Annotated[int | None, typer.Option(help="Voyage requests-per-minute limit.")] = None,
    voyage_tpm: Annotated[int | None, typer.Option(help="Voyage tokens-per-minute limit.")] = None,
    anthropic_rpm: Annotated[int | None, typer.Option(help="Anthropic requests-per-minute limit.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for fault injection.")] = None,
) -> None:
    """Serve the Anthropic and Voyage APIs locally until Ctrl-C."""
    from harvest_defs.emulator import EmulatorConfig, EmulatorServer

    cfg = EmulatorConfig.from_toml(config) if config else EmulatorConfig()
    overrides = {
        "batch_processing_seconds": batch_seconds,
        "latency_ms": latency_ms,
        "voyage_rpm": voyage_rpm,
        "voyage_tpm": voyage_tpm,
        "anthropic_rpm": anthropic_rpm,
        "seed": seed,
    }
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    server = EmulatorServer(cfg, host=host, port=port)
    console = Console()
    console.print(f"[bold green]harvest emulator[/] listening on {server.url}")
    console.print(f"  ANTHROPIC_BASE_URL={server.anthropic_base_url}")
    console.print(f"  VOYAGE_BASE_URL={server.voyage_base_url}")
    console.print("  stats: GET /_emulator/stats · config: POST /_emulator/config · Ctrl-C stops")
    server.serve_forever()
