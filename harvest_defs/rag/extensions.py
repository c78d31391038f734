"""Open DuckDB connections with the ``vss`` (HNSW) and ``fts`` (BM25) extensions loaded offline.

The extensions ship as Python wheels (``duckdb-extension-vss`` / ``-fts``) holding the binary under
``extensions/v<duckdb version>/<name>.duckdb_extension``. We ``LOAD`` that path explicitly on every
connection because (measured, see dlt_vectors_measured.md §5) autoload does not pick up vss for an HNSW
plan, and a database holding a persisted HNSW index rejects INSERTs from a connection without vss.
Auto-install is switched off so nothing ever tries the network.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import duckdb

EXTENSIONS = ("vss", "fts")


class ExtensionNotFoundError(RuntimeError):
    """The extension wheel for this DuckDB version is not installed."""


@cache
def extension_path(name: str) -> Path:
    """Path of ``<name>.duckdb_extension`` inside the ``duckdb_extension_<name>`` wheel."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionNotFoundError(
            f"Install duckdb-extension-{name}=={duckdb.__version__} (package missing)."
        )
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    exact = package_dir / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if exact.is_file():
        return exact
    found = sorted(package_dir.glob(f"extensions/*/{name}.duckdb_extension"))
    if not found:
        raise ExtensionNotFoundError(f"No {name}.duckdb_extension in {package_dir}.")
    raise ExtensionNotFoundError(
        f"duckdb-extension-{name} ships {found[0].parent.name}, DuckDB is v{duckdb.__version__}: "
        "versions must match."
    )


def connect(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to ``path`` with vss and fts loaded from the wheels; never touches the network."""
    con = duckdb.connect(
        str(path),
        read_only=read_only,
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    try:
        for name in EXTENSIONS:
            con.execute(f"LOAD '{extension_path(name)}'")
    except Exception:
        con.close()
        raise
    return con
