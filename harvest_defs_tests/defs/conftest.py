"""Fixtures for the Dagster layer: a small three-collection corpus and a fresh HARVEST_HOME per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from harvest_defs.defs.build import build_defs

COLLECTIONS = {
    "alpha": {
        "ducks.md": "# Ducks\n\nDucks are waterfowl that paddle on ponds. They eat pondweed and insects.\n",
        "geese.txt": "Geese migrate in V formations every autumn. They honk loudly over the marsh.\n",
    },
    "beta": {
        "rust.md": "# Rust\n\nRust is a systems language with a borrow checker. It prevents data races.\n",
        "python.md": "# Python\n\nPython is a dynamic language loved for notebooks and data pipelines.\n",
    },
    "gamma": {
        "tea.md": "# Tea\n\nGreen tea is steamed to stop oxidation. Black tea is fully oxidized.\n",
        "coffee.md": "# Coffee\n\nEspresso forces hot water through finely ground coffee at high pressure.\n",
    },
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "dagster_dev: starts a real `dagster dev` (webserver + daemon); runs in CI (~60 s)"
    )


def write_corpus(root: Path, collections: dict[str, dict[str, str]] = COLLECTIONS) -> Path:
    for collection, files in collections.items():
        for name, text in files.items():
            path = root / collection / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")


@pytest.fixture
def harvest_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "harvest_home"
    monkeypatch.setenv("HARVEST_HOME", str(home))
    return home


@pytest.fixture
def chain_defs(corpus: Path, harvest_home: Path, api_env: object) -> dg.Definitions:
    """The code location over the test corpus, pointed at the emulator through the environment."""
    return build_defs(corpus, sensor_interval=1)


@pytest.fixture
def instance(tmp_path: Path, corpus: Path) -> Iterator[dg.DagsterInstance]:
    """A persistent (SQLite) instance in tmp_path, with the test corpus's collections as partitions.

    The partitions are dynamic: ``corpus_sensor`` adds them in production; tests that drive the assets
    directly get them here (tests of the sensor itself use ``bare_instance``).
    """
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(home)) as temp:
        add_collections(temp, corpus)
        yield temp


@pytest.fixture
def bare_instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A persistent instance with no partitions yet (what a fresh ``dagster dev`` starts with)."""
    home = tmp_path / "dagster_bare_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(home)) as temp:
        yield temp


def add_collections(instance: dg.DagsterInstance, corpus: Path) -> list[str]:
    from harvest_defs.defs.local_run import register_collections

    return register_collections(instance, corpus)
