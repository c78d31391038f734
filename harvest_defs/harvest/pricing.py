"""Cost estimates from a price table shipped as data (``prices.toml``), so a price change is a data edit.

Estimates, not invoices: they multiply token counts by list prices and the documented batch discounts.
:func:`billed_batch_usd` prices a result's whole usage (prompt-cache writes at 1.25x and reads at 0.1x
of the input price); the pre-send estimates price input as counted and output at max_tokens.
Unknown models estimate to 0.0 rather than failing a run: a missing price must never cost a harvest,
and the metadata still shows the token counts.
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

PRICES_ENV = "HARVEST_PRICES_FILE"
_DATED = re.compile(r"^(?P<family>.+?)-(?:\d{8}|latest)$")


@cache
def _load(path: str | None) -> dict[str, Any]:
    text = (
        Path(path).read_text(encoding="utf-8")
        if path
        else files("harvest_defs.harvest").joinpath("prices.toml").read_text(encoding="utf-8")
    )
    return tomllib.loads(text)


def price_table() -> dict[str, Any]:
    """The active table: ``$HARVEST_PRICES_FILE`` if set, else the shipped one."""
    return _load(os.environ.get(PRICES_ENV) or None)


def prices_as_of() -> str:
    return str(price_table().get("as_of", "unknown"))


def _family(model: str) -> str:
    """``claude-haiku-4-5-20251001`` and ``claude-3-5-haiku-latest`` price like their family."""
    match = _DATED.match(model)
    return match.group("family") if match else model


def claude_prices(model: str) -> tuple[float, float] | None:
    """(input, output) USD per million tokens at standard prices, or None for an unknown model."""
    table = price_table().get("claude", {})
    entry = table.get(model) or table.get(_family(model))
    return (float(entry[0]), float(entry[1])) if entry else None


def claude_model_known(model: str) -> bool:
    return claude_prices(model) is not None


def estimate_message_usd(model: str, input_tokens: int, output_tokens: int) -> float:
    """Standard (real-time Messages API) price."""
    prices = claude_prices(model)
    if prices is None:
        return 0.0
    return (input_tokens * prices[0] + output_tokens * prices[1]) / 1_000_000


def estimate_batch_usd(model: str, input_tokens: int, output_tokens: int) -> float:
    """Message Batches price: the standard price less the batch discount (50%)."""
    discount = float(price_table().get("discounts", {}).get("claude_batch", 0.5))
    return estimate_message_usd(model, input_tokens, output_tokens) * (1.0 - discount)


def voyage_price(model: str) -> float | None:
    entry = price_table().get("voyage", {}).get(model)
    return float(entry) if entry is not None else None


def estimate_voyage_usd(model: str, tokens: int, batch: bool = False) -> float:
    """Embedding price; ``batch=True`` applies the Voyage Batch API discount (33%)."""
    price = voyage_price(model)
    if price is None:
        return 0.0
    discount = float(price_table().get("discounts", {}).get("voyage_batch", 0.33)) if batch else 0.0
    return tokens * price / 1_000_000 * (1.0 - discount)


# Prompt caching multipliers on the input price (docs.claude.com prompt-caching "Pricing"): a 5-minute
# cache write costs 1.25x, a cache read 0.1x. They stack with the batch discount.
CACHE_WRITE_MULTIPLIER = 1.25
CACHE_READ_MULTIPLIER = 0.10


def estimate_cache_saving_usd(model: str, cache_read_tokens: int, cache_write_tokens: int) -> float:
    """What prompt caching saved at batch prices: reads at 0.9x off, less the 0.25x write premium."""
    prices = claude_prices(model)
    if prices is None:
        return 0.0
    discount = float(price_table().get("discounts", {}).get("claude_batch", 0.5))
    per_token = prices[0] / 1_000_000 * (1.0 - discount)
    saved = cache_read_tokens * (1.0 - CACHE_READ_MULTIPLIER) * per_token
    return saved - cache_write_tokens * (CACHE_WRITE_MULTIPLIER - 1.0) * per_token


def billed_batch_usd(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_write_tokens: int = 0,
    cache_read_tokens: int = 0,
) -> float:
    """What results' ``usage`` cost at Message Batches prices, prompt-cache tokens priced.

    ``input_tokens`` is the API's uncached input (it excludes cache reads and writes, as ``usage``
    reports it); cache writes cost 1.25x and reads 0.1x of the input price; all at the batch discount.
    """
    prices = claude_prices(model)
    if prices is None:
        return 0.0
    discount = float(price_table().get("discounts", {}).get("claude_batch", 0.5))
    per_input = prices[0] / 1_000_000
    cost = (
        input_tokens * per_input
        + cache_write_tokens * per_input * CACHE_WRITE_MULTIPLIER
        + cache_read_tokens * per_input * CACHE_READ_MULTIPLIER
        + output_tokens * prices[1] / 1_000_000
    )
    return cost * (1.0 - discount)
