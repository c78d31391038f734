"""Prompt caching billed as documented: writes, reads, TTLs (on an injectable clock), minimums, batches."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.emulator.content import count_tokens
from harvest_defs.emulator.prompt_cache import minimum_cacheable_tokens
from harvest_defs.emulator.tokens import count_input_tokens
from harvest_defs_tests.emulator.clients import client

MODEL = "claude-sonnet-4-6"  # 1024-token minimum
BIG = "The ledger records every batch before it is created. " * 120  # ~1,620 tokens
QUESTION = "Summarize:\n\nThe ledger records every batch. Nothing is paid twice."


def params(ttl: str | None = None, question: str = QUESTION, model: str = MODEL) -> dict[str, Any]:
    control: dict[str, Any] = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return {
        "model": model,
        "max_tokens": 200,
        "system": [{"type": "text", "text": BIG, "cache_control": control}],
        "messages": [{"role": "user", "content": question}],
    }


def usage(emulator: EmulatorServer, body: dict[str, Any]) -> Any:
    return client(emulator).messages.create(**body).usage


def test_first_request_writes_then_identical_prefix_reads(emulator: EmulatorServer) -> None:
    prefix, tail = count_tokens(BIG), count_tokens(QUESTION)
    assert prefix >= minimum_cacheable_tokens(MODEL)
    first = usage(emulator, params())
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens, first.input_tokens) == (
        prefix,
        0,
        tail,
    )
    assert first.cache_creation is not None
    assert first.cache_creation.ephemeral_5m_input_tokens == prefix
    assert first.cache_creation.ephemeral_1h_input_tokens == 0
    second = usage(emulator, params(question="Summarize:\n\nA different question entirely."))
    assert second.cache_read_input_tokens == prefix and second.cache_creation_input_tokens == 0
    assert second.input_tokens == count_tokens("Summarize:\n\nA different question entirely.")
    # The three parts always add up to the uncached count (what count_tokens says).
    assert first.input_tokens + first.cache_creation_input_tokens == count_input_tokens(params())
    stats = emulator.stats()
    assert stats["anthropic_cache_creation_input_tokens"] == prefix
    assert stats["anthropic_cache_read_input_tokens"] == prefix


def test_ttl_expiry_on_the_clock_and_refresh_on_read(emulator: EmulatorServer) -> None:
    usage(emulator, params())
    emulator.configure(clock_offset_seconds=240)  # 4 min later: a hit, which refreshes the entry
    assert usage(emulator, params()).cache_read_input_tokens > 0
    emulator.configure(clock_offset_seconds=480)  # 8 min after the write, 4 after the read: still alive
    assert usage(emulator, params()).cache_read_input_tokens > 0
    emulator.configure(clock_offset_seconds=480 + 301)  # more than 5 min since the last use: expired
    expired = usage(emulator, params())
    assert expired.cache_read_input_tokens == 0 and expired.cache_creation_input_tokens == count_tokens(BIG)


def test_one_hour_ttl_is_billed_separately_and_outlives_five_minutes(emulator: EmulatorServer) -> None:
    first = usage(emulator, params(ttl="1h"))
    assert first.cache_creation is not None
    assert first.cache_creation.ephemeral_1h_input_tokens == count_tokens(BIG)
    assert first.cache_creation.ephemeral_5m_input_tokens == 0
    emulator.configure(clock_offset_seconds=1800)
    assert usage(emulator, params(ttl="1h")).cache_read_input_tokens == count_tokens(BIG)


def test_two_breakpoints_split_the_write_by_ttl(emulator: EmulatorServer) -> None:
    body = params(ttl="1h")
    body["system"].append(
        {"type": "text", "text": "Extra rules. " * 10, "cache_control": {"type": "ephemeral"}}
    )
    first = usage(emulator, body)
    assert first.cache_creation is not None
    assert first.cache_creation.ephemeral_1h_input_tokens == count_tokens(BIG)
    assert first.cache_creation.ephemeral_5m_input_tokens == count_tokens("Extra rules. " * 10)
    assert first.input_tokens == count_tokens(QUESTION)  # only the tokens after the last breakpoint
    body["system"][1]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    body["system"][0]["cache_control"] = {"type": "ephemeral"}
    with pytest.raises(anthropic.BadRequestError) as info:  # 1h after 5m is documented as invalid
        usage(emulator, body)
    assert "must not come after" in info.value.message


def test_prefix_below_the_model_minimum_is_not_cached(emulator: EmulatorServer) -> None:
    haiku = params(model="claude-haiku-4-5")  # 4096-token minimum (prompt-caching docs)
    assert minimum_cacheable_tokens("claude-haiku-4-5") == 4096 > count_tokens(BIG)
    result = usage(emulator, haiku)
    assert result.cache_creation_input_tokens == result.cache_read_input_tokens == 0
    assert result.input_tokens == count_input_tokens(haiku)


def test_more_than_four_breakpoints_is_400(emulator: EmulatorServer) -> None:
    body = params()
    body["system"] = [
        {"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}} for i in range(5)
    ]
    with pytest.raises(anthropic.BadRequestError) as info:
        usage(emulator, body)
    assert "A maximum of 4 blocks with cache_control" in info.value.message


def test_automatic_caching_with_top_level_cache_control(emulator: EmulatorServer) -> None:
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "cache_control": {"type": "ephemeral"},
        "messages": [{"role": "user", "content": BIG}],
    }
    assert usage(emulator, body).cache_creation_input_tokens == count_tokens(BIG)
    again = usage(emulator, body)
    assert again.cache_read_input_tokens == count_tokens(BIG) and again.input_tokens == 0


def test_tools_are_cacheable_and_reset_clears_the_cache(emulator: EmulatorServer) -> None:
    tool = {
        "name": "lookup",
        "description": BIG,
        "input_schema": {"type": "object", "properties": {}},
        "cache_control": {"type": "ephemeral"},
    }
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 50,
        "tools": [tool],
        "messages": [{"role": "user", "content": "hi"}],
    }
    written = usage(emulator, body).cache_creation_input_tokens
    assert written > 1024
    assert usage(emulator, body).cache_read_input_tokens == written
    emulator.reset()
    assert usage(emulator, body).cache_read_input_tokens == 0


@pytest.mark.parametrize(("rate", "hits"), [(1.0, 3), (0.0, 0)])
def test_batch_cache_hits_follow_the_configured_rate(
    emulator: EmulatorServer, rate: float, hits: int
) -> None:
    emulator.configure(batch_cache_hit_rate=rate)
    requests: list[Any] = [
        {"custom_id": f"r{i}", "params": params(question=f"Question {i}?")} for i in range(4)
    ]
    api = client(emulator)  # one client: results() streams, and a collected client closes its socket
    batch = api.messages.batches.create(requests=requests)
    results = sorted(api.messages.batches.results(batch.id), key=lambda r: r.custom_id)
    reads = [r.result.message.usage.cache_read_input_tokens for r in results]  # type: ignore[union-attr]
    writes = [r.result.message.usage.cache_creation_input_tokens for r in results]  # type: ignore[union-attr]
    assert sum(1 for r in reads if r) == hits
    assert writes[0] == count_tokens(BIG)  # the first request always writes
    assert all(r.result.message.usage.service_tier == "batch" for r in results)  # type: ignore[union-attr]
    stats = emulator.stats()
    assert stats.get("anthropic_cache_read_input_tokens", 0) == sum(reads)
    assert stats["anthropic_cache_creation_input_tokens"] == sum(writes)
