"""Inputs → validated, hashed, token-estimated texts → requests that fit the API's limits.

Token estimate: ``ceil(len(text) / 4)`` (at least 1). Voyage documents roughly 4–5 characters per token
for English, so the estimate is on the high side for prose, and it is exactly the rule the local emulator
bills and limits by. Packing keeps a safety margin below the per-request token limit (``PACK_MARGIN``) so
that text which tokenizes denser than the estimate (code, non-Latin scripts) still fits; a request the API
still rejects for size is split in two and retried (see ``realtime``), so a wrong estimate costs one
extra request, never a failed run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harvest_defs.harvest.hashing import text_hash
from harvest_defs.harvest.voyage.settings import MAX_INPUTS_PER_REQUEST, VoyageModel

CHARS_PER_TOKEN = 4
PACK_MARGIN = 0.9  # fill requests to 90% of the model's per-request token limit


def estimate_tokens(text: str) -> int:
    """Heuristic token count (see module docstring)."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN)) if text else 0


@dataclass(frozen=True)
class EmbedInput:
    """One text to embed. ``text`` is the caller's (stored and hashed); ``send`` is what goes on the wire."""

    embedding_id: str
    text: str
    text_hash: str
    send: str
    tokens: int  # estimate of ``send``
    truncated: bool = False


@dataclass(frozen=True)
class Rejected:
    """An input that is not sent, with the reason (reported, never dropped silently)."""

    embedding_id: str | None
    position: int
    reason: str


@dataclass
class PreparedInputs:
    inputs: list[EmbedInput] = field(default_factory=list)
    too_long: list[Rejected] = field(default_factory=list)  # truncation=False and over the context
    rejected: list[Rejected] = field(default_factory=list)  # invalid items, when not strict


class InvalidInputsError(ValueError):
    """Inputs that cannot be sent at all (empty, not text, duplicate ids): raised before any API call."""

    def __init__(self, problems: Sequence[Rejected]) -> None:
        self.problems = list(problems)
        shown = "; ".join(
            f"#{p.position}{f' (id {p.embedding_id!r})' if p.embedding_id else ''}: {p.reason}"
            for p in self.problems[:20]
        )
        more = f" (and {len(self.problems) - 20} more)" if len(self.problems) > 20 else ""
        super().__init__(f"{len(self.problems)} invalid Voyage input(s), nothing was sent: {shown}{more}")


def default_embedding_id(digest: str) -> str:
    """Deterministic id for a plain-string input: the same text always gets the same row."""
    return f"txt-{digest[:40]}"


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """Client-side truncation by estimate, so packing never counts more than the model would keep."""
    return text[: max_tokens * CHARS_PER_TOKEN]


def prepare_inputs(
    texts: Iterable[str | Mapping[str, Any]],
    spec: VoyageModel,
    *,
    truncation: bool = True,
    strict: bool = True,
    position_offset: int = 0,
) -> PreparedInputs:
    """Validate and normalize every input before money is spent.

    Strings get a deterministic id from their hash (duplicates collapse into one row); dicts need a
    ``text`` and may carry an ``id``. Empty or non-string text and duplicate dict ids raise
    :class:`InvalidInputsError` listing all of them (``strict=False``: they are returned in ``rejected``
    and the valid rest goes on). Over-long texts are truncated (``truncation=True``) or
    returned in ``too_long`` (the others are still embedded). ``position_offset``: where ``texts`` starts
    in the whole input when it is one window of a stream (``voyage/stream.py``).
    """
    prepared = PreparedInputs()
    problems: list[Rejected] = []
    seen: dict[str, str] = {}
    for position, item in enumerate(texts, start=position_offset):
        explicit_id: str | None = None
        if isinstance(item, Mapping):
            raw_id = item.get("id")
            explicit_id = None if raw_id is None else str(raw_id)
            text = item.get("text")
        else:
            text = item
        if not isinstance(text, str):
            problems.append(
                Rejected(explicit_id, position, f"text must be a string, got {type(text).__name__}")
            )
            continue
        if not text.strip():
            problems.append(Rejected(explicit_id, position, "empty text"))
            continue
        try:
            digest = text_hash(text)
        except UnicodeEncodeError:  # a lone surrogate: not UTF-8, the API could never receive it
            problems.append(Rejected(explicit_id, position, "text is not valid Unicode (lone surrogate)"))
            continue
        embedding_id = explicit_id if explicit_id is not None else default_embedding_id(digest)
        if embedding_id in seen:
            if explicit_id is None and seen[embedding_id] == digest:
                continue  # the same plain string twice: one embedding serves both
            problems.append(Rejected(embedding_id, position, "duplicate id"))
            continue
        seen[embedding_id] = digest
        tokens = estimate_tokens(text)
        send, truncated = text, False
        if tokens > spec.context_tokens:
            if not truncation:
                prepared.too_long.append(
                    Rejected(
                        embedding_id,
                        position,
                        f"~{tokens} tokens exceeds {spec.name}'s context of {spec.context_tokens} "
                        "(truncation=False)",
                    )
                )
                continue
            send, truncated = truncate_to_tokens(text, spec.context_tokens), True
            tokens = estimate_tokens(send)
        prepared.inputs.append(EmbedInput(embedding_id, text, digest, send, tokens, truncated))
    if problems and strict:
        raise InvalidInputsError(problems)
    prepared.rejected = problems
    return prepared


def request_token_budget(spec: VoyageModel, tpm: int | None) -> int:
    """Tokens per request to aim for.

    At most ``PACK_MARGIN`` of the model's limit, and at most 1/20 of the TPM budget: a request that is a
    large share of a minute's tokens makes the rate limiter lumpy (it must wait for the whole share to
    leave the 60 s window) and leaves a long tail; 20 requests per minute keeps it smooth while staying
    far below any RPM limit.
    """
    budget = int(spec.request_tokens * PACK_MARGIN)
    if tpm:
        budget = min(budget, max(1, tpm // 20))
    return max(1, budget)


def pack_requests(
    inputs: Sequence[EmbedInput], max_tokens: int, max_inputs: int = MAX_INPUTS_PER_REQUEST
) -> Iterator[list[EmbedInput]]:
    """Greedy, order-preserving packing: ≤ ``max_inputs`` inputs and ≤ ``max_tokens`` estimated tokens.

    A single input above ``max_tokens`` (possible only when the budget is below the context window) goes
    alone in its request rather than being rejected.
    """
    max_inputs = max(1, min(max_inputs, MAX_INPUTS_PER_REQUEST))
    current: list[EmbedInput] = []
    tokens = 0
    for item in inputs:
        if current and (len(current) >= max_inputs or tokens + item.tokens > max_tokens):
            yield current
            current, tokens = [], 0
        current.append(item)
        tokens += item.tokens
    if current:
        yield current


def split_tokens(total: int, weights: Sequence[int]) -> list[int]:
    """Split a request's billed ``total`` across its texts by estimated tokens (largest remainder).

    The API reports usage per request, not per text. Shares are proportional to each text's estimate and
    rounded so that they sum to exactly ``total``: per-request sums are always the billed figure, and
    when the estimate is the real tokenizer (the emulator) each text gets its exact count.
    """
    if not weights:
        return []
    weight_sum = sum(weights)
    if weight_sum <= 0:
        weights = [1] * len(weights)
        weight_sum = len(weights)
    quotas = [total * w / weight_sum for w in weights]
    shares = [math.floor(q) for q in quotas]
    remainder = total - sum(shares)
    order = sorted(range(len(quotas)), key=lambda i: quotas[i] - shares[i], reverse=True)
    for i in order[:remainder]:
        shares[i] += 1
    return shares
