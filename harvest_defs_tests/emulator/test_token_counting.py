"""One token estimate everywhere: ``count_tokens`` over HTTP == ``count_input_tokens`` == billed usage."""

from __future__ import annotations

import base64
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harvest_defs.emulator import EmulatorServer
from harvest_defs.emulator.content import count_tokens
from harvest_defs.emulator.tokens import count_input_tokens, image_size, image_tokens_for_size
from harvest_defs_tests.emulator.clients import client

MODEL = "claude-opus-4-6"
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=300)
BLOCK = st.one_of(
    TEXT.map(lambda t: {"type": "text", "text": t}),
    st.builds(
        lambda t, i: {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": t},
        TEXT,
        st.integers(0, 9),
    ),
    TEXT.map(
        lambda t: {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": t}}
    ),
)
CONTENT = st.one_of(TEXT, st.lists(BLOCK, min_size=1, max_size=4))
TOOL = st.builds(
    lambda name, text: {
        "name": name,
        "description": text,
        "input_schema": {"type": "object", "properties": {}},
    },
    st.from_regex(r"[a-z_]{1,20}", fullmatch=True),
    TEXT,
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    turns = draw(st.integers(0, 2))
    messages: list[dict[str, Any]] = [{"role": "user", "content": draw(CONTENT)}]
    for _ in range(turns):
        messages += [{"role": "assistant", "content": draw(TEXT)}, {"role": "user", "content": draw(CONTENT)}]
    params: dict[str, Any] = {"model": MODEL, "messages": messages}
    if draw(st.booleans()):
        params["system"] = draw(
            st.one_of(TEXT, st.lists(TEXT.map(lambda t: {"type": "text", "text": t}), min_size=1))
        )
    tools = draw(st.lists(TOOL, max_size=2, unique_by=lambda t: t["name"]))
    if tools:
        params["tools"] = tools
    return params


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=requests())
def test_count_tokens_equals_the_function_and_the_billed_usage(
    emulator: EmulatorServer, params: dict[str, Any]
) -> None:
    api = client(emulator)
    counted = api.messages.count_tokens(**params).input_tokens
    assert counted == count_input_tokens(params)
    assert api.messages.create(max_tokens=64, **params).usage.input_tokens == counted


def test_text_blocks_count_separately_and_tools_count_as_json(emulator: EmulatorServer) -> None:
    blocks = [{"type": "text", "text": "abcde"}, {"type": "text", "text": "fgh"}]
    params: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": blocks}]}
    assert count_input_tokens(params) == count_tokens("abcde") + count_tokens("fgh") == 3
    with_tool = {**params, "tools": [{"name": "t", "input_schema": {"type": "object"}}]}
    tool_json = '{"input_schema":{"type":"object"},"name":"t"}'
    assert count_input_tokens(with_tool) == 3 + count_tokens(tool_json)
    assert client(emulator).messages.count_tokens(**with_tool).input_tokens == 3 + count_tokens(tool_json)


def test_image_headers_of_every_documented_format() -> None:
    png = (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + b"IHDR"
        + struct.pack(">II", 640, 480)
        + b"\x08\x02\x00\x00\x00"
    )
    gif = b"GIF89a" + struct.pack("<HH", 320, 200) + b"\x00" * 8
    jpeg = (
        b"\xff\xd8"
        + b"\xff\xe0\x00\x10"
        + b"JFIF\x00"
        + b"\x00" * 9
        + b"\xff\xc0\x00\x11\x08"
        + struct.pack(">HH", 300, 400)
        + b"\x00" * 12
    )
    webp = (
        b"RIFF"
        + b"\x00" * 4
        + b"WEBPVP8X"
        + b"\x00" * 8
        + (99).to_bytes(3, "little")
        + (49).to_bytes(3, "little")
    )
    assert image_size(png) == (640, 480)
    assert image_size(gif) == (320, 200)
    assert image_size(jpeg) == (400, 300)
    assert image_size(webp) == (100, 50)
    assert image_size(b"not an image") is None
    assert image_tokens_for_size(640, 480) == 410  # ceil(640 * 480 / 750)
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/gif", "data": base64.b64encode(gif).decode()},
    }
    params = {"model": MODEL, "messages": [{"role": "user", "content": [image]}]}
    assert count_input_tokens(params) == image_tokens_for_size(320, 200) == 86
    url_image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    assert (
        count_input_tokens({"messages": [{"role": "user", "content": [url_image]}]}) == 1600
    )  # unmeasurable
