"""Client-side RPM/TPM limiter: send as fast as the limits allow, and no faster.

Why a sliding window and not a fixed per-request delay: Voyage (and the emulator) count requests and
tokens over the last 60 s. Mirroring that window lets the harvester use the whole budget — bursts up to
the limit, then exactly as fast as old requests leave the window — instead of the seed's fixed sleep.
The window is slightly longer than the server's (``margin_seconds``) because the server stamps a request
when it arrives, a little after we stamp it when we send.

Adaptive: a 429 means our idea of the limit is too optimistic (another process shares the key, or the
account tier is lower). Every sender then pauses until ``retry-after`` and the limits shrink by 10%;
each success wins back 1% until the configured limits are reached again.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass


@dataclass
class LimiterStats:
    waits: int = 0
    waited_seconds: float = 0.0
    throttled: int = 0  # 429s reported back


class SlidingWindowLimiter:
    def __init__(
        self,
        rpm: int | None,
        tpm: int | None,
        *,
        window_seconds: float = 60.0,
        margin_seconds: float = 1.0,
        min_scale: float = 0.3,
    ) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self.window = window_seconds + margin_seconds
        self.min_scale = min_scale
        self.scale = 1.0
        self.paused_until = 0.0
        self.stats = LimiterStats()
        self._events: deque[tuple[float, int]] = deque()
        self._tokens = 0
        self._lock = asyncio.Lock()

    def _expire(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - self.window:
            _, tokens = self._events.popleft()
            self._tokens -= tokens

    def _wait_for(self, now: float, tokens: int) -> float:
        """Seconds until a request of ``tokens`` fits (0 = now)."""
        waits = [self.paused_until - now]
        if self.rpm is not None:
            rpm = max(1, int(self.rpm * self.scale))
            if len(self._events) >= rpm:
                waits.append(self._events[len(self._events) - rpm][0] + self.window - now)
        if self.tpm is not None and self._events:
            tpm = max(1, int(self.tpm * self.scale))
            excess = self._tokens + tokens - tpm
            if excess > 0:  # wait until enough old tokens leave the window (or all, if tokens > tpm)
                freed = 0
                for ts, t in self._events:
                    freed += t
                    if freed >= excess:
                        waits.append(ts + self.window - now)
                        break
                else:
                    waits.append(self._events[-1][0] + self.window - now)
        return max(0.0, *waits)

    async def acquire(self, tokens: int) -> None:
        """Wait until a request of ``tokens`` estimated tokens fits both limits, then record it."""
        async with self._lock:  # FIFO: one waiter at a time, so big requests are not starved
            while True:
                now = time.monotonic()
                self._expire(now)
                wait = self._wait_for(now, tokens)
                if wait <= 0:
                    self._events.append((now, tokens))
                    self._tokens += tokens
                    return
                self.stats.waits += 1
                self.stats.waited_seconds += wait
                await asyncio.sleep(wait)

    def throttled(self, retry_after: float) -> None:
        """The server said 429: everyone pauses for ``retry_after`` and the limits shrink."""
        self.stats.throttled += 1
        self.paused_until = max(self.paused_until, time.monotonic() + retry_after)
        self.scale = max(self.min_scale, self.scale * 0.9)

    def succeeded(self) -> None:
        self.scale = min(1.0, self.scale + 0.01)
