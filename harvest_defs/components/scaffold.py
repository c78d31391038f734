"""``dg scaffold defs harvest_defs.ClaudeBatchHarvest <folder>``: a working instance, not an empty stub.

Why write sample rows too: a scaffold that materializes as written (against the emulator or the real
API) shows every field in use; the user then points ``source`` at their own data and edits the prompt.
"""

from __future__ import annotations

import json
import re
from typing import Any

import dagster as dg
from dagster.components.scaffold.scaffold import ScaffoldRequest

SAMPLE_ROWS = [
    {"id": "r1", "text": "The parcel arrived two weeks late and the box was crushed.", "topic": "shipping"},
    {"id": "r2", "text": "Great support: my refund was processed the same day.", "topic": "billing"},
    {"id": "r3", "text": "The app crashes whenever I open the settings page.", "topic": "app"},
]


def example_attributes(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "source": {"files": "rows.jsonl"},
        "id_column": "id",
        "prompt_template": "Classify this customer message: {{ text }}",
        "system_prompt": "You classify customer messages for a support team.",
        "model": "claude-haiku-5-5",
        "max_tokens": 200,
        "output_schema": {
            "type": "object",
            "properties": {
                "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
                "summary": {"type": "string"},
            },
            "required": ["sentiment", "summary"],
            "additionalProperties": False,
        },
        "max_usd": 1.0,
    }


class HarvestScaffolder(dg.Scaffolder):
    def scaffold(self, request: ScaffoldRequest) -> None:
        from dagster.components.component_scaffolding import scaffold_component

        name = re.sub(r"[^a-z0-9_]", "_", request.target_path.name.lower()).strip("_") or "my_harvest"
        if name[0].isdigit():
            name = f"h_{name}"
        request.target_path.mkdir(parents=True, exist_ok=True)
        rows = request.target_path / "rows.jsonl"
        if not rows.exists():
            rows.write_text("".join(json.dumps(r) + "\n" for r in SAMPLE_ROWS), encoding="utf-8")
        scaffold_component(request, example_attributes(name))
