"""Estimates come from the shipped table (or an override file) with the documented batch discounts."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvest_defs.harvest import pricing


def test_batch_price_is_half_the_standard_price_for_dated_ids() -> None:
    standard = pricing.estimate_message_usd("claude-haiku-4-5", 2_000_000, 1_000_000)
    assert standard == pytest.approx(2 * 1.0 + 1 * 5.0)
    assert pricing.estimate_batch_usd("claude-haiku-4-5-20251001", 2_000_000, 1_000_000) == pytest.approx(
        standard / 2
    )
    assert pricing.estimate_batch_usd("claude-unknown-9", 10**6, 10**6) == 0.0
    assert not pricing.claude_model_known("claude-unknown-9")


def test_voyage_batch_discount_and_override_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert pricing.estimate_voyage_usd("voyage-3.5", 1_000_000) == pytest.approx(0.06)
    assert pricing.estimate_voyage_usd("voyage-3.5", 1_000_000, batch=True) == pytest.approx(0.06 * 0.67)
    override = tmp_path / "prices.toml"
    override.write_text(
        'as_of = "2030-01-01"\n[voyage]\n"voyage-3.5" = 1.0\n[discounts]\nvoyage_batch = 0.5\n'
    )
    monkeypatch.setenv(pricing.PRICES_ENV, str(override))
    assert pricing.prices_as_of() == "2030-01-01"
    assert pricing.estimate_voyage_usd("voyage-3.5", 1_000_000, batch=True) == pytest.approx(0.5)
