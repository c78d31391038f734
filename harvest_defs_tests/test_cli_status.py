"""``harvest status`` reports the ledger as it is, and says so plainly when there is none."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from harvest_defs.cli import app
from harvest_defs.harvest.ledger import BatchLedger


def test_status_lists_batches_and_request_states(tmp_path: Path) -> None:
    ledger = BatchLedger(tmp_path / "ledger.sqlite")
    ledger.reserve("claude", "set-a", 0, 2, "alpha")
    ledger.record_created("claude", "set-a", 0, "msgbatch_a")
    ledger.record_requests("claude", "msgbatch_a", [("h1", "d1"), ("h2", "d2")])
    ledger.mark_ended("msgbatch_a", {"succeeded": 1, "errored": 1})
    ledger.record_outcomes("claude", [("h1", True), ("h2", False)])
    ledger.reserve("voyage", "set-b", 0, 5, "beta")  # a create that never answered

    outcome = CliRunner().invoke(app, ["status", "--home", str(tmp_path), "--json"])
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.output)
    assert [(b["provider"], b["batch_id"], b["status"]) for b in report["batches"]] == [
        ("claude", "msgbatch_a", "ended"),
        ("voyage", None, "creating"),
    ]
    assert report["requests"]["claude"] == {"failed": 1, "succeeded": 1}
    table = CliRunner().invoke(app, ["status", "--home", str(tmp_path)], env={"COLUMNS": "200"})
    assert "msgbatch_a" in table.output and "(creating)" in table.output


def test_status_without_a_ledger_exits_1(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(app, ["status", "--home", str(tmp_path / "nothing")])
    assert outcome.exit_code == 1
    assert "nothing has been submitted" in outcome.output
