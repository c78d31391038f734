"""A long input stream reports progress with counts, one log line per window, as it is consumed."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from harvest_defs.harvest.streaming import iter_windows


def test_each_window_logs_the_rows_read_so_far_while_the_generator_is_consumed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def prompts() -> Iterator[str]:
        for i in range(25):
            yield f"prompt {i}"

    caplog.set_level(logging.INFO, logger="harvest_defs.harvest.progress")
    seen = []
    for rows in iter_windows(prompts(), window=10):
        seen.append(len(rows))
        assert caplog.records[-1].getMessage().startswith(f"input stream: {sum(seen)} rows read")
    assert seen == [10, 10, 5]
    assert [r.getMessage() for r in caplog.records] == [
        "input stream: 10 rows read (1 windows)",
        "input stream: 20 rows read (2 windows)",
        "input stream: 25 rows read (3 windows, the last)",
    ]
