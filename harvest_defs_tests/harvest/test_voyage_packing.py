"""Validation, token estimates and packing: pure functions, no network."""

from __future__ import annotations

import math

import pytest

from harvest_defs.harvest.voyage.packing import (
    InvalidInputsError,
    estimate_tokens,
    pack_requests,
    prepare_inputs,
    request_token_budget,
    split_tokens,
)
from harvest_defs.harvest.voyage.settings import model_spec


def test_split_tokens_sums_exactly_and_follows_the_weights() -> None:
    assert split_tokens(10, [1, 1, 1]) == [4, 3, 3]
    assert sum(split_tokens(1001, [3, 5, 7, 11])) == 1001
    assert split_tokens(26, [3, 5, 7, 11]) == [3, 5, 7, 11]  # estimate == billed: exact per text
    assert split_tokens(0, [2, 2]) == [0, 0]


def test_1001_texts_are_packed_into_two_requests_of_at_most_1000() -> None:
    spec = model_spec("voyage-3.5")
    inputs = prepare_inputs([f"text {i}" for i in range(1001)], spec).inputs
    requests = list(pack_requests(inputs, request_token_budget(spec, None)))
    assert [len(r) for r in requests] == [1000, 1]


def test_requests_stay_under_the_token_budget_and_an_oversized_text_goes_alone() -> None:
    spec = model_spec("voyage-3-large")
    inputs = prepare_inputs(
        ["x" * 400_000, *["y" * 40_000] * 1, *[f"{i} " + "z" * 40_000 for i in range(5)]], spec
    )
    budget = 20_000
    requests = list(pack_requests(inputs.inputs, budget))
    assert sum(len(r) for r in requests) == 7
    for request in requests:
        assert len(request) == 1 or sum(i.tokens for i in request) <= budget


def test_invalid_inputs_are_all_listed_before_anything_is_sent() -> None:
    with pytest.raises(InvalidInputsError) as info:
        prepare_inputs(
            ["ok", "", {"id": "a", "text": "x"}, {"id": "a", "text": "y"}, {"id": "b", "text": 3}],
            model_spec("voyage-3.5"),
        )
    reasons = [(p.position, p.reason) for p in info.value.problems]
    assert [pos for pos, _ in reasons] == [1, 3, 4]
    assert "duplicate id" in str(info.value) and "empty text" in str(info.value)


def test_the_same_plain_string_twice_is_one_embedding() -> None:
    prepared = prepare_inputs(["same", "same", "other"], model_spec("voyage-3.5"))
    assert len(prepared.inputs) == 2


def test_over_long_text_is_truncated_or_reported() -> None:
    spec = model_spec("voyage-law-2")  # 16k context
    text = "word " * 20_000  # 100k chars ~ 25k tokens
    [item] = prepare_inputs([text], spec).inputs
    assert item.truncated and item.tokens == spec.context_tokens and item.text == text
    prepared = prepare_inputs([{"id": "long", "text": text}, "short"], spec, truncation=False)
    assert [i.text for i in prepared.inputs] == ["short"]
    assert [r.embedding_id for r in prepared.too_long] == ["long"]
    assert estimate_tokens(text) == math.ceil(len(text) / 4)


def test_unsupported_output_dimension_is_rejected() -> None:
    with pytest.raises(ValueError, match="output_dimension"):
        model_spec("voyage-law-2").dimension(512)
    assert model_spec("voyage-3.5").dimension(256) == 256
