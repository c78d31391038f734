"""Shared server state: config, counters, rate limiters, fault injection and auth.

Route modules (Anthropic, Voyage) keep their own stores and call :meth:`EmulatorState.admit` first in
every API handler, so rate limits, latency and faults behave the same on every endpoint.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from harvest_defs.emulator.config import EmulatorConfig
from harvest_defs.emulator.errors import anthropic_error, voyage_error
from harvest_defs.emulator.prompt_cache import PromptCache

Api = Literal["anthropic", "voyage"]


class DroppedConnection(Response):
    """Starts a response, then aborts it: the client sees the connection die mid-body."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"partial":', "more_body": True})
        raise ConnectionAbortedError("emulator fault injection: dropped connection")


class SlidingWindow:
    """Requests and tokens admitted in the last 60 s, for RPM/TPM limits."""

    def __init__(self) -> None:
        self.events: deque[tuple[float, int]] = deque()
        self.tokens = 0

    def _expire(self, now: float) -> None:
        while self.events and self.events[0][0] <= now - 60.0:
            _, tokens = self.events.popleft()
            self.tokens -= tokens

    def retry_after(self, now: float, tokens: int, rpm: int | None, tpm: int | None) -> float | None:
        """Seconds until this request would fit, or None if it fits now (and is then recorded)."""
        self._expire(now)
        waits: list[float] = []
        if rpm is not None and len(self.events) >= rpm:
            waits.append(self.events[len(self.events) - rpm][0] + 60.0 - now)
        if tpm is not None and self.tokens + tokens > tpm:
            excess, freed = self.tokens + tokens - tpm, 0
            for ts, t in self.events:
                freed += t
                if freed >= excess:
                    waits.append(ts + 60.0 - now)
                    break
            else:
                waits.append(60.0)
        if waits:
            return max(0.001, max(waits))
        self.events.append((now, tokens))
        self.tokens += tokens
        return None


class EmulatorState:
    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.stats: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.rng = random.Random(self.config.seed)
        self.windows: dict[Api, SlidingWindow] = {"anthropic": SlidingWindow(), "voyage": SlidingWindow()}
        self._reset_hooks: list[Callable[[], None]] = []
        # Prompt cache (Anthropic) and the clock its TTLs use; tests may replace ``clock`` or set the
        # ``clock_offset_seconds`` knob to move time forward without sleeping.
        self.prompt_cache = PromptCache()
        self.clock: Callable[[], float] = time.time

    def now(self) -> float:
        """Wall-clock seconds for the prompt cache: ``clock()`` plus the configured offset."""
        return self.clock() + self.config.clock_offset_seconds

    # --- lifecycle -------------------------------------------------------------------------------
    def on_reset(self, hook: Callable[[], None]) -> None:
        self._reset_hooks.append(hook)

    def reset(self) -> None:
        with self.lock:
            self.stats.clear()
            self.rng = random.Random(self.config.seed)
            self.windows = {"anthropic": SlidingWindow(), "voyage": SlidingWindow()}
        self.prompt_cache.clear()
        for hook in self._reset_hooks:
            hook()

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.stats[key] += n

    def chance(self, rate: float) -> bool:
        """A seeded coin flip, so fault patterns repeat for the same seed and request order."""
        if rate <= 0:
            return False
        with self.lock:
            return self.rng.random() < rate

    # --- auth ------------------------------------------------------------------------------------
    def api_key(self, request: Request) -> str | None:
        key = request.headers.get("x-api-key")
        if not key:
            auth = request.headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                key = auth[7:].strip()
        return key or None

    def key_is_valid(self, key: str | None) -> bool:
        if not key:
            return False
        allowed = self.config.valid_api_keys
        return allowed is None or key in allowed

    # --- the gate every API handler passes ---------------------------------------------------------
    async def admit(self, api: Api, request: Request, tokens: int = 0) -> Response | None:
        """Latency, auth, faults and rate limits; returns the error response to send, or None to go on."""
        cfg = self.config
        self.count(f"{api}_http_requests")
        if cfg.latency_ms > 0:
            await asyncio.sleep(cfg.latency_ms / 1000.0)
        error = anthropic_error if api == "anthropic" else _voyage_error
        key = self.api_key(request)
        if not self.key_is_valid(key):
            self.count(f"{api}_401s")
            message = "invalid x-api-key" if api == "anthropic" else "Provided API key is invalid."
            return error(401, message)
        where = f"{request.method} {request.url.path}"
        if not cfg.fault_paths or any(p in where for p in cfg.fault_paths):
            if self.chance(cfg.fault_rate_drop):
                self.count("faults_drop")
                return DroppedConnection()
            if self.chance(cfg.fault_rate_500):
                self.count("faults_500")
                return error(500, "Internal server error")
            if self.chance(cfg.fault_rate_529):
                self.count("faults_529")
                if api == "anthropic":
                    return anthropic_error(529, "Overloaded")
                return voyage_error(503, "Service temporarily overloaded, please retry.")
        rpm = cfg.anthropic_rpm if api == "anthropic" else cfg.voyage_rpm
        tpm = cfg.anthropic_tpm if api == "anthropic" else cfg.voyage_tpm
        if rpm is not None or tpm is not None:
            with self.lock:
                wait = self.windows[api].retry_after(time.monotonic(), tokens, rpm, tpm)
            if wait is not None:
                self.count(f"{api}_429s")
                headers = {"retry-after": str(max(1, math.ceil(wait)))}
                return error(
                    429, "Rate limit exceeded; please retry after the indicated time.", headers=headers
                )
        return None


def _voyage_error(
    status: int, message: str, error_type: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    return voyage_error(status, message, headers=headers)
