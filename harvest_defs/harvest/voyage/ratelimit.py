"""Client-side RPM/TPM limiter: send as fast as the limits allow, and no faster.

Why a sliding window and not a fixed per-request delay: Voyage (and the emulator) count requests and
tokens over the last 60 s. Mirroring that window lets the harvester use the whole budget — bursts up to
the limit, then exactly as fast as old requests leave the window — instead of the seed's fixed sleep.

Why a request is stamped when its response arrives, not when it is sent: the server stamps a request when
it admits it, which is somewhere between our send and our receipt of the response — and that gap is not
small: a busy server (or the emulator computing other requests' vectors) admits requests seconds after we
sent them. A send-time stamp therefore expires from our window *before* the server's does, we send into a
window the server still sees as full, and each such 429 costs a ``retry-after`` pause for every sender.
The response time is the only stamp we know is never earlier than the server's, so each request's window
entry is (re)stamped when it settles (:meth:`SlidingWindowLimiter.settle`). While a request is in flight
its entry counts in full and cannot expire — we do not yet know when it will. A request answered with 429
was not admitted, so :meth:`SlidingWindowLimiter.release` removes its entry instead of letting a request
that used none of the server's budget block ours for a minute. Errors other than 429 (5xx, a dropped
connection) may or may not have been admitted, so they are settled like successes: conservative.

The cost of this safety is the admission-to-response lag per window cycle (bounded by one request's
server time), far less than one 429's pause. ``margin_seconds`` is kept only as slack for timer rounding.

Adaptive: a 429 that still happens means our idea of the limit is too optimistic (another process shares
the key, or the account tier is lower). Every sender then pauses until ``retry-after`` and the limits
shrink by 10%; each success wins back 1% until the configured limits are reached again.

The logic is split so it can be tested without sleeping: :meth:`~SlidingWindowLimiter.wait_seconds` and
:meth:`~SlidingWindowLimiter.take` are pure functions of the entries and the (injectable) ``clock``;
:meth:`~SlidingWindowLimiter.acquire` is the async loop that sleeps until ``wait_seconds`` says go.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class LimiterStats:
    waits: int = 0
    waited_seconds: float = 0.0
    throttled: int = 0  # 429s reported back
    released: int = 0  # entries dropped because the server refused the request (429)


@dataclass(eq=False)
class Ticket:
    """One request's entry in the window: its estimated tokens and, once settled, when it was answered."""

    tokens: int
    stamp: float | None = None  # None while in flight: counts in full, never expires


class SlidingWindowLimiter:
    """Sliding-window RPM/TPM budget shared by every sender of one run (one asyncio loop)."""

    def __init__(
        self,
        rpm: int | None,
        tpm: int | None,
        *,
        window_seconds: float = 60.0,
        margin_seconds: float = 0.25,
        min_scale: float = 0.3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self.window = window_seconds + margin_seconds
        self.min_scale = min_scale
        self.scale = 1.0
        self.paused_until = -math.inf
        self.stats = LimiterStats()
        self.clock = clock
        self._entries: list[Ticket] = []
        self._fifo = asyncio.Lock()  # one waiter at a time, in arrival order: big requests are not starved
        self._changed = asyncio.Event()  # set when an entry settles or is released

    # --- pure bookkeeping (no awaiting; testable with a fake clock) ----------------------------------
    @property
    def in_flight(self) -> int:
        return sum(1 for e in self._entries if e.stamp is None)

    @property
    def tokens_in_window(self) -> int:
        self._expire(self.clock())
        return sum(e.tokens for e in self._entries)

    def _expire(self, now: float) -> None:
        self._entries = [e for e in self._entries if e.stamp is None or e.stamp > now - self.window]

    def wait_seconds(self, tokens: int) -> float:
        """Seconds until a request of ``tokens`` fits both limits: 0 = now, ``math.inf`` = not before an
        in-flight request settles (its expiry time is unknown until then)."""
        now = self.clock()
        self._expire(now)
        waits = [self.paused_until - now, 0.0]
        settled = sorted((e for e in self._entries if e.stamp is not None), key=lambda e: e.stamp or 0.0)
        if self.rpm is not None:
            rpm = max(1, int(self.rpm * self.scale))
            must_leave = len(self._entries) - rpm + 1
            if must_leave > 0:
                if must_leave > len(settled):
                    return math.inf
                waits.append(self._expiry(settled[must_leave - 1]) - now)
        if self.tpm is not None and self._entries:
            tpm = max(1, int(self.tpm * self.scale))
            excess = sum(e.tokens for e in self._entries) + tokens - tpm
            if excess > 0:  # wait until enough old tokens leave the window (or all, if tokens > tpm)
                freed = 0
                for entry in settled:
                    freed += entry.tokens
                    if freed >= excess:
                        waits.append(self._expiry(entry) - now)
                        break
                else:
                    if len(settled) < len(self._entries):
                        return math.inf
                    waits.append(self._expiry(settled[-1]) - now)  # bigger than the limit: empty window
        return max(waits)

    def _expiry(self, entry: Ticket) -> float:
        assert entry.stamp is not None
        return entry.stamp + self.window

    def take(self, tokens: int) -> Ticket:
        """Record a request being sent now (in flight until :meth:`settle` or :meth:`release`)."""
        ticket = Ticket(tokens)
        self._entries.append(ticket)
        return ticket

    def settle(self, ticket: Ticket) -> None:
        """The request's answer arrived (success or an error that may have been admitted): stamp it now."""
        ticket.stamp = self.clock()
        self._changed.set()

    def release(self, ticket: Ticket) -> None:
        """The server refused the request (429): it used none of the budget, so drop its entry."""
        if ticket in self._entries:
            self._entries.remove(ticket)
            self.stats.released += 1
        self._changed.set()

    # --- async facade --------------------------------------------------------------------------------
    async def acquire(self, tokens: int) -> Ticket:
        """Wait until a request of ``tokens`` estimated tokens fits both limits, then record it as sent."""
        async with self._fifo:
            while True:
                wait = self.wait_seconds(tokens)
                if wait <= 0:
                    return self.take(tokens)
                self.stats.waits += 1
                started = self.clock()
                self._changed.clear()
                # wake early when an entry settles or is released: that can change the answer
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), None if math.isinf(wait) else wait)
                self.stats.waited_seconds += self.clock() - started

    def throttled(self, retry_after: float) -> None:
        """The server said 429 anyway: everyone pauses for ``retry_after`` and the limits shrink."""
        self.stats.throttled += 1
        self.paused_until = max(self.paused_until, self.clock() + retry_after)
        self.scale = max(self.min_scale, self.scale * 0.9)

    def succeeded(self) -> None:
        self.scale = min(1.0, self.scale + 0.01)
