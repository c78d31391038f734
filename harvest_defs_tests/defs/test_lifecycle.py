"""The index is always the current corpus: deletes, renames, moves, reverts, same names, untidy files.

Every test drives the chain as the daemon would (``run_chain``: corpus_sensor -> submit runs ->
claude_batch_sensor -> collect runs -> rag_index_sensor) over real files, real DuckDB, the real SDKs and
the emulator, then reads the tables a user queries and the index itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from harvest_defs.defs.build import build_defs
from harvest_defs.defs.local_run import ChainStepFailed, run_chain
from harvest_defs.emulator import EmulatorServer
from harvest_defs_tests.defs.lifecycle_helpers import claude_rows, costly, index_rows, spent, voyage_rows


class Chain:
    def __init__(self, corpus: Path, instance: dg.DagsterInstance) -> None:
        self.defs = build_defs(corpus, sensor_interval=1)
        self.instance = instance
        self.cursors: dict[str, str | None] = {}

    def run(self) -> None:
        run_chain(self.defs, self.instance, cursors=self.cursors, timeout=120)


@pytest.fixture
def chain(
    corpus: Path, harvest_home: Path, bare_instance: dg.DagsterInstance, api_env: EmulatorServer
) -> Chain:
    return Chain(corpus, bare_instance)


def _same_everywhere(home: Path) -> set[str]:
    ids = set(claude_rows(home))
    assert ids == set(voyage_rows(home)) == set(index_rows(home))
    return ids


def test_delete_rename_and_move_leave_no_trace_and_cost_nothing(
    chain: Chain, corpus: Path, harvest_home: Path, api_env: EmulatorServer
) -> None:
    chain.run()
    assert "alpha__geese--txt" in _same_everywhere(harvest_home)

    (corpus / "alpha" / "geese.txt").unlink()
    chain.run()
    ids = _same_everywhere(harvest_home)
    assert "alpha__geese--txt" not in ids and "alpha__ducks" in ids

    before = costly(api_env)
    (corpus / "beta" / "rust.md").rename(corpus / "beta" / "rust-lang.md")  # rename
    shutil.move(corpus / "gamma" / "tea.md", corpus / "alpha" / "tea.md")  # move to another collection
    chain.run()
    assert spent(before, api_env) == {}, "a rename or a move must cost no Claude and no Voyage request"
    ids = _same_everywhere(harvest_home)
    assert {"beta__rust-lang", "alpha__tea"} <= ids
    assert not {"beta__rust", "gamma__tea"} & ids
    assert "Green tea is steamed" in index_rows(harvest_home)["alpha__tea"]


def test_a_reverted_edit_serves_the_original_again_for_free(
    chain: Chain, corpus: Path, harvest_home: Path, api_env: EmulatorServer
) -> None:
    ducks = corpus / "alpha" / "ducks.md"
    original = ducks.read_text(encoding="utf-8")
    chain.run()
    first = claude_rows(harvest_home)["alpha__ducks"]
    ducks.write_text("# Ducks\n\nMallards dabble in shallow water at dawn.\n", encoding="utf-8")
    chain.run()
    assert "Mallards dabble" in index_rows(harvest_home)["alpha__ducks"]
    before = costly(api_env)
    ducks.write_text(original, encoding="utf-8")
    chain.run()
    assert spent(before, api_env) == {}, "a revert is a cache hit on both APIs"
    assert claude_rows(harvest_home)["alpha__ducks"] == first
    assert voyage_rows(harvest_home)["alpha__ducks"] == first[1]
    indexed = index_rows(harvest_home)["alpha__ducks"]
    assert "paddle on ponds" in indexed and "Mallards" not in indexed


def test_same_names_and_colliding_slugs_are_all_kept(chain: Chain, corpus: Path, harvest_home: Path) -> None:
    texts = {
        ("alpha", "readme.md"): "Apples grow in the orchard. Marker appleword.",
        ("beta", "readme.md"): "Bananas grow in bunches. Marker bananaword.",
        ("gamma", "日本.md"): "Japan text. Marker japanword.",
        ("gamma", "中国.md"): "China text. Marker chinaword.",
        ("gamma", "Ελλάδα.txt"): "Greece text. Marker greeceword.",
        ("gamma", "a b.md"): "Spaced name. Marker spaceword.",
        ("gamma", "a-b.md"): "Dashed name. Marker dashword.",
    }
    for (collection, name), text in texts.items():
        (corpus / collection / name).write_text(text, encoding="utf-8")
    chain.run()
    indexed = index_rows(harvest_home)
    for text in texts.values():
        marker = text.split("Marker ")[1].rstrip(".")
        holders = [i for i, t in indexed.items() if marker in t]
        assert len(holders) == 1, (marker, holders)
    assert "appleword" in indexed["alpha__readme"] and "bananaword" in indexed["beta__readme"]


def test_untidy_files_are_skipped_by_name_and_a_range_backfill_goes_through(
    chain: Chain, corpus: Path, harvest_home: Path
) -> None:
    (corpus / "alpha" / "menu.txt").write_bytes("Café menus. Marker cafeword.\n".encode("latin-1"))
    (corpus / "alpha" / "photo.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00IHDR")
    (corpus / "beta" / "records.jsonl").write_text(
        '{"text": "Good record."}\n{broken\n[1]\n', encoding="utf-8"
    )
    (corpus / "gamma" / "empty.md").write_text("", encoding="utf-8")
    chain.run()
    indexed = index_rows(harvest_home)
    assert "cafeword" in indexed["alpha__menu--txt"]
    assert "Good record." in indexed["beta__records--jsonl__L1"]
    assert {"alpha__ducks", "beta__rust", "gamma__tea"} <= set(indexed)

    # One range backfill run of `documents` over every partition: one check result naming each bad file.
    result = dg.materialize(
        list(chain.defs.assets or []),
        selection=dg.AssetSelection.assets("documents"),
        instance=chain.instance,
        resources=dict(chain.defs.resources or {}),
        tags={"dagster/asset_partition_range_start": "alpha", "dagster/asset_partition_range_end": "gamma"},
    )
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    table = str(check.metadata["skipped"].value)
    for name in ("alpha/photo.md", "beta/records.jsonl:2", "beta/records.jsonl:3", "gamma/empty.md"):
        assert name in table
    assert check.metadata["skipped_files"].value == 4


def test_a_batch_the_api_no_longer_knows_never_stalls_the_others(
    chain: Chain, corpus: Path, harvest_home: Path, api_env: EmulatorServer
) -> None:
    import anthropic

    from harvest_defs.defs.local_run import materialize_selection, run_requests, tick_sensor
    from harvest_defs.harvest.ledger import BatchLedger

    tick_sensor(chain.defs, chain.instance, "corpus_sensor", None)
    for key in ("alpha", "beta"):
        materialize_selection(chain.defs, chain.instance, ["documents", "claude_summary_batches"], key)
    ledger = BatchLedger(harvest_home / "ledger.sqlite")
    [alpha_batch] = [b.batch_id for b in ledger.in_flight("claude", "alpha")]
    client = anthropic.Anthropic(max_retries=0)
    client.messages.batches.delete(alpha_batch)  # it ended (instant batches); now the API answers 404

    tick = tick_sensor(chain.defs, chain.instance, "claude_batch_sensor", None)
    assert sorted(r.partition_key or "" for r in tick.run_requests) == ["alpha", "beta"]
    results = run_requests(chain.defs, chain.instance, tick.run_requests)
    assert all(r.success for r in results)
    assert ledger.get(alpha_batch).status == "lost"  # type: ignore[union-attr]
    assert "404" in ledger.get(alpha_batch).meta["lost_reason"]  # type: ignore[union-attr]
    ids = set(claude_rows(harvest_home))
    assert {"beta__rust", "beta__python"} <= ids and not any(i.startswith("alpha") for i in ids)

    # Deliberately pay again: `harvest resubmit`, then the next submit sends alpha's requests.
    from typer.testing import CliRunner

    from harvest_defs.cli import app

    out = CliRunner().invoke(app, ["resubmit", alpha_batch, "--home", str(harvest_home)])
    assert out.exit_code == 0 and "2 request(s)" in out.output, out.output
    materialize_selection(chain.defs, chain.instance, ["documents", "claude_summary_batches"], "alpha")
    run_chain(chain.defs, chain.instance, cursors=chain.cursors)
    assert {"alpha__ducks", "alpha__geese--txt"} <= set(claude_rows(harvest_home))


def test_voyage_never_pays_twice_after_a_failed_load(
    chain: Chain, corpus: Path, harvest_home: Path, api_env: EmulatorServer
) -> None:
    import duckdb

    chain.run()
    (corpus / "alpha" / "swans.md").write_text("# Swans\n\nSwans glide on lakes. Marker swanword.\n", "utf-8")
    # The next voyage_embeddings load fails after Voyage was paid: a view stands where the table is.
    warehouse = harvest_home / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("ALTER TABLE harvest.voyage_embeddings RENAME TO voyage_embeddings_saved")
    con.execute("CREATE VIEW harvest.voyage_embeddings AS SELECT * FROM harvest.voyage_embeddings_saved")
    con.close()
    before = costly(api_env)
    with pytest.raises(ChainStepFailed, match="summary_embeddings"):
        chain.run()
    paid = spent(before, api_env)
    assert paid.get("voyage_texts") == 2, paid  # the new document's summary and its one passage
    con = duckdb.connect(str(warehouse))
    con.execute("DROP VIEW harvest.voyage_embeddings")
    con.execute("ALTER TABLE harvest.voyage_embeddings_saved RENAME TO voyage_embeddings")
    con.close()
    before = costly(api_env)
    from harvest_defs.defs.local_run import materialize_selection

    materialize_selection(chain.defs, chain.instance, ["claude_summaries", "summary_embeddings"], "alpha")
    assert spent(before, api_env) == {}, "the vector store must serve what the failed load never wrote"
    assert "alpha__swans" in voyage_rows(harvest_home)


def test_an_oversize_document_is_truncated_before_sending(
    chain: Chain, corpus: Path, harvest_home: Path, api_env: EmulatorServer
) -> None:
    big = "Long policy sentence number one hundred. " * 130_000  # ~5.3 MB, over a 200k-token window
    (corpus / "alpha" / "policy.md").write_text("# Policy\n\n" + big, encoding="utf-8")
    chain.run()
    from harvest_defs_tests.defs.lifecycle_helpers import rows

    [(prompt_len, truncated)] = rows(
        harvest_home / "warehouse.duckdb",
        "SELECT length(prompt), truncated FROM harvest.claude_messages WHERE custom_id = 'alpha__policy'",
    )
    assert truncated is True and prompt_len < 800_000
    [(others,)] = rows(
        harvest_home / "warehouse.duckdb",
        "SELECT count(*) FROM harvest.claude_messages WHERE truncated AND custom_id <> 'alpha__policy'",
    )
    assert others == 0


def test_collecting_before_any_submit_says_why(chain: Chain, corpus: Path, harvest_home: Path) -> None:
    from harvest_defs.defs.local_run import materialize_selection, tick_sensor

    tick_sensor(chain.defs, chain.instance, "corpus_sensor", None)
    result = materialize_selection(
        chain.defs, chain.instance, ["claude_summaries"], "alpha", raise_on_error=False
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "materialize `documents` first" in failure.step_failure_data.error.message  # type: ignore[union-attr]
