"""Prompt caching, billed the way the Messages API documents it.

https://docs.claude.com/en/docs/build-with-claude/prompt-caching (and the platform.claude.com copy):

- breakpoints are blocks with ``cache_control: {"type": "ephemeral", "ttl"?: "5m" | "1h"}`` on tools,
  system blocks or message content blocks; a top-level ``cache_control`` ("automatic caching") puts one
  on the last block of the prompt; at most 4 breakpoints;
- the prefix up to a breakpoint is cached only if it reaches the model's minimum cacheable length;
- a request reads the longest cached prefix that ends at one of its breakpoints
  (``cache_read_input_tokens``), writes everything after it up to its last cacheable breakpoint
  (``cache_creation_input_tokens``, split by TTL in ``usage.cache_creation``), and ``input_tokens`` is the
  rest: the tokens after the last breakpoint (plus any prefix too short to cache);
- an entry lives ``ttl`` after its last use (a read refreshes it).

Simplification (a judgement call): the real API also looks back up to 20 blocks before a breakpoint for
a hit; the emulator only matches prefixes that end exactly at a breakpoint, which is what identical
repeated prompts — the case the project cares about — exercise. Batches are best-effort, as documented
("cache hits ... on a best-effort basis" in https://docs.claude.com/en/docs/build-with-claude/batch-processing):
a would-be hit inside a batch is a hit with probability ``batch_cache_hit_rate``, decided by a hash of
the custom_id, so reruns are identical.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harvest_defs.emulator.tokens import Segment, segments

MAX_BREAKPOINTS = 4
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}

# Minimum cacheable prompt length per model, from the prompt-caching page's table ("Cache limitations").
_MINIMUMS: tuple[tuple[str, int], ...] = (
    ("claude-opus-4-5", 4096),
    ("claude-opus-4-6", 4096),
    ("claude-haiku-4-5", 4096),
    ("claude-3-5-haiku", 2048),
    ("claude-3-haiku", 2048),
)
DEFAULT_MINIMUM = 1024


def minimum_cacheable_tokens(model: str) -> int:
    for prefix, minimum in _MINIMUMS:
        if model.startswith(prefix):
            return minimum
    return DEFAULT_MINIMUM


@dataclass(frozen=True, slots=True)
class CacheUsage:
    input_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0

    def usage_fields(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.ephemeral_5m_input_tokens,
                "ephemeral_1h_input_tokens": self.ephemeral_1h_input_tokens,
            },
        }


@dataclass(frozen=True, slots=True)
class Breakpoint:
    end: int  # tokens of the prefix up to and including the breakpoint block
    key: bytes  # model + digests of every block of that prefix
    ttl: str


def breakpoints(model: str, params: Mapping[str, Any]) -> tuple[list[Breakpoint], int]:
    """The request's breakpoints in prefix order and its total input tokens."""
    segs: Sequence[Segment] = segments(params)
    automatic = params.get("cache_control")
    chain = hashlib.blake2b(model.encode("utf-8"), digest_size=16)
    out: list[Breakpoint] = []
    total = 0
    last = len(segs) - 1
    for i, seg in enumerate(segs):
        total += seg.tokens
        chain.update(seg.digest)
        control = seg.cache_control
        if control is None and i == last and isinstance(automatic, Mapping):
            control = automatic
        if control is not None:
            ttl = control.get("ttl") or "5m"
            out.append(Breakpoint(total, chain.copy().digest(), ttl if ttl in TTL_SECONDS else "5m"))
    return out, total


def breakpoint_error(params: Mapping[str, Any]) -> str | None:
    """The documented 400s: more than 4 breakpoints, or a 1h entry after a 5m one."""
    points, _ = breakpoints(str(params.get("model", "")), params)
    if len(points) > MAX_BREAKPOINTS:
        return (
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(points)}."
        )
    seen_5m = False
    for point in points:
        if point.ttl == "5m":
            seen_5m = True
        elif seen_5m:
            return (
                "a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block. "
                "Note that blocks are processed in the following order: `tools`, `system`, `messages`."
            )
    return None


@dataclass
class PromptCache:
    """Cached prefixes by key -> expiry time; lives in ``EmulatorState`` and is cleared on reset."""

    entries: dict[bytes, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

    def account(
        self, model: str, params: Mapping[str, Any], now: float, hit_allowed: bool = True
    ) -> CacheUsage:
        """Bill one request against the cache and update it (reads refresh, writes insert)."""
        points, total = breakpoints(model, params)
        if not points:
            return CacheUsage(total)
        minimum = minimum_cacheable_tokens(model)
        cacheable = [p for p in points if p.end >= minimum]
        if not cacheable:
            return CacheUsage(total)
        with self.lock:
            read_at = 0
            hit: Breakpoint | None = None
            if hit_allowed:
                for point in cacheable:
                    expiry = self.entries.get(point.key)
                    if expiry is not None and expiry > now:
                        hit, read_at = point, point.end
            writes = {"5m": 0, "1h": 0}
            start = read_at
            for point in cacheable:
                if point.end <= read_at:
                    continue
                writes[point.ttl] += point.end - start
                start = point.end
            for point in cacheable:
                if point.end > read_at or point is hit:
                    expiry = now + TTL_SECONDS[point.ttl]
                    self.entries[point.key] = max(expiry, self.entries.get(point.key, 0.0))
        written = writes["5m"] + writes["1h"]
        return CacheUsage(
            input_tokens=total - read_at - written,
            cache_creation_input_tokens=written,
            cache_read_input_tokens=read_at,
            ephemeral_5m_input_tokens=writes["5m"],
            ephemeral_1h_input_tokens=writes["1h"],
        )


def batch_hit_allowed(custom_id: str, rate: float) -> bool:
    """Deterministic best-effort cache hit inside a batch: a hash of the custom_id against the rate."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.blake2b(custom_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate
