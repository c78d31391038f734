"""Shared pieces of the reliability suite: a matrix reporter that prints in the pytest summary."""

from __future__ import annotations

from typing import Any

import pytest

# (suite, row, column, outcome) lines collected by the tests and printed once at the end of the session.
MATRIX: list[tuple[str, str, str, str]] = []


def record(suite: str, row: str, column: str, outcome: str) -> None:
    """Add one cell to the printed matrix (also printed at once, for ``pytest -s``)."""
    MATRIX.append((suite, row, column, outcome))
    print(f"[{suite}] {row:<10} {column:<14} {outcome}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not MATRIX:
        return
    terminalreporter.section("reliability matrix")
    for suite in dict.fromkeys(s for s, _, _, _ in MATRIX):
        terminalreporter.write_line(f"{suite}:")
        cells = [m for m in MATRIX if m[0] == suite]
        for _, row, column, outcome in sorted(cells, key=lambda m: m[1]):  # stable: keeps stage order
            terminalreporter.write_line(f"  {row:<10} {column:<16} {outcome}")


@pytest.fixture
def matrix() -> Any:
    return record
