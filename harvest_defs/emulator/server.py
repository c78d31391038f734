"""Run the emulator on loopback: in the foreground (CLI) or in a background thread (tests, demo)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import httpx
import uvicorn

from harvest_defs.emulator.app import build_app
from harvest_defs.emulator.config import EmulatorConfig
from harvest_defs.emulator.state import EmulatorState


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class EmulatorServer:
    """The emulator as a context manager; ``port=0`` picks a free port.

    >>> with EmulatorServer() as emu:
    ...     client = anthropic.Anthropic(api_key="test", base_url=emu.anthropic_base_url)
    """

    def __init__(self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = EmulatorState(config)
        self.host = host
        self._sock = _bind(host, port)
        self.port: int = self._sock.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn.Config(build_app(self.state), log_level="warning", access_log=False, lifespan="off")
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    @property
    def voyage_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def config(self) -> EmulatorConfig:
        return self.state.config

    def configure(self, **values: Any) -> None:
        """Change knobs of the running server (same effect as ``POST /_emulator/config``)."""
        self.state.config.update(values)

    def stats(self) -> dict[str, int]:
        with self.state.lock:
            return dict(self.state.stats)

    def reset(self) -> None:
        self.state.reset()

    def serve_forever(self) -> None:
        """Foreground mode for ``harvest emulator``: returns when Ctrl-C stops uvicorn."""
        self._server.run(sockets=[self._sock])

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="harvest-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("emulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def remote_stats(url: str) -> dict[str, int]:
    """Counters of an emulator running in another process."""
    response = httpx.get(f"{url.rstrip('/')}/_emulator/stats", timeout=10)
    response.raise_for_status()
    return dict(response.json())
