"""The real-browser tests: Debian's Chromium (``/usr/bin/chromium``) driven by Playwright for Python.

Playwright never downloads a browser here (``PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1``; ``executable_path``
points at the system Chromium). Where Chromium cannot be installed the tests skip, saying so.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
CHROMIUM = Path(os.environ.get("HARVEST_CHROMIUM", "/usr/bin/chromium"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Dagster's UI in a real Chromium (~90 s)")


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (what .ci/run does where it can) "
            "or set HARVEST_CHROMIUM"
        )
    pytest.importorskip("playwright.sync_api", reason="playwright (dev dependency) is not installed")
    return CHROMIUM


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the screenshots go (``HARVEST_SCREENSHOTS`` to keep them as CI artifacts), printed."""
    folder = Path(os.environ.get("HARVEST_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder
