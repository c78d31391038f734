"""POST /v1/messages through the real anthropic SDK (strict response validation) and raw HTTP."""

from __future__ import annotations

import re
from typing import Any

import anthropic
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harvest_defs.emulator import EmulatorServer
from harvest_defs.emulator.content import count_tokens, summarize

DOC = (
    "Batches are cheap. They take up to a day. Results stay for 29 days. "
    "Polling should back off. Nobody reads the fifth sentence."
)
PROMPT = f"Summarize:\n\n{DOC}"
MODEL = "claude-haiku-4-5"


def client(emulator: EmulatorServer, key: str = "sk-ant-test", retries: int = 0) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key=key,
        base_url=emulator.anthropic_base_url,
        _strict_response_validation=True,
        max_retries=retries,
    )


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def test_message_is_an_extractive_summary_with_usage(emulator: EmulatorServer) -> None:
    message = client(emulator).messages.create(
        model=MODEL, max_tokens=200, system="Be brief.", messages=user(PROMPT)
    )
    expected, _ = summarize(PROMPT, 200)
    assert message.id.startswith("msg_01") and message.type == "message" and message.role == "assistant"
    assert message.model == MODEL
    assert [block.type for block in message.content] == ["text"]
    assert (
        message.content[0].text
        == expected
        == "Batches are cheap. They take up to a day. Results stay for 29 days."
    )
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens == count_tokens(PROMPT) + count_tokens("Be brief.")
    assert message.usage.output_tokens == count_tokens(expected)
    assert message.usage.cache_creation_input_tokens == 0 and message.usage.cache_read_input_tokens == 0
    assert message.usage.service_tier == "standard"
    assert message._request_id is not None and message._request_id.startswith("req_")
    stats = emulator.stats()
    assert stats["anthropic_messages"] == 1
    assert stats["anthropic_input_tokens"] == message.usage.input_tokens
    assert stats["anthropic_output_tokens"] == message.usage.output_tokens


def test_max_tokens_cuts_the_answer(emulator: EmulatorServer) -> None:
    message = client(emulator).messages.create(model=MODEL, max_tokens=3, messages=user(PROMPT))
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens <= 3
    assert DOC.startswith(message.content[0].text)


def test_text_blocks_system_blocks_and_multi_turn(emulator: EmulatorServer) -> None:
    message = client(emulator).messages.create(
        model="claude-3-5-haiku-20241022",
        max_tokens=100,
        system=[{"type": "text", "text": "You summarize."}],
        messages=[
            {"role": "user", "content": "Summarize: Old turn. Ignore it."},
            {"role": "assistant", "content": "Old turn."},
            {"role": "user", "content": [{"type": "text", "text": "Summarize: Fresh text. Second one."}]},
        ],
        extra_body={"temperature": 0.0},
    )
    assert message.content[0].text == "Fresh text. Second one."
    assert message.model == "claude-3-5-haiku-20241022"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"max_tokens": 0, "messages": user("hi")}, "max_tokens"),
        ({"max_tokens": 10, "messages": []}, "messages"),
        ({"max_tokens": 10, "messages": [{"role": "system", "content": "hi"}]}, "messages.0.role"),
        ({"max_tokens": 10, "messages": user("")}, "non-empty"),
        ({"max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "text"}]}]}, "text"),
        ({"max_tokens": 10, "messages": user("hi"), "extra_body": {"temperature": 1.5}}, "temperature"),
        ({"max_tokens": 10, "messages": user("hi"), "extra_body": {"bogus": 1}}, "bogus"),
        ({"max_tokens": 10, "messages": user("hi"), "system": 5}, "system"),
        ({"max_tokens": 10_000_000, "messages": user("hi")}, "maximum allowed number of output tokens"),
    ],
)
def test_invalid_requests_are_bad_request_errors(
    emulator: EmulatorServer, kwargs: dict[str, Any], fragment: str
) -> None:
    # max_tokens above the model's limit would trip the SDK's own non-streaming timeout guard: lift it.
    with pytest.raises(anthropic.BadRequestError) as info:
        client(emulator).messages.create(model=MODEL, timeout=30, **kwargs)
    assert info.value.status_code == 400
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert fragment in info.value.message
    assert info.value.request_id is not None
    assert emulator.stats().get("anthropic_messages", 0) == 0


def test_missing_required_fields_over_raw_http(emulator: EmulatorServer) -> None:
    url = f"{emulator.anthropic_base_url}/v1/messages"
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    for body, field in [
        ({}, "model: Field required"),
        ({"model": MODEL, "messages": user("hi")}, "max_tokens: Field required"),
        ({"model": MODEL, "max_tokens": 5}, "messages: Field required"),
    ]:
        response = httpx.post(url, json=body, headers=headers)
        assert response.status_code == 400
        assert response.headers["content-type"].endswith("json")
        assert response.headers["request-id"].startswith("req_")
        payload = response.json()
        assert payload["type"] == "error"
        assert payload["error"] == {"type": "invalid_request_error", "message": field}
        assert payload["request_id"] == response.headers["request-id"]
    bad_json = httpx.post(url, content=b"{not json", headers=headers)
    assert bad_json.status_code == 400 and "JSON" in bad_json.json()["error"]["message"]


def test_unknown_model_is_not_found(emulator: EmulatorServer) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        client(emulator).messages.create(model="claude-nonexistent-9", max_tokens=10, messages=user("hi"))
    assert info.value.body["error"] == {"type": "not_found_error", "message": "model: claude-nonexistent-9"}  # type: ignore[index]


def test_bad_key_is_authentication_error(emulator: EmulatorServer) -> None:
    emulator.configure(valid_api_keys=["sk-ant-good"])
    with pytest.raises(anthropic.AuthenticationError) as info:
        client(emulator, key="sk-ant-bad").messages.create(model=MODEL, max_tokens=10, messages=user("hi"))
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert "sk-ant-bad" not in str(info.value)
    ok = client(emulator, key="sk-ant-good").messages.create(model=MODEL, max_tokens=10, messages=user("hi"))
    assert ok.content[0].text == "hi"


def test_rate_limit_is_429_with_retry_after(emulator: EmulatorServer) -> None:
    emulator.configure(anthropic_rpm=1)
    api = client(emulator)
    api.messages.create(model=MODEL, max_tokens=10, messages=user("first"))
    with pytest.raises(anthropic.RateLimitError) as info:
        api.messages.create(model=MODEL, max_tokens=10, messages=user("second"))
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(info.value.response.headers["retry-after"]) >= 1
    assert emulator.stats()["anthropic_429s"] == 1
    assert emulator.stats()["anthropic_messages"] == 1


def test_tokens_per_minute_limit(emulator: EmulatorServer) -> None:
    emulator.configure(anthropic_tpm=40)
    api = client(emulator)
    api.messages.create(model=MODEL, max_tokens=10, messages=user("x" * 120))  # 30 tokens
    with pytest.raises(anthropic.RateLimitError):
        api.messages.create(model=MODEL, max_tokens=10, messages=user("y" * 120))


def test_server_faults_are_internal_server_and_overloaded_errors(emulator: EmulatorServer) -> None:
    emulator.configure(fault_rate_500=1.0)
    with pytest.raises(anthropic.InternalServerError) as info:
        client(emulator).messages.create(model=MODEL, max_tokens=10, messages=user("hi"))
    assert info.value.status_code == 500
    assert info.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    emulator.configure(fault_rate_500=0.0, fault_rate_529=1.0)
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        client(emulator).messages.create(model=MODEL, max_tokens=10, messages=user("hi"))
    assert isinstance(overloaded.value, anthropic.InternalServerError)
    assert overloaded.value.status_code == 529
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_sdk_retries_survive_a_transient_fault(emulator: EmulatorServer) -> None:
    """Seeded faults: with half the requests failing, the SDK's own retries still get an answer."""
    emulator.configure(fault_rate_529=0.5, seed=3)
    emulator.reset()
    api = client(emulator, retries=6)
    for i in range(4):
        assert api.messages.create(model=MODEL, max_tokens=10, messages=user(f"hi {i}")).content
    assert emulator.stats()["anthropic_messages"] == 4
    assert emulator.stats()["faults_529"] >= 1


def test_too_large_body_is_413(emulator: EmulatorServer) -> None:
    emulator.configure(anthropic_messages_max_bytes=1000)
    with pytest.raises(anthropic.APIStatusError) as info:
        client(emulator).messages.create(model=MODEL, max_tokens=10, messages=user("z" * 2000))
    assert info.value.status_code == 413
    assert info.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(["Alpha.", "beta", "gamma!", "delta?", " ", "\n", "x" * 30, "e.g."]), max_size=40
    ),
    st.integers(min_value=1, max_value=40),
)
def test_answer_is_the_leading_sentences_within_max_tokens(pieces: list[str], max_tokens: int) -> None:
    """summarize() (the emulator's answer) equals splitting the whole document and taking its lead."""
    document = " ".join(" ".join(pieces).split())
    text, stop = summarize(document, max_tokens)
    out: list[str] = []
    expected: tuple[str, str] | None = None
    for sentence in re.split(r"(?<=[.!?])\s+", document) if document else []:
        if count_tokens(" ".join([*out, sentence])) > max_tokens:
            if not out:
                expected = (document[: max_tokens * 4], "max_tokens")
            break
        out.append(sentence)
        if len(out) >= 3:
            break
    assert (text, stop) == (expected or (" ".join(out), "end_turn"))
    assert count_tokens(text) <= max_tokens
