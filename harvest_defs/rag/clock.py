"""Seconds and memory per index-build step, logged as each ends: a 1M-row build runs for minutes and its
peak memory decides which machine it needs, so show where the time and the memory go.

Memory is read, not sampled: the process's current RSS at the end of a step (``/proc/self/statm``, Linux)
and its peak so far (``ru_maxrss``). A step whose ``peak_mb`` is higher than the previous step's raised the
process peak; no background thread, so it costs two system calls a step.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import time
from pathlib import Path

log = logging.getLogger("harvest_defs.rag.index")
_STATM = Path("/proc/self/statm")
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 4096 / 2**20


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 2**20 if sys.platform == "darwin" else peak / 1024, 1)


def rss_mb() -> float:
    """This process's resident memory now, in MB (the peak so far where /proc is missing)."""
    try:
        return round(int(_STATM.read_text().split()[1]) * _PAGE_MB, 1)
    except (OSError, IndexError, ValueError):
        return peak_rss_mb()


class BuildClock:
    """Laps of a build: ``phases`` (step -> seconds) and ``memory`` (step -> ``rss_mb``/``peak_mb`` at its
    end), each logged at INFO when the step ends."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self.memory: dict[str, dict[str, float]] = {}
        self._mark = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.phases[name] = round(now - self._mark, 3)
        self.memory[name] = {"rss_mb": rss_mb(), "peak_mb": peak_rss_mb()}
        self._mark = now
        log.info(
            "index build: %s took %.1f s (RSS %.0f MB, peak %.0f MB)",
            name,
            self.phases[name],
            self.memory[name]["rss_mb"],
            self.memory[name]["peak_mb"],
        )
