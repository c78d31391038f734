"""Emulator knobs: timing, limits, rate limits and fault injection.

One dataclass, settable from CLI flags, a TOML file, or ``POST /_emulator/config`` at run time, so a test
can lower a limit or turn on faults against a server that is already running.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

MB = 1024 * 1024


@dataclass
class EmulatorConfig:
    # Time a Message Batch / Voyage batch takes from creation to ended/completed (0 = next retrieve).
    batch_processing_seconds: float = 1.0
    # Added to every API response (not admin endpoints).
    latency_ms: float = 0.0
    # Rate limits per minute; None = unlimited. A request over a limit gets 429 + retry-after.
    anthropic_rpm: int | None = None
    anthropic_tpm: int | None = None
    voyage_rpm: int | None = None
    voyage_tpm: int | None = None
    # Fault injection on API requests: fractions in [0, 1]. ``fault_paths`` limits them to requests whose
    # "METHOD /path" contains one of the strings (empty = every API request).
    fault_rate_500: float = 0.0
    fault_rate_529: float = 0.0
    fault_rate_drop: float = 0.0
    fault_paths: list[str] = field(default_factory=list)
    # Per-request outcomes inside batches (Anthropic and Voyage): fraction errored / expired.
    batch_errored_rate: float = 0.0
    batch_expired_rate: float = 0.0
    # Fraction of results downloads cut off mid-stream (truncated JSONL).
    results_truncate_rate: float = 0.0
    # Results become archived (results_url null, download 404) this many seconds after a batch ends.
    results_archive_seconds: float | None = None
    # Documented limits, lowerable for tests.
    anthropic_batch_max_requests: int = 100_000
    anthropic_batch_max_bytes: int = 256 * MB
    anthropic_messages_max_bytes: int = 32 * MB
    voyage_max_inputs: int = 1000
    voyage_batch_max_inputs: int = 100_000
    voyage_file_max_bytes: int = 1024 * MB
    # Prompt caching inside Message Batches is best-effort (documented): the fraction of would-be cache hits
    # that are hits, decided per request by a hash of its custom_id (deterministic).
    batch_cache_hit_rate: float = 1.0
    # Added to the wall clock the prompt cache uses for TTLs, so a test can expire entries without sleeping.
    clock_offset_seconds: float = 0.0
    # None = any non-empty key is accepted; otherwise only these keys.
    valid_api_keys: list[str] | None = None
    seed: int = 0

    def update(self, values: dict[str, Any]) -> None:
        """Apply a partial update; unknown keys are an error so typos do not silently do nothing."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown emulator config keys: {unknown}")
        for key, value in values.items():
            setattr(self, key, value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_toml(cls, path: str | Path) -> EmulatorConfig:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        config = cls()
        config.update(data.get("emulator", data))
        return config
