"""Seconds per index-build step, logged as each ends: a 1M-row build runs for minutes, so show where it is."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("harvest_defs.rag.index")


class BuildClock:
    """Laps of a build (``phases``: step name -> seconds), each logged at INFO when it ends."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._mark = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.phases[name] = round(now - self._mark, 3)
        self._mark = now
        log.info("index build: %s took %.1f s", name, self.phases[name])
