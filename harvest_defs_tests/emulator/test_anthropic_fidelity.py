"""Issue 11: documented Messages parameters and behaviours, through the anthropic SDK (strict validation)."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import anthropic
import httpx
import jsonschema
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.emulator.content import count_tokens
from harvest_defs.emulator.tokens import count_input_tokens, image_tokens_for_size
from harvest_defs_tests.emulator.clients import client

MODEL = "claude-sonnet-4-6"
DOC = "Batches are cheap. They take up to a day. Results stay for 29 days. Polling should back off."
PROMPT = f"Summarize:\n\n{DOC}"
WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
}


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def png(width: int, height: int) -> str:
    """A real (tiny-bodied) PNG of the given size, base64: only the header matters for token counting."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + body).decode()


def test_documented_top_level_params_are_accepted(emulator: EmulatorServer) -> None:
    message = client(emulator).messages.create(
        model=MODEL,
        max_tokens=300,
        messages=user(PROMPT),
        cache_control={"type": "ephemeral"},
        speed="standard",
        diagnostics={"previous_message_id": "msg_01x"},
        output_config={"effort": "low"},
        service_tier="standard_only",
        metadata={"user_id": "u-1"},
    )
    assert message.content[0].type == "text" and message.content[0].text.startswith("Batches are cheap.")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 512}}, "greater than or equal to 1024"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2000}}, "max_tokens: must be greater than"),
        ({"service_tier": "priority"}, "service_tier: Input should be 'auto' or 'standard_only'"),
        ({"metadata": {"user_id": "u", "team": "x"}}, "metadata.team: Extra inputs are not permitted"),
        ({"tool_choice": {"type": "auto"}}, "tool_choice may only be specified while providing tools"),
        ({"speed": "warp"}, "speed: Input should be 'standard' or 'fast'"),
        ({"cache_control": {"type": "ephemeral", "ttl": "2h"}}, "cache_control.ttl"),
        ({"unknown_param": 1}, "unknown_param: Extra inputs are not permitted"),
        (
            {
                "thinking": {"type": "enabled", "budget_tokens": 1024},
                "tools": [WEATHER_TOOL],
                "tool_choice": {"type": "any"},
            },
            "Thinking may not be enabled when tool_choice forces tool use",
        ),
    ],
)
def test_documented_invalid_values_are_400(
    emulator: EmulatorServer, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client(emulator).messages.create(
            model=MODEL, max_tokens=2000, messages=user(PROMPT), extra_body=extra
        )
    assert message in info.value.message


def test_invalid_base64_image_is_400_and_images_count_tokens(emulator: EmulatorServer) -> None:
    bad = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "not base64!"}}
    with pytest.raises(anthropic.BadRequestError) as info:
        client(emulator).messages.create(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": [bad]}]
        )
    assert "messages.0.content.0.source.base64.data" in info.value.message
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png(300, 200)}}
    content: list[Any] = [image, {"type": "text", "text": "Describe it."}]
    message = client(emulator).messages.create(
        model=MODEL, max_tokens=50, messages=[{"role": "user", "content": content}]
    )
    expected = image_tokens_for_size(300, 200) + count_tokens("Describe it.")
    assert expected == 80 + 3  # 300*200/750 = 80: the documented formula
    assert message.usage.input_tokens == expected
    # A huge image is scaled down first (long edge 1568, 1.15 MP): about 1,533 tokens, never 100k.
    assert image_tokens_for_size(8000, 8000) == 1533  # 1072 x 1072 px


def test_missing_anthropic_version_header_is_400(emulator: EmulatorServer) -> None:
    response = httpx.post(
        f"{emulator.anthropic_base_url}/v1/messages",
        json={"model": MODEL, "max_tokens": 5, "messages": user("hi")},
        headers={"x-api-key": "k"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }


def test_unknown_routes_and_methods_answer_each_api_in_json(emulator: EmulatorServer) -> None:
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    for method, path, status in [
        ("GET", "/v1/nope", 404),
        ("GET", "/v1/messages", 405),
        ("DELETE", "/v1/messages/count_tokens", 405),
    ]:
        response = httpx.request(method, f"{emulator.anthropic_base_url}{path}", headers=headers)
        assert response.status_code == status
        body = response.json()
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
        assert body["error"]["type"] == ("not_found_error" if status == 404 else "invalid_request_error")
    voyage = httpx.get(f"{emulator.voyage_base_url}/rerank", headers={"authorization": "Bearer k"})
    assert voyage.status_code == 405 and isinstance(voyage.json()["detail"], str)
    with pytest.raises(anthropic.NotFoundError):
        client(emulator).get("/v1/does-not-exist", cast_to=object)


def test_count_tokens_matches_billed_usage_and_the_python_function(emulator: EmulatorServer) -> None:
    params: dict[str, Any] = {
        "model": MODEL,
        "system": [
            {"type": "text", "text": "You are terse."},
            {"type": "text", "text": "Answer in English."},
        ],
        "messages": [
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": "Batches are cheap."},
            {"role": "user", "content": [{"type": "text", "text": "And then?"}]},
        ],
        "tools": [WEATHER_TOOL],
    }
    counted = client(emulator).messages.count_tokens(**params)
    assert counted.input_tokens == count_input_tokens(params)
    message = client(emulator).messages.create(max_tokens=100, **params)
    assert message.usage.input_tokens == counted.input_tokens
    api = client(emulator)  # one client: results() streams, and a collected client closes its socket
    batch = api.messages.batches.create(
        requests=[{"custom_id": "a", "params": {"max_tokens": 100, **params}}]
    )
    result = next(iter(api.messages.batches.results(batch.id)))
    assert result.result.type == "succeeded"
    assert result.result.message.usage.input_tokens == counted.input_tokens
    with pytest.raises(anthropic.NotFoundError):
        client(emulator).messages.count_tokens(model="claude-nope", messages=user("x"))


def test_stop_sequences_cut_the_text(emulator: EmulatorServer) -> None:
    message = client(emulator).messages.create(
        model=MODEL, max_tokens=300, messages=user(PROMPT), stop_sequences=["never", "a day"]
    )
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "a day"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Batches are cheap. They take up to "
    assert message.usage.output_tokens == count_tokens(message.content[0].text)
    untouched = client(emulator).messages.create(
        model=MODEL, max_tokens=300, messages=user(PROMPT), stop_sequences=["zebra"]
    )
    assert untouched.stop_reason == "end_turn" and untouched.stop_sequence is None


@pytest.mark.parametrize("choice", [{"type": "tool", "name": "get_weather"}, {"type": "any"}])
def test_forced_tool_returns_schema_valid_tool_use(emulator: EmulatorServer, choice: dict[str, Any]) -> None:
    prompt = "What is the weather in Paris, in fahrenheit please?"
    message = client(emulator).messages.create(
        model=MODEL,
        max_tokens=300,
        messages=user(prompt),
        tools=[WEATHER_TOOL],
        tool_choice=choice,  # type: ignore[arg-type]
    )
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use" and block.name == "get_weather" and block.id.startswith("toolu_01")
    jsonschema.validate(block.input, WEATHER_TOOL["input_schema"])
    assert block.input["unit"] == "fahrenheit"  # the enum member the prompt mentions
    again = client(emulator).messages.create(
        model=MODEL,
        max_tokens=300,
        messages=user(prompt),
        tools=[WEATHER_TOOL],
        tool_choice=choice,  # type: ignore[arg-type]
    )
    assert again.content[0].model_dump() == block.model_dump()  # deterministic, id included
    auto = client(emulator).messages.create(
        model=MODEL, max_tokens=300, messages=user(prompt), tools=[WEATHER_TOOL], tool_choice={"type": "auto"}
    )
    assert auto.stop_reason == "end_turn" and auto.content[0].type == "text"


def test_tool_choice_naming_a_missing_tool_is_400(emulator: EmulatorServer) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client(emulator).messages.create(
            model=MODEL,
            max_tokens=50,
            messages=user("x"),
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            tool_choice={"type": "tool", "name": "other"},
        )
    assert "Tool 'other' not found" in info.value.message


def test_thinking_returns_a_signed_thinking_block_within_budget(emulator: EmulatorServer) -> None:
    message = client(emulator).messages.create(
        model=MODEL,
        max_tokens=1500,
        messages=user(PROMPT),
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.thinking and thinking.signature
    assert text.type == "text" and text.text.startswith("Batches are cheap.")
    assert count_tokens(thinking.thinking) <= 1024
    assert message.usage.output_tokens == count_tokens(thinking.thinking) + count_tokens(text.text)
    omitted = client(emulator).messages.create(
        model=MODEL,
        max_tokens=1500,
        messages=user(PROMPT),
        thinking={"type": "adaptive", "display": "omitted"},
    )
    assert omitted.content[0].type == "thinking" and omitted.content[0].thinking == ""
    assert omitted.usage.output_tokens > count_tokens(omitted.content[1].text)  # thinking is still billed


@pytest.mark.parametrize(
    "extra",
    [
        {"thinking": {"type": "enabled", "budget_tokens": 1024}},
        {"tools": [WEATHER_TOOL], "tool_choice": {"type": "any"}},
    ],
)
def test_streaming_replays_the_same_message(emulator: EmulatorServer, extra: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {"model": MODEL, "max_tokens": 1500, "messages": user(PROMPT), **extra}
    with client(emulator).messages.stream(**kwargs) as stream:
        streamed = stream.get_final_message()
    plain = client(emulator).messages.create(**kwargs)
    assert [b.model_dump() for b in streamed.content] == [b.model_dump() for b in plain.content]
    assert streamed.usage.output_tokens == plain.usage.output_tokens
    assert streamed.stop_reason == plain.stop_reason == ("tool_use" if "tools" in extra else "end_turn")


def test_batches_accept_documented_params_and_return_rich_results(emulator: EmulatorServer) -> None:
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 300,
        "messages": user("What is the weather in Oslo in celsius?"),
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "output_config": {"effort": "medium"},
        "speed": "standard",
        "cache_control": {"type": "ephemeral"},
    }
    requests: list[Any] = [
        {"custom_id": "tool", "params": params},
        {
            "custom_id": "stop",
            "params": {
                "model": MODEL,
                "max_tokens": 300,
                "messages": user(PROMPT),
                "stop_sequences": ["day"],
            },
        },
        {"custom_id": "plain", "params": {"model": MODEL, "max_tokens": 300, "messages": user(PROMPT)}},
    ]
    api = client(emulator)
    batch = api.messages.batches.create(requests=requests)
    results = {r.custom_id: r.result for r in api.messages.batches.results(batch.id)}
    assert all(r.type == "succeeded" for r in results.values())
    tool = results["tool"].message  # type: ignore[union-attr]
    assert tool.stop_reason == "tool_use" and tool.content[0].input["unit"] == "celsius"  # type: ignore[union-attr]
    assert tool.usage.service_tier == "batch"
    stop = results["stop"].message  # type: ignore[union-attr]
    assert stop.stop_reason == "stop_sequence" and stop.stop_sequence == "day"
    assert results["plain"].message.content[0].text.startswith("Batches are cheap.")  # type: ignore[union-attr]


def test_beta_batches_accept_the_beta_params(emulator: EmulatorServer) -> None:
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": user(PROMPT),
        "thread": {"type": "create"},
        "fallbacks": "default",
        "compaction": {"type": "summarize", "instructions": "short"},
        "context_management": {"edits": []},
    }
    beta = client(emulator).beta.messages.batches.create(
        requests=[{"custom_id": "b", "params": params}], extra_query={"beta": "true"}
    )
    assert beta.processing_status == "in_progress"
    with_header = client(emulator).beta.messages.batches.create(
        requests=[{"custom_id": "b", "params": params}], betas=["compact-2026-01-12"]
    )
    assert with_header.request_counts.processing == 1
    with pytest.raises(anthropic.BadRequestError) as info:  # the same params on the non-beta endpoint
        client(emulator).messages.batches.create(requests=[{"custom_id": "b", "params": params}])
    assert "Extra inputs are not permitted" in info.value.message
