"""Bad input, property-based: whatever a caller passes, every bad item is reported (with its id) before
anything is sent, and nothing valid is lost.

Validation is pure, so hypothesis explores it without HTTP; two example-based tests then prove the
"before anything is sent" half against the emulator's counters (strict: 0 requests) and the lenient half
(the valid prompts go through, the invalid ones come back as rows).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dlt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.claude import ClaudeBatchHarvester, InvalidPromptsError, claude_message_batches
from harvest_defs.harvest.claude.prompts import prepare_prompts
from harvest_defs.harvest.claude.settings import CUSTOM_ID_PATTERN
from harvest_defs.harvest.voyage import InvalidInputsError, model_spec, voyage_embeddings_batch
from harvest_defs.harvest.voyage.packing import prepare_inputs
from harvest_defs_tests.conftest import TEST_ANTHROPIC_KEY, TEST_VOYAGE_KEY

# Text: any code point, including lone surrogates (not encodable as UTF-8), blanks and one huge text.
TEXTS = st.one_of(
    st.text(alphabet=st.characters(codec=None), max_size=40),
    st.sampled_from(["", "   ", "\n\t", "\u200b", "\ud800 lone", "x" * 200_000]),
)
IDS = st.one_of(
    st.none(),
    st.sampled_from(["doc_1", "doc_1", "doc-2", "has space", "", "ü", "a" * 65, "x/y"]),
    st.integers(-3, 3),
    st.text(max_size=8),
)
VALUES = st.one_of(
    st.none(), st.integers(), st.floats(allow_nan=True), TEXTS, st.lists(st.integers(), max_size=2)
)
PROMPTS = st.one_of(
    TEXTS,
    VALUES,
    st.fixed_dictionaries({"text": st.one_of(TEXTS, VALUES)}, optional={"custom_id": IDS}),
    st.dictionaries(
        st.sampled_from(["text", "custom_id", "max_tokens", "temperature", "system", "bogus"]), VALUES
    ),
)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _dup_indices(reason: str) -> set[int]:
    match = re.search(r"duplicate custom_id \(prompts ([^)]*)\)", reason)
    return {int(n) for n in re.findall(r"#(\d+)", match.group(1))} if match else set()


@FAST
@given(st.lists(PROMPTS, max_size=12))
def test_claude_validation_accounts_for_every_prompt(prompts: list[Any]) -> None:
    prepared = prepare_prompts(prompts, "claude-haiku-4-5", 64, None, None, 256 * 1024 * 1024)
    seen: dict[int, str] = {}
    for request in prepared.requests:
        seen[request.index] = "request"
        assert CUSTOM_ID_PATTERN.match(request.custom_id)
        request.body.decode("utf-8")  # what goes on the wire is valid UTF-8 JSON
    for item in prepared.invalid:
        # every rejection names an id (the caller's own, even a malformed one, else a generated one) and why
        assert isinstance(item.custom_id, str) and item.reason
        for index in _dup_indices(item.reason) or {item.index}:
            assert index not in seen, f"prompt #{index} both accepted and rejected"
            seen[index] = "invalid"
    unaccounted = [i for i in range(len(prompts)) if i not in seen]
    assert len(unaccounted) == prepared.duplicates_merged  # the rest: identical id-less repeats, merged
    assert len({r.custom_id for r in prepared.requests}) == len(prepared.requests)


@FAST
@given(st.lists(PROMPTS, max_size=12))
def test_voyage_validation_reports_all_bad_items_together_or_accepts_all(items: list[Any]) -> None:
    spec = model_spec("voyage-3.5")
    try:
        prepared = prepare_inputs(items, spec, truncation=True)
    except InvalidInputsError as error:  # the only exception allowed: one error naming every bad item
        positions = {p.position for p in error.problems}
        for position, item in enumerate(items):
            text = item.get("text") if isinstance(item, dict) else item
            if not isinstance(text, str) or not text.strip():
                assert position in positions, f"bad item #{position} not reported"
        return
    assert len(prepared.inputs) <= len(items)
    for item in prepared.inputs:
        item.send.encode("utf-8")
        assert item.tokens <= spec.context_tokens


def test_strict_sends_nothing_and_lenient_sends_the_valid_for_both_harvesters(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its own home: outside a pipeline the resources' default home is beside dlt's *last* active pipeline,
    # which under xdist is another test's, whose vector store may already hold texts like these.
    monkeypatch.setenv("HARVEST_HOME", str(tmp_path / "home"))
    # ...and no earlier test's pipeline as dlt's current one (its destination would be the cache looked in)
    dlt.pipeline("bad_input_no_destination", pipelines_dir=str(tmp_path / "dlt"))
    bad: list[Any] = [
        "fine prompt one",
        {"custom_id": "ok_2", "text": "fine prompt two"},
        None,
        "",
        {"custom_id": "bad id!", "text": "x"},
        {"custom_id": "dup", "text": "a"},
        {"custom_id": "dup", "text": "b"},
        {"text": "\ud800"},
        ["not", "a", "prompt"],
        {"text": "y", "temperature": 7},
    ]
    with pytest.raises(InvalidPromptsError) as claude_error:
        claude_message_batches(bad, model="claude-haiku-4-5", api_key=TEST_ANTHROPIC_KEY, strict=True)
    for marker in ("#2", "#3", "'bad id!'", "'dup'", "#7", "#8", "#9"):
        assert marker in str(claude_error.value), marker
    resource = voyage_embeddings_batch(
        bad, api_key=TEST_VOYAGE_KEY, base_url=emulator.voyage_base_url, strict=True
    )
    with pytest.raises(Exception) as voyage_error:
        list(resource)
    assert "4 invalid Voyage input" in str(voyage_error.value)
    assert emulator.stats().get("anthropic_http_requests", 0) == 0
    assert emulator.stats().get("voyage_http_requests", 0) == 0

    harvester = ClaudeBatchHarvester(
        TEST_ANTHROPIC_KEY,
        emulator.anthropic_base_url,
        ledger_path=tmp_path / "ledger.sqlite",
        raw_dir=tmp_path / "raw",
        poll_interval=0.05,
    )
    report = harvester.submit(bad, model="claude-haiku-4-5", max_tokens=16)  # lenient: the default
    assert report.requests_sent == 2 and len(report.invalid) == 7
    assert emulator.stats()["anthropic_batch_requests"] == 2

    lenient = voyage_embeddings_batch(bad, api_key=TEST_VOYAGE_KEY, base_url=emulator.voyage_base_url)
    rows = sum(table.num_rows for table in lenient)  # lenient: the default; the 6 valid texts go through
    assert rows == 6 and emulator.stats()["voyage_texts"] == 6
