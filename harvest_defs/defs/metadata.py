"""Materialization metadata: the numbers a user looks at in the Dagster UI, built the same way everywhere.

Kept in one place so every asset reports cost and progress with the same names (``requests_sent``,
``est_usd``, ...), which is what makes them plottable across runs in the asset's metadata plots.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg

MAX_FAILURE_ROWS = 10


def _cell(value: Any, limit: int = 120) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failures_markdown(failures: Iterable[Mapping[str, Any]], *, limit: int = MAX_FAILURE_ROWS) -> str:
    """A Markdown table of the first failed requests (id, error type, message)."""
    lines = ["| custom_id | error_type | error |", "|---|---|---|"]
    shown = 0
    for failure in failures:
        if shown >= limit:
            break
        lines.append(
            f"| {_cell(failure.get('custom_id'), 64)} | {_cell(failure.get('error_type'), 40)} "
            f"| {_cell(failure.get('error'))} |"
        )
        shown += 1
    if shown == 0:
        return "No failed requests."
    return "\n".join(lines)


def usd(value: float | None) -> dg.MetadataValue:
    """Dollars as a plottable float: cents from $0.01 up, 6 significant digits below a cent.

    (``0.000030959999999999995`` is what a raw float of a Voyage estimate showed in the UI.)
    """
    amount = float(value or 0.0)
    if abs(amount) >= 0.01 or amount == 0.0:
        return dg.MetadataValue.float(round(amount, 2))
    return dg.MetadataValue.float(float(f"{amount:.6g}"))


def as_metadata(values: Mapping[str, Any]) -> dict[str, Any]:
    """Drop ``None`` values: Dagster rejects them, and "unknown" is clearer as an absent key."""
    return {key: value for key, value in values.items() if value is not None}
