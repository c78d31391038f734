"""Hand freed memory back to the OS between the phases of a big run.

Why: after extract, the Python heap (glibc malloc) and Arrow's pool (jemalloc) keep what the windows
and result chunks used, freed but mapped. dlt's load then runs DuckDB, which allocates with its own
jemalloc and cannot reuse either: peak RSS = extract's high-water mark + DuckDB's working set. Returning
the freed pages first lowers that sum (measured in ``benchmarks/scale_memory.py``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc


def release_memory() -> None:
    """``gc.collect``, Arrow's ``release_unused`` and glibc's ``malloc_trim(0)`` (where available)."""
    gc.collect()
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except Exception:  # an Arrow build without the call: nothing to release there
        pass
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    try:
        libc = ctypes.CDLL(libc_name)
        trim = getattr(libc, "malloc_trim", None)
        if trim is not None:  # glibc only (not musl, not macOS)
            trim(0)
    except OSError:
        pass
