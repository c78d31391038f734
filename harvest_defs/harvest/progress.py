"""What both harvesters share about a batch in flight: its progress, the errors worth a retry, downloads.

The Dagster sensors treat Claude and Voyage batches alike (``defs/batches.py``), so the progress type is
one type; each provider may add fields.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BatchProgress:
    """One poll: the provider's status word, its request counts, and whether results are final."""

    batch_id: str
    processing_status: str
    request_counts: dict[str, int]
    ended: bool
    # The API answered 404 for it (or its results are gone): marked lost in the ledger, never polled again.
    lost: bool = False


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


def download_atomically(
    path: Path,
    fetch: Callable[[Path], None],
    retry_on: tuple[type[BaseException], ...],
    attempts: int,
) -> Path:
    """``fetch(part_file)`` with retries, then rename: ``path`` only ever holds a whole download.

    The SDKs retry failed requests but not a body cut mid-stream; ``fetch`` restarts from the beginning
    into a pid-named part file, so a retry or a concurrent process never reads half a file. The part
    file is removed when every attempt failed.
    """
    from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    fetch_with_retries = retry(
        retry=retry_if_exception_type((*retry_on, *transport_errors())),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.5, max=10),
        reraise=True,
    )(fetch)
    try:
        fetch_with_retries(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path
