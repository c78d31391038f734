"""Concurrency on the Postgres index: loads from two writers and readers at once (MVCC, no file swap).

The DuckDB analogue is ``reliability/test_concurrency.py`` (a rebuild swapped under ``harvest ask``). Here
two threads upsert alternately the full corpus and a part of it with ``prune`` (so the table shrinks and
grows), while a reader searches all the time: no operation may fail, and every read sees one whole load
(the full or the partial row count, never a mix), because each load is a single transaction.
"""

from __future__ import annotations

import threading

from harvest_defs.emulator.content import embed_text
from harvest_defs.harvest.backends import BackendSettings
from harvest_defs.rag.pg_index import build_pg_index, connect_index
from harvest_defs.rag.pg_search import vector_search
from harvest_defs_tests.rag.conftest import corpus_documents, rows_for


def test_two_writers_and_a_reader_never_fail_and_reads_see_whole_loads(pg_env: BackendSettings) -> None:
    documents = corpus_documents()
    full, part = rows_for(documents), rows_for(dict(list(documents.items())[:10]))
    build_pg_index(full, pg_env)
    stop = threading.Event()
    errors: list[BaseException] = []
    loads: list[int] = []
    seen: set[int] = set()

    def writer(first: object) -> None:
        try:
            for i in range(4):
                build_pg_index(part if (i % 2 == 0) == (first is part) else full, pg_env, prune=True)
                loads.append(1)
        except BaseException as error:
            errors.append(error)

    def reader() -> None:
        vector = embed_text("Who acknowledges an on-call page?", 1024)
        try:
            with connect_index(pg_env) as con:
                while not stop.is_set():
                    row = con.execute("SELECT count(*) FROM chunks").fetchone()
                    seen.add(int(row[0]) if row else -1)
                    assert len(vector_search(con, vector, 5)) == 5
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(x,)) for x in (full, part)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    stop.set()
    watcher.join(30)
    assert errors == [] and len(loads) == 8
    assert seen <= {len(documents), 10} and seen
