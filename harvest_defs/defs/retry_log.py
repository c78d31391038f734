"""The SDKs' silent retries, made visible: each one a run-log warning with its attempt count.

The Anthropic SDK retries connection errors, 408/409/429 and 5xx itself (honouring ``retry-after``),
logging only ``Retrying request to /v1/... in 0.8 seconds`` at INFO on its own logger, which a Dagster run
does not show. A user then saw ~15 s of nothing and a bare ``Connection error.``. This handler forwards
each retry to the run's log as a warning naming the endpoint (base URL, never the key) and the attempt;
the SDK keeps doing the retrying, so its backoff and ``retry-after`` handling are unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SDK_LOGGERS = ("anthropic._base_client",)
_RETRY_PREFIX = "Retrying request to"


class RetryWarnings(logging.Handler):
    """Counts the SDK's retry records per URL path and warns on ``log`` for each."""

    def __init__(self, log: Any, base_url: str | None, max_retries: int | None) -> None:
        super().__init__(level=logging.INFO)
        self.log = log
        self.base_url = base_url or "the provider's default API URL"
        self.max_retries = max_retries
        self.attempts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.msg, str) or not record.msg.startswith(_RETRY_PREFIX):
            return
        args = record.args if isinstance(record.args, tuple) else ()
        path = str(args[0]) if args else "?"
        wait = float(str(args[1])) if len(args) > 1 else 0.0
        retry = self.attempts.get(path, 0) + 1
        self.attempts[path] = retry
        of = f" of {self.max_retries}" if self.max_retries else ""
        self.log.warning(
            f"{self.base_url}{path}: request failed, retry {retry}{of} in {wait:.1f} s "
            "(the SDK retries connection errors, 408/409/429 and 5xx, honouring retry-after)"
        )


@contextmanager
def sdk_retry_warnings(log: Any, base_url: str | None, max_retries: int | None = None) -> Iterator[None]:
    """Within the block, every SDK retry is a warning on ``log`` (a Dagster run or sensor logger)."""
    if max_retries is None:
        from harvest_defs.harvest.claude.settings import SDK_MAX_RETRIES

        max_retries = SDK_MAX_RETRIES
    from harvest_defs.defs.library_log import attached

    with attached(RetryWarnings(log, base_url, max_retries), SDK_LOGGERS):
        yield
