"""For any sequence of corpus mutations interleaved with chain runs, the tables and the index are the corpus.

A hypothesis ``RuleBasedStateMachine`` keeps a model of the corpus (path -> text) and applies random
mutations to the real folder — add, edit, delete, rename, move between collections, revert to an earlier
text, add/remove a collection, an unreadable file, the same name in two collections, non-Latin names —
and runs the whole chain (``run_chain``, as the daemon would) against the emulator. After every run:

- ``claude_messages``, ``voyage_embeddings`` and the RAG index hold exactly the readable documents' ids;
- every summary row was made from the document's *current* text, every vector from its current summary,
  and every index chunk holds the current text;
- Claude requests sent = texts never seen before; Voyage texts sent = summaries never seen before.

CI runs a short profile; ``HARVEST_STATEFUL_EXAMPLES`` / ``HARVEST_STATEFUL_STEPS`` run a longer one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import dagster as dg
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from harvest_defs.defs.build import build_defs
from harvest_defs.defs.claude_rows import PROMPT_TEMPLATE
from harvest_defs.defs.local_run import run_chain
from harvest_defs.defs.resources import HarvestStoreResource
from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.corpus.ids import DocumentKey, document_id
from harvest_defs_tests.defs.lifecycle_helpers import (
    claude_rows,
    costly,
    index_rows,
    passage_documents,
    passage_embeddings,
    voyage_rows,
)

COLLECTIONS = ["alpha", "beta", "日本", "two words"]
NAMES = ["readme.md", "notes.txt", "a b.md", "a-b.md", "中国.md", "Ελλάδα.txt", "policy.md"]
WORDS = ["ducks", "geese", "swans", "paddle", "migrate", "ponds", "autumn", "marsh", "reeds", "dawn"]
TEXTS = st.lists(st.sampled_from(WORDS), min_size=2, max_size=5).map(
    lambda words: " ".join(words).capitalize() + ". They live near water."
)


class CorpusMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.work = Path(tempfile.mkdtemp(prefix="harvest-stateful-"))
        self.corpus = self.work / "corpus"
        self.home = self.work / "home"
        self.corpus.mkdir()
        self.files: dict[tuple[str, str], str] = {}  # (collection, name) -> text (readable documents)
        self.history: list[str] = []  # every text ever written, for reverts
        self.seen_texts: set[str] = set()
        self.seen_summaries: set[str] = set()
        store = HarvestStoreResource(home=str(self.home), corpus_dir=str(self.corpus))
        self.defs = build_defs(self.corpus, sensor_interval=1, resources={"store": store})
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursors: dict[str, str | None] = {}
        self.ran = False
        self.runs = 0

    def teardown(self) -> None:
        try:
            if self.files:  # every example ends with a verified run, whatever the steps drew
                self.run()
                self.tables_and_index_are_the_corpus()
        finally:
            RUNS.append(self.runs)
            self.instance.dispose()
            shutil.rmtree(self.work, ignore_errors=True)

    # --- mutations ---------------------------------------------------------------------------------
    def _write(self, collection: str, name: str, text: str) -> None:
        path = self.corpus / collection / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.files[(collection, name)] = text
        self.history.append(text)

    @rule(collection=st.sampled_from(COLLECTIONS), name=st.sampled_from(NAMES), text=TEXTS)
    def add_or_edit(self, collection: str, name: str, text: str) -> None:
        self._write(collection, name, text)

    @precondition(lambda self: self.files)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        collection, name = data.draw(st.sampled_from(sorted(self.files)))
        (self.corpus / collection / name).unlink()
        del self.files[(collection, name)]

    @precondition(lambda self: self.files)
    @rule(data=st.data(), collection=st.sampled_from(COLLECTIONS), name=st.sampled_from(NAMES))
    def rename_or_move(self, data: st.DataObject, collection: str, name: str) -> None:
        source = data.draw(st.sampled_from(sorted(self.files)))
        if source == (collection, name):
            return
        text = self.files.pop(source)
        (self.corpus / source[0] / source[1]).unlink()
        self.files.pop((collection, name), None)
        self._write(collection, name, text)

    @precondition(lambda self: self.files and self.history)
    @rule(data=st.data())
    def revert(self, data: st.DataObject) -> None:
        collection, name = data.draw(st.sampled_from(sorted(self.files)))
        self._write(collection, name, data.draw(st.sampled_from(self.history)))

    @precondition(lambda self: self.files)
    @rule(data=st.data())
    def remove_collection(self, data: st.DataObject) -> None:
        collection = data.draw(st.sampled_from(sorted({c for c, _ in self.files})))
        shutil.rmtree(self.corpus / collection)
        self.files = {k: v for k, v in self.files.items() if k[0] != collection}

    @rule(collection=st.sampled_from(COLLECTIONS), kind=st.sampled_from(["latin1", "binary", "empty"]))
    def add_unreadable(self, collection: str, kind: str) -> None:
        path = self.corpus / collection / f"bad-{kind}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "latin1":  # readable after detection: a document like any other
            text = "Café au lait near the ponds."
            path.write_bytes(text.encode("latin-1"))
            self.files[(collection, path.name)] = text
            self.history.append(text)
        else:
            path.write_bytes(b"\x89PNG\x00\x00" if kind == "binary" else b"")
            self.files.pop((collection, path.name), None)

    # --- the chain ---------------------------------------------------------------------------------
    @rule()
    def run(self) -> None:
        before = costly(EMULATOR[0])
        run_chain(self.defs, self.instance, cursors=self.cursors, timeout=120)
        after = costly(EMULATOR[0])
        texts = set(self.files.values())
        new_texts = texts - self.seen_texts
        assert after["anthropic_batch_requests"] - before["anthropic_batch_requests"] == len(new_texts)
        summaries = {row[1] for row in claude_rows(self.home).values() if row[1]}
        passages = {text for _doc, text in passage_embeddings(self.home).values()}
        # Voyage is paid once per text ever embedded (summaries and passages share the vector store).
        embedded = summaries | passages
        assert after["voyage_texts"] - before["voyage_texts"] == len(embedded - self.seen_summaries)
        self.seen_texts |= texts
        self.seen_summaries |= embedded
        self.ran = True
        self.runs += 1

    @invariant()
    def tables_and_index_are_the_corpus(self) -> None:
        if not self.ran:
            return
        expected = {
            document_id(DocumentKey(collection, name)): text
            for (collection, name), text in self.files.items()
        }
        claude = claude_rows(self.home)
        assert set(claude) == set(expected)
        for doc_id, text in expected.items():
            prompt, _response, success = claude[doc_id]
            assert success and prompt == PROMPT_TEMPLATE.format(text=text), doc_id
        voyage = voyage_rows(self.home)
        assert voyage == {doc_id: claude[doc_id][1] for doc_id in expected}
        indexed = index_rows(self.home)
        assert set(indexed) == set(expected)
        assert all(expected[doc_id] in chunk for doc_id, chunk in indexed.items())
        # Passages follow their documents: exactly the current documents have them, in table and index.
        assert {doc for doc, _text in passage_embeddings(self.home).values()} == set(expected)
        assert passage_documents(self.home) == set(expected)
        self.ran = False  # checked once per run: mutations since then are not harvested yet


EMULATOR: list[EmulatorServer] = []
RUNS: list[int] = []


def test_any_sequence_of_corpus_changes_keeps_the_index_equal_to_the_corpus(api_env: EmulatorServer) -> None:
    EMULATOR[:] = [api_env]
    RUNS.clear()
    run_state_machine_as_test(
        CorpusMachine,
        settings=settings(
            max_examples=int(os.environ.get("HARVEST_STATEFUL_EXAMPLES", "3")),
            stateful_step_count=int(os.environ.get("HARVEST_STATEFUL_STEPS", "8")),
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    assert sum(RUNS) >= len(RUNS) >= 1, RUNS  # the chain really ran, at least once per example
