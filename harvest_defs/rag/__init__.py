"""RAG over the harvested embeddings: a DuckDB index (native FLOAT[dim] + HNSW + BM25), search, answers.

- ``index.build_index(rows, path)``: incremental build from Arrow rows, swapped in atomically.
- ``search.search(query, k, mode, filters, rag_path=..., embed_query=...)``: hybrid / vector / keyword.
- ``answer.answer(question, k, ...)``: retrieve, then Claude with cited sources;
  ``answer.answer_batch_prompts(...)`` for Message Batches (``rag_answers``).

Submodules are imported on use; nothing here imports an API SDK at module level.
"""
