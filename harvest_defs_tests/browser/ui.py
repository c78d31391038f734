"""Playwright steps on Dagster's UI, named after what a user does (select, materialize, read metadata).

Selectors are the UI's own: the Catalog's row checkboxes carry ``data-testid="checkbox-<asset>"``; the
launch dialog has the "All" partitions button and "Launch backfill"; an asset's partition page lists its
materialization metadata as label / value lines.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def dismiss_welcome(page: Any) -> None:
    """A fresh instance greets with "Join the Dagster community" once; skip it when it shows."""
    skip = page.get_by_role("button", name="Skip", exact=True)
    try:
        skip.wait_for(timeout=4000)
    except Exception:  # not shown (already dismissed on this instance)
        return
    skip.click()


def open_catalog(page: Any, url: str, shots: Path) -> None:
    page.goto(f"{url}/assets")
    page.get_by_test_id("checkbox-documents").wait_for(state="attached", timeout=60_000)
    dismiss_welcome(page)
    page.get_by_role("link", name="Catalog").first.wait_for()
    page.screenshot(path=str(shots / "01-catalog.png"), full_page=True)


def materialize_all_partitions(page: Any, assets: list[str], shots: Path, expect_partitions: int) -> None:
    """Tick the assets in the Catalog, Materialize selected, All partitions, Launch backfill."""
    for name in assets:
        page.locator("label", has=page.get_by_test_id(f"checkbox-{name}")).click()
    page.get_by_role("button", name="Materialize selected").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="All", exact=True).click()
    dialog.get_by_text(f"{expect_partitions} partitions", exact=True).wait_for(timeout=15_000)
    page.screenshot(path=str(shots / "02-launch-dialog.png"))
    dialog.get_by_role("button", name="Launch backfill").click()
    dialog.wait_for(state="hidden", timeout=30_000)
    page.screenshot(path=str(shots / "03-launched.png"))


def metadata_value(text: str, label: str) -> str | None:
    """The value printed after ``label`` in a page's metadata list (label, tab, value lines)."""
    match = re.search(rf"(?m)^{re.escape(label)}\s*\n[\s\t]*\n?\s*([^\n\t]+)", text)
    return match.group(1).strip() if match else None


def partition_metadata(page: Any, url: str, asset: str, partition: str, label: str, shots: Path) -> str:
    page.goto(f"{url}/assets/{asset}?view=partitions&partition={partition}")
    page.get_by_text(label, exact=True).first.wait_for(timeout=60_000)
    page.screenshot(path=str(shots / f"10-{asset}-{partition}.png"), full_page=True)
    value = metadata_value(page.inner_text("body"), label)
    assert value is not None, f"{label} not shown on {asset} [{partition}]"
    return value


def column_type(page: Any, url: str, asset: str, column: str, shots: Path) -> str | None:
    """The Type cell of ``column`` in the asset Overview's Columns table."""
    page.goto(f"{url}/assets/{asset}")
    page.get_by_text("Columns", exact=True).first.wait_for(timeout=60_000)
    page.get_by_text(column, exact=True).first.wait_for(timeout=30_000)
    page.screenshot(path=str(shots / f"20-{asset}-columns.png"), full_page=True)
    match = re.search(
        rf"(?m)^{re.escape(column)}\s*\n\s*([A-Z][A-Z0-9_\[\]()., ]*)\s*$", page.inner_text("body")
    )
    return match.group(1).strip() if match else None
