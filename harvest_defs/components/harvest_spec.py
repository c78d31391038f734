"""``HarvestSpec``: one ``ClaudeBatchHarvest`` instance, resolved and checked — what its assets run on.

Why a plain dataclass between the YAML model and the assets: everything a run needs to rebuild the exact
requests (and so their content hashes, the cache keys) lives here, so the submit run, the collect run and
the sensor all compute the same requests from the same rows. Rendering goes through Jinja2 with
``StrictUndefined``: a template naming a column the row lacks fails loudly instead of sending "None".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from harvest_defs.components.output_schema import OutputSchema
from harvest_defs.components.sources import ResolvedSource

if TYPE_CHECKING:
    from harvest_defs.harvest.claude import ClaudeBatchHarvester
    from harvest_defs.harvest.claude.prompts import PreparedPrompts, PreparedRequest

ALL_ROWS = "__all__"  # the one "partition" of an unpartitioned instance, in the ledger and the table


@dataclass(frozen=True)
class HarvestSpec:
    name: str  # the results asset key and (by default) the table name
    table: str
    source: ResolvedSource
    id_column: str
    prompt_template: str
    model: str
    max_tokens: int
    system_prompt: str | None = None
    few_shot: tuple[tuple[str, str], ...] = ()
    temperature: float | None = None
    output_schema: OutputSchema | None = None
    partition_column: str | None = None
    max_usd: float | None = None
    max_usd_total: float | None = None
    deps: tuple[str, ...] = field(default_factory=tuple)

    # --- names ------------------------------------------------------------------------------------------
    @property
    def submit_name(self) -> str:
        return f"{self.name}_batches"

    @property
    def provider(self) -> str:
        """The ledger's submission namespace: each instance's sensor sees only its own submissions."""
        return f"claude:{self.name}"

    @property
    def partitions_name(self) -> str:
        return f"{self.name}_partitions"

    def ledger_partition(self, partition: str | None) -> str:
        return f"{self.name}:{partition or ALL_ROWS}"

    @property
    def qualified_table(self) -> str:
        return f"harvest.{self.table}"

    # --- prompts ----------------------------------------------------------------------------------------
    @cached_property
    def template(self) -> Any:
        import jinja2

        env = jinja2.Environment(
            undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
        )
        return env.from_string(self.prompt_template)

    def shared_prefix(self) -> str | None:
        """System prompt + few-shot examples: identical in every request, so it is what gets cached."""
        parts = [self.system_prompt] if self.system_prompt else []
        if self.few_shot:
            examples = "\n".join(
                f"<example>\n<input>\n{given}\n</input>\n<output>\n{wanted}\n</output>\n</example>"
                for given, wanted in self.few_shot
            )
            parts.append(f"<examples>\n{examples}\n</examples>")
        return "\n\n".join(parts) or None

    @cached_property
    def prefix_tokens(self) -> int:
        from harvest_defs.harvest.claude.settings import estimate_prompt_tokens

        prefix = self.shared_prefix()
        return estimate_prompt_tokens("", prefix) if prefix else 0

    @cached_property
    def cache_prefix(self) -> bool:
        """``cache_control`` on the prefix only when it reaches the model's minimum cacheable length."""
        from harvest_defs.harvest.claude.settings import min_cacheable_tokens

        return self.prefix_tokens >= min_cacheable_tokens(self.model)

    def prompts(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One prompt per row. Warehouse sources are only checked here (their columns exist at run time)."""
        if rows and self.id_column not in rows[0]:
            from harvest_defs.components.sources import SourceError

            raise SourceError(
                f"{self.name}: the source has no id column {self.id_column!r}: {sorted(rows[0])}"
            )
        return [
            {"custom_id": str(row[self.id_column]), "text": self.template.render(**row)}
            for row in rows
            if row.get(self.id_column) is not None
        ]

    def prepare(self, harvester: ClaudeBatchHarvester, rows: Sequence[Mapping[str, Any]]) -> PreparedPrompts:
        return harvester.prepare(
            self.prompts(rows),
            self.model,
            self.max_tokens,
            self.shared_prefix(),
            self.temperature,
            output_config=self.output_schema.output_config() if self.output_schema else None,
            cache_system=self.cache_prefix,
        )

    # --- budget -----------------------------------------------------------------------------------------
    def upper_bound_usd(self, requests: Sequence[PreparedRequest]) -> tuple[float, int, int]:
        """(USD, input tokens, output tokens) if every request used its whole ``max_tokens``, at batch prices.

        An upper bound on purpose: each request's prefix is priced as a cache *write* (1.25x, the most a
        cached prefix can cost), the rest of its input at the full batch input price, and the output as
        ``max_tokens``. The schema of ``output_config`` is counted as input too (the API adds a system
        prompt for it).
        """
        from harvest_defs.harvest.claude.settings import CHARS_PER_TOKEN
        from harvest_defs.harvest.pricing import CACHE_WRITE_MULTIPLIER, claude_prices, price_table

        prices = claude_prices(self.model) or (0.0, 0.0)
        discount = float(price_table().get("discounts", {}).get("claude_batch", 0.5))
        schema_tokens = 0
        if self.output_schema is not None:
            import orjson

            schema_tokens = math.ceil(len(orjson.dumps(self.output_schema.schema)) / CHARS_PER_TOKEN)
        prefix_rate = CACHE_WRITE_MULTIPLIER if self.cache_prefix else 1.0
        text_tokens = sum(math.ceil(len(r.text) / CHARS_PER_TOKEN) for r in requests) + len(requests) * (
            schema_tokens
        )
        prefix_tokens = self.prefix_tokens * len(requests)
        out_tokens = sum(r.max_tokens for r in requests)
        usd = (
            text_tokens * prices[0] + prefix_tokens * prefix_rate * prices[0] + out_tokens * prices[1]
        ) / 1e6
        return usd * (1.0 - discount), text_tokens + prefix_tokens, out_tokens
