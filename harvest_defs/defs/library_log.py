"""The library's progress lines in the Dagster run log: a 10M-prompt run shows where it is.

The harvesters log progress with counts while they stream (per input window: texts read, sent, reused;
per Claude chunk: submitted, resumed, adopted) on Python loggers, ``harvest_defs.harvest.*`` and
``harvest_defs.claude``. A Dagster run shows only its own ``context.log`` (unless the instance lists
``python_logs.managed_python_loggers``), so inside an asset those lines were lost and a long load looked
stalled. Within :func:`library_progress` each record at INFO or above is forwarded to the run's log at its
own level. The library never puts keys in these messages (its error text is scrubbed the same way).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

LIBRARY_LOGGERS = ("harvest_defs.harvest", "harvest_defs.claude")


class _ToRunLog(logging.Handler):
    def __init__(self, log: Any) -> None:
        super().__init__(level=logging.INFO)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed library record must not fail the run
            return
        if record.levelno >= logging.ERROR:
            self.log.error(message)
        elif record.levelno >= logging.WARNING:
            self.log.warning(message)
        else:
            self.log.info(message)


@contextmanager
def attached(handler: logging.Handler, names: Iterable[str]) -> Iterator[None]:
    """``handler`` on the loggers ``names`` (lowered to INFO if quieter) for the block, then as before."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def library_progress(log: Any) -> AbstractContextManager[None]:
    """Within the block, the library's INFO+ records are lines of ``log`` (a Dagster run logger)."""
    return attached(_ToRunLog(log), LIBRARY_LOGGERS)
