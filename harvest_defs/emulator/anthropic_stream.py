"""``stream: true`` on ``POST /v1/messages``: the finished Message replayed as server-sent events.

Event order and shapes follow https://docs.claude.com/en/docs/build-with-claude/streaming:
``message_start`` (empty content, usage so far), then per block ``content_block_start`` /
``content_block_delta`` (``text_delta``, ``thinking_delta`` + ``signature_delta``, ``input_json_delta``) /
``content_block_stop``, then ``message_delta`` (stop reason, output tokens) and ``message_stop``. The
emulator generates the whole answer first (it is deterministic), so deltas are chunks of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from starlette.responses import StreamingResponse

from harvest_defs.emulator.errors import new_request_id

_CHUNK = 64


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


def _chunks(text: str) -> Iterator[str]:
    for start in range(0, len(text), _CHUNK):
        yield text[start : start + _CHUNK]


def _block_events(index: int, block: dict[str, Any]) -> Iterator[bytes]:
    kind = block["type"]
    if kind == "text":
        yield _event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
        )
        for piece in _chunks(block["text"]):
            delta = {"type": "text_delta", "text": piece}
            yield _event(
                "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
            )
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        yield _event(
            "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
        )
        for piece in _chunks(block["thinking"]):
            delta = {"type": "thinking_delta", "thinking": piece}
            yield _event(
                "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
            )
        delta = {"type": "signature_delta", "signature": block["signature"]}
        yield _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
    else:  # tool_use
        tool_start: dict[str, Any] = {**block, "input": {}}
        yield _event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": tool_start},
        )
        for piece in _chunks(json.dumps(block["input"], separators=(",", ":"), ensure_ascii=False)):
            delta = {"type": "input_json_delta", "partial_json": piece}
            yield _event(
                "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
            )
    yield _event("content_block_stop", {"type": "content_block_stop", "index": index})


def message_events(message: dict[str, Any]) -> Iterator[bytes]:
    """The SSE byte chunks for a complete Message body."""
    usage = dict(message["usage"])
    start_usage = {**usage, "output_tokens": 1}
    head = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}
    yield _event("message_start", {"type": "message_start", "message": head})
    yield _event("ping", {"type": "ping"})
    for index, block in enumerate(message["content"]):
        yield from _block_events(index, block)
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    final_usage = {
        "input_tokens": usage["input_tokens"],
        "cache_creation_input_tokens": usage.get("cache_creation_input_tokens", 0),
        "cache_read_input_tokens": usage.get("cache_read_input_tokens", 0),
        "output_tokens": usage["output_tokens"],
    }
    yield _event("message_delta", {"type": "message_delta", "delta": delta, "usage": final_usage})
    yield _event("message_stop", {"type": "message_stop"})


def stream_response(message: dict[str, Any]) -> StreamingResponse:
    return StreamingResponse(
        message_events(message), media_type="text/event-stream", headers={"request-id": new_request_id()}
    )
