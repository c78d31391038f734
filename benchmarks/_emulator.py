"""The emulator in its own process for benchmarks, so its CPU work does not share a GIL with the client."""

from __future__ import annotations

import socket


def serve(port: int) -> None:
    from harvest_defs.emulator import EmulatorConfig, EmulatorServer

    EmulatorServer(EmulatorConfig(batch_processing_seconds=0.0), port=port).serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
