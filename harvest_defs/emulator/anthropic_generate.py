"""What the emulated model "writes": content blocks, stop reason and output tokens for a parsed request.

Plain requests get the extractive text of :func:`content.summarize` (unchanged behaviour the rest of the
project relies on). Requests with extras get, deterministically:

- ``thinking`` (``enabled`` or ``adaptive``): a thinking block first, with an opaque ``signature``; its
  tokens are billed as output and come out of ``max_tokens``
  (https://docs.claude.com/en/docs/build-with-claude/extended-thinking); ``display: "omitted"`` returns
  an empty ``thinking`` string, still billed;
- a forced tool (``tool_choice`` ``tool`` or ``any``): a single ``tool_use`` block whose ``input``
  validates against the tool's ``input_schema``, ``stop_reason: "tool_use"``
  (https://docs.claude.com/en/docs/agents-and-tools/tool-use/implement-tool-use, "Forcing tool use");
  ``auto`` never calls a tool (the emulator has no reason to);
- ``output_config.format``: the text is JSON valid against the schema (:mod:`structured`);
- ``stop_sequences``: the text is cut before the first stop sequence it would contain, with
  ``stop_reason: "stop_sequence"`` and ``stop_sequence`` set (https://docs.claude.com/en/api/messages).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harvest_defs.emulator.anthropic_params import Extras, MessageParams
from harvest_defs.emulator.anthropic_wire import base62
from harvest_defs.emulator.content import CHARS_PER_TOKEN, count_tokens, summarize
from harvest_defs.emulator.structured import generate as generate_value


@dataclass(frozen=True, slots=True)
class Generated:
    content: list[dict[str, Any]]
    stop_reason: str
    stop_sequence: str | None
    output_tokens: int

    @property
    def plain_text(self) -> str | None:
        """The text when the answer is one text block with no stop sequence (the batch fast path)."""
        if len(self.content) == 1 and self.content[0]["type"] == "text" and self.stop_sequence is None:
            text: str = self.content[0]["text"]
            return text
        return None


def _digest(*parts: str) -> bytes:
    h = hashlib.blake2b(digest_size=32)
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.digest()


def _cut(text: str, max_tokens: int) -> tuple[str, str]:
    if count_tokens(text) <= max_tokens:
        return text, "end_turn"
    return text[: max(0, max_tokens) * CHARS_PER_TOKEN], "max_tokens"


def _thinking(extras: Extras, prompt: str, max_tokens: int) -> tuple[dict[str, Any], int]:
    thinking = extras.thinking or {}
    budget = thinking.get("budget_tokens") if thinking.get("type") == "enabled" else None
    budget = budget if isinstance(budget, int) else max(1, max_tokens // 4)
    question = " ".join(prompt.split())[:400]
    text = (
        f"The request: {question} "
        "I will answer with the document's leading sentences, quoting it rather than paraphrasing."
    )
    text, _ = _cut(text, min(budget, max_tokens - 1))
    tokens = count_tokens(text)
    signature = base64.b64encode(_digest("thinking", text)).decode("ascii")
    shown = "" if thinking.get("display") == "omitted" else text
    return {"type": "thinking", "thinking": shown, "signature": signature}, tokens


def _apply_stops(text: str, stops: tuple[str, ...]) -> tuple[str, str | None]:
    first: tuple[int, str] | None = None
    for stop in stops:
        at = text.find(stop)
        if at >= 0 and (first is None or at < first[0]):
            first = (at, stop)
    if first is None:
        return text, None
    return text[: first[0]], first[1]


def _tool_use(tool: Mapping[str, Any], prompt: str) -> tuple[dict[str, Any], int]:
    value = generate_value(tool.get("input_schema") or {"type": "object"}, prompt)
    tool_input = value if isinstance(value, dict) else {}
    name = str(tool.get("name", "tool"))
    block = {
        "type": "tool_use",
        "id": "toolu_01" + base62(_digest("tool_use", name, prompt)[:17]),
        "name": name,
        "input": tool_input,
    }
    return block, count_tokens(json.dumps(tool_input, separators=(",", ":")))


def generate(parsed: MessageParams) -> Generated:
    """The answer to a validated request (pure function of it)."""
    extras = parsed.extras
    if extras is None:
        text, stop_reason = summarize(parsed.prompt, parsed.max_tokens)
        return Generated([{"type": "text", "text": text}], stop_reason, None, count_tokens(text))
    content: list[dict[str, Any]] = []
    budget = parsed.max_tokens
    spent = 0
    if extras.thinking is not None and budget > 1:
        block, spent = _thinking(extras, parsed.prompt, budget)
        content.append(block)
        budget -= spent
    if extras.forced_tool is not None:
        block, tokens = _tool_use(extras.forced_tool, parsed.prompt)
        content.append(block)
        return Generated(content, "tool_use", None, spent + tokens)
    if extras.has_output_schema:
        value = generate_value(extras.output_schema, parsed.prompt)
        text, stop_reason = _cut(json.dumps(value, ensure_ascii=False), budget)
    else:
        text, stop_reason = summarize(parsed.prompt, budget)
    stop_sequence = None
    if extras.stop_sequences:
        text, stop_sequence = _apply_stops(text, extras.stop_sequences)
        if stop_sequence is not None:
            stop_reason = "stop_sequence"
    content.append({"type": "text", "text": text})
    return Generated(content, stop_reason, stop_sequence, spent + count_tokens(text))
