"""The sliding-window limiter's bookkeeping, driven by a hand-moved clock (no sleeping, no timing asserts).

What matters for throughput and for 429s: a request's entry expires a window after its *response*
arrived (never earlier than the server's admission stamp), an in-flight request never expires, and a
request refused with 429 stops holding budget at once.
"""

from __future__ import annotations

import asyncio
import math

from harvest_defs.harvest.voyage.ratelimit import SlidingWindowLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(rpm: int | None, tpm: int | None) -> tuple[SlidingWindowLimiter, FakeClock]:
    clock = FakeClock()
    return SlidingWindowLimiter(rpm, tpm, window_seconds=60.0, margin_seconds=0.0, clock=clock), clock


def test_window_counts_from_the_response_not_the_send() -> None:
    lim, clock = limiter(rpm=None, tpm=100)
    ticket = lim.take(100)
    assert lim.wait_seconds(1) == math.inf  # full, and in flight: no expiry time is known yet
    clock.now += 70  # long in flight (a slow, busy server): still counts in full
    assert lim.wait_seconds(1) == math.inf
    lim.settle(ticket)  # answered at t0+70: the server admitted it at some point before that
    assert lim.wait_seconds(1) == 60.0
    clock.now += 59.5
    assert lim.wait_seconds(1) == 0.5
    clock.now += 0.5
    assert lim.wait_seconds(1) == 0.0
    assert lim.tokens_in_window == 0


def test_tpm_waits_only_for_as_many_old_tokens_as_needed() -> None:
    lim, clock = limiter(rpm=None, tpm=100)
    for _ in range(4):
        lim.settle(lim.take(25))
        clock.now += 10
    # t=40: entries answered at 0,10,20,30 (25 tokens each); a 30-token request needs two to leave
    assert lim.wait_seconds(30) == 30.0  # the second (t=10) expires at 70
    assert lim.wait_seconds(25) == 20.0  # one is enough: the first expires at 60
    clock.now = 1000.0 + 60.0
    assert lim.wait_seconds(25) == 0.0
    assert lim.tokens_in_window == 75


def test_rpm_limit_and_in_flight_requests_never_expire() -> None:
    lim, clock = limiter(rpm=2, tpm=None)
    first = lim.take(1)
    second = lim.take(1)
    assert lim.wait_seconds(1) == math.inf
    clock.now += 5
    lim.settle(second)  # answered out of order: the earliest expiry is the one that settled
    assert lim.wait_seconds(1) == 60.0
    clock.now += 60
    assert lim.wait_seconds(1) == 0.0
    assert lim.in_flight == 1 and first.stamp is None


def test_a_refused_request_releases_its_budget_and_pauses_everyone() -> None:
    lim, clock = limiter(rpm=10, tpm=100)
    ok = lim.take(60)
    refused = lim.take(40)
    lim.settle(ok)
    assert lim.wait_seconds(40) == 60.0
    lim.release(refused)  # 429: the server never admitted it
    lim.throttled(retry_after=3.0)
    assert lim.stats.released == 1 and lim.stats.throttled == 1
    assert lim.wait_seconds(30) == 3.0  # budget is back, but the retry-after pause holds
    clock.now += 3.0
    # the limits shrank by 10% after the 429: 90 tokens, so 40 more no longer fits next to 60
    assert lim.wait_seconds(30) == 0.0
    assert lim.wait_seconds(40) == 57.0
    for _ in range(10):
        lim.succeeded()
    assert lim.scale == 1.0
    assert lim.wait_seconds(40) == 0.0


def test_a_request_above_the_whole_limit_waits_for_an_empty_window() -> None:
    lim, clock = limiter(rpm=None, tpm=100)
    assert lim.wait_seconds(500) == 0.0  # empty window: it may go (the server decides)
    lim.settle(lim.take(10))
    clock.now += 1
    lim.settle(lim.take(10))
    assert lim.wait_seconds(500) == 60.0


def test_acquire_wakes_when_an_in_flight_request_is_released() -> None:
    async def scenario() -> tuple[int, int]:
        lim, _clock = limiter(rpm=1, tpm=None)
        blocking = await lim.acquire(1)
        waiter = asyncio.create_task(lim.acquire(1))
        await asyncio.sleep(0)  # let it find the window full and start waiting (no timeout: inf)
        assert not waiter.done()
        lim.release(blocking)
        ticket = await asyncio.wait_for(waiter, timeout=30)
        return ticket.tokens, lim.stats.waits

    tokens, waits = asyncio.run(scenario())
    assert tokens == 1 and waits == 1
