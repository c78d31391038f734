"""The one input-token estimate: ``count_input_tokens(params)`` (system, messages, tools).

Shared by the library (the pre-send cost estimate, ``est_max_usd``) and the emulator (what it bills), so
the estimate and the bill agree by construction offline. It lives on the library side because data flows
one way: the emulator may import the library, never the reverse.

Everything that bills or limits input tokens goes through here: ``POST /v1/messages`` usage,
``/v1/messages/count_tokens``, batch results, TPM rate limiting and prompt-cache accounting. So a cost
estimate made with ``count_tokens`` (over HTTP, or by importing :func:`count_input_tokens`) is exactly what
the emulator then bills, with or without caching (cache reads + writes + uncached = the same total).

Rules (deterministic, documented here because the real tokenizer is not public):

- text: `count_tokens` (4 characters per token, rounded up) **per block**; a string
  ``content`` or ``system`` is one block;
- images: ``ceil(width * height / 750)`` after the documented down-scaling to a long edge of at most
  1568 px and at most 1.15 megapixels (https://docs.claude.com/en/docs/build-with-claude/vision, "Calculate
  image costs"); dimensions are read from the PNG/GIF/JPEG/WebP header; an image the emulator cannot
  measure (URL or file source, unknown format) counts as the documented maximum of ~1600 tokens;
- tools: one block per tool, the compact JSON of its definition without ``cache_control``;
- any other block (``tool_use``, ``tool_result``, ``document``, ``thinking``, ...): its text fields, else
  the compact JSON of the block without ``cache_control``.

Order is the cache-prefix order the docs give: tools, then system, then messages
(https://docs.claude.com/en/docs/build-with-claude/prompt-caching, "Cache prefix").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Characters per token of text: the emulator's documented rule (the real tokenizer is not public).
CHARS_PER_TOKEN = 4

IMAGE_MAX_LONG_EDGE = 1568
IMAGE_MAX_PIXELS = 1_150_000
IMAGE_PIXELS_PER_TOKEN = 750
IMAGE_UNKNOWN_TOKENS = 1600


def count_tokens(text: str) -> int:
    """Tokens of one text block: ``ceil(len / CHARS_PER_TOKEN)``, at least 1 for non-empty text."""
    if not text:
        return 0
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


@dataclass(frozen=True, slots=True)
class Segment:
    """One cacheable unit of the prompt, in prefix order.

    ``digest`` identifies the block's content (cache keys chain the digests of the whole prefix);
    ``cache_control`` is the block's own breakpoint, if any.
    """

    tokens: int
    digest: bytes
    cache_control: Mapping[str, Any] | None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, JPEG or WebP header, or None when the format is not recognised."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return int(width) & 0x3FFF, int(height) & 0x3FFF
        if chunk == b"VP8L" and len(data) >= 25:
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        return None
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def image_tokens_for_size(width: int, height: int) -> int:
    """Documented estimate ``w * h / 750`` after down-scaling to the API's size limits."""
    if width <= 0 or height <= 0:
        return IMAGE_UNKNOWN_TOKENS
    scale = min(1.0, IMAGE_MAX_LONG_EDGE / max(width, height), math.sqrt(IMAGE_MAX_PIXELS / (width * height)))
    w, h = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
    return max(1, math.ceil(w * h / IMAGE_PIXELS_PER_TOKEN))


def decode_base64(data: Any) -> bytes | None:
    """Strictly decoded base64, or None when the data is not valid base64 (the API rejects it)."""
    if not isinstance(data, str) or not data:
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def image_tokens(block: Mapping[str, Any]) -> int:
    source = block.get("source")
    if isinstance(source, Mapping) and source.get("type") == "base64":
        raw = decode_base64(source.get("data"))
        size = image_size(raw) if raw is not None else None
        if size is not None:
            return image_tokens_for_size(*size)
    return IMAGE_UNKNOWN_TOKENS


def _canonical(block: Any) -> str:
    if isinstance(block, Mapping):
        block = {k: v for k, v in block.items() if k != "cache_control"}
    return json.dumps(block, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _texts(value: Any) -> Iterator[str]:
    """Text fields of a non-text block (``tool_result`` content, ``document`` text source, ...)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, Mapping):
        for key in ("text", "thinking", "content", "data", "source"):
            if key in value and not (key == "data" and value.get("type") == "base64"):
                yield from _texts(value[key])


def block_tokens(block: Any) -> int:
    """Input tokens of one content block (see the module docstring for the rules)."""
    if isinstance(block, str):
        return count_tokens(block)
    if not isinstance(block, Mapping):
        return count_tokens(_canonical(block))
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return count_tokens(text) if isinstance(text, str) else 0
    if kind == "image":
        return image_tokens(block)
    if kind in ("tool_result", "document", "thinking", "redacted_thinking", "search_result"):
        content = block.get("content") if kind == "tool_result" else block
        inner = [b for b in content if isinstance(b, Mapping)] if isinstance(content, list) else None
        if inner and kind == "tool_result":
            return sum(block_tokens(b) for b in inner)
        texts = [t for t in _texts(content) if t]
        if texts:
            return sum(count_tokens(t) for t in texts)
    return count_tokens(_canonical(block))


def _digest(block: Any) -> bytes:
    return hashlib.blake2b(_canonical(block).encode("utf-8"), digest_size=16).digest()


def _blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [content] if content else []
    if isinstance(content, list):
        return content
    return []


def _control(block: Any) -> Mapping[str, Any] | None:
    if isinstance(block, Mapping):
        control = block.get("cache_control")
        if isinstance(control, Mapping):
            return control
    return None


def prompt_blocks(params: Mapping[str, Any]) -> Iterator[Any]:
    """Every prompt block in cache-prefix order: tools, system, then each message's content."""
    tools = params.get("tools")
    if isinstance(tools, list):
        yield from tools
    yield from _blocks(params.get("system"))
    messages = params.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, Mapping):
                yield from _blocks(message.get("content"))


def segments(params: Mapping[str, Any]) -> list[Segment]:
    """The prompt as cacheable segments (tools count as one block each, via their JSON definition)."""
    tools = params.get("tools")
    n_tools = len(tools) if isinstance(tools, list) else 0
    out: list[Segment] = []
    for i, block in enumerate(prompt_blocks(params)):
        tokens = count_tokens(_canonical(block)) if i < n_tools else block_tokens(block)
        out.append(Segment(tokens, _digest(block), _control(block)))
    return out


def count_input_tokens(params: Mapping[str, Any]) -> int:
    """Input tokens of a Messages request body, as ``count_tokens`` answers and ``usage`` bills them.

    ``params`` is a ``/v1/messages`` body (or a batch request's ``params``): ``system``, ``messages`` and
    ``tools`` count, everything else (model, max_tokens, ...) does not. The sum over :func:`segments`,
    so cache accounting splits exactly this total into read, written and uncached tokens.
    """
    messages = params.get("messages")
    system = params.get("system")
    if (
        "tools" not in params
        and isinstance(messages, list)
        and (system is None or isinstance(system, str))
        and all(isinstance(m, Mapping) and isinstance(m.get("content"), str) for m in messages)
    ):
        # Fast path for plain text requests (most batch requests): the same numbers as the general path.
        total = count_tokens(system) if system else 0
        return total + sum(count_tokens(m["content"]) for m in messages)
    return sum(segment.tokens for segment in segments(params))
