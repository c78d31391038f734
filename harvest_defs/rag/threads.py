"""Thread counts of a reader connection: one thread for point queries, every core for scans.

Measured at 200k x 1024 (``benchmarks/query_latency.py`` and the profile in the README's index section):
a graph query's re-rank reads ~20 rows, yet with DuckDB's default of one thread per core it paid for a
parallel pipeline start (tasks handed to worker threads, the client thread waiting on them): 8.6 ms CPU a
query at 2 threads vs 5.7 ms at 1, and on a loaded machine about half the wall time. ``SET threads`` is a
setting of the whole database instance, so reader connections (``open_index``) run at
``POINT_QUERY_THREADS`` and a full scan (the exact search, BM25) raises it for its duration with
``all_cores``: the ~1 ms the two ``SET``s cost is nothing against a scan of the table.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

POINT_QUERY_THREADS = 1


def use_point_query_threads(con: duckdb.DuckDBPyConnection) -> None:
    """Run the connection's queries on the calling thread alone (no worker hand-off)."""
    con.execute(f"SET threads = {POINT_QUERY_THREADS}")


def current_threads(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT current_setting('threads')").fetchone()
    return int(row[0]) if row else 1


@contextmanager
def all_cores(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Every core for the statements inside (a scan over the whole table), then the previous count."""
    wanted = os.cpu_count() or 1
    previous = current_threads(con)
    if previous >= wanted:
        yield
        return
    con.execute(f"SET threads = {wanted}")
    try:
        yield
    finally:
        con.execute(f"SET threads = {previous}")
