"""What both harvesters share about a batch in flight: its progress, and the errors worth a retry.

The Dagster sensors treat Claude and Voyage batches alike (``defs/batches.py``), so the progress type is
one type; each provider may add fields.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchProgress:
    """One poll: the provider's status word, its request counts, and whether results are final."""

    batch_id: str
    processing_status: str
    request_counts: dict[str, int]
    ended: bool


def transport_errors() -> tuple[type[BaseException], ...]:
    """Body-stream errors of the HTTP libraries the SDKs may use (anthropic 2.13 ships ``httpx2``).

    A results download cut mid-body raises these rather than an SDK error; they are safe to retry
    because the download restarts from the beginning into a temporary file.
    """
    errors: list[type[BaseException]] = []
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        errors.append(module.TransportError)
    return tuple(errors)
