"""The ``dg`` way, through the real CLI: the shipped project checks and lists, a scaffolded instance in a
new project materializes against the emulator, and a bad YAML fails ``dg check defs`` naming file + field."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from harvest_defs.defs.local_run import materialize_selection, run_requests, tick_sensor
from harvest_defs.emulator import EmulatorServer
from harvest_defs_tests.components.conftest import materialization, query

REPO = Path(__file__).resolve().parents[2]
DG = str(Path(sys.executable).with_name("dg"))
PROJECT_TOML = """[project]
name = "myproj"
version = "0.1.0"

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "myproj"
"""
DEFINITIONS = """from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
"""


@pytest.fixture(autouse=True)
def _forget_project_modules() -> Iterator[None]:
    """Each test builds its own ``myproj``: never reuse the modules imported from another test's."""
    yield
    for name in [m for m in sys.modules if m == "myproj" or m.startswith("myproj.")]:
        del sys.modules[name]


def _dg(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "HARVEST_HOME": str(cwd / ".harvest")}
    return subprocess.run([DG, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _new_project(root: Path) -> Path:
    (root / "myproj" / "defs").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PROJECT_TOML)
    (root / "myproj" / "__init__.py").write_text("")
    (root / "myproj" / "defs" / "__init__.py").write_text("")
    (root / "myproj" / "definitions.py").write_text(DEFINITIONS)
    return root


def test_shipped_project_checks_and_lists(tmp_path: Path) -> None:
    checked = _dg("check", "defs", cwd=REPO)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    listed = _dg("list", "defs", "--json", cwd=REPO)
    assert listed.returncode == 0, listed.stderr
    for key in ("claude_summaries", "summary_embeddings", "rag_index", "ticket_triage", "translations"):
        assert f'"{key}"' in listed.stdout
    components = _dg("list", "components", cwd=REPO)
    for name in ("ClaudeBatchHarvest", "VoyageEmbeddings", "RagIndex"):
        assert f"harvest_defs.{name}" in components.stdout


def test_scaffolded_instance_materializes_typed_columns(
    tmp_path: Path, api_env: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _new_project(tmp_path / "proj")
    scaffolded = _dg("scaffold", "defs", "harvest_defs.ClaudeBatchHarvest", "my_harvest", cwd=project)
    assert scaffolded.returncode == 0, scaffolded.stderr
    assert (project / "myproj" / "defs" / "my_harvest" / "defs.yaml").exists()
    checked = _dg("check", "defs", cwd=project)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    home = tmp_path / "home"
    monkeypatch.setenv("HARVEST_HOME", str(home))
    monkeypatch.syspath_prepend(str(project))
    defs = dg.load_from_defs_folder(path_within_project=project)
    with dg.instance_for_test() as instance:
        submitted = materialize_selection(defs, instance, ["my_harvest_batches"])
        assert materialization(submitted, "my_harvest_batches")["requests_sent"] == 3
        tick = tick_sensor(defs, instance, "my_harvest_sensor", None)
        [collected] = run_requests(defs, instance, tick.run_requests)
        assert materialization(collected, "my_harvest")["requests_succeeded"] == 3
    rows = query(
        home / "warehouse.duckdb", "SELECT custom_id, sentiment, summary FROM harvest.my_harvest ORDER BY 1"
    )
    assert [r[0] for r in rows] == ["r1", "r2", "r3"]
    assert all(r[1] in ("positive", "neutral", "negative") and r[2] for r in rows)


BAD = {
    "unknown source": ("source:\n    s3: bucket/x.csv\n", "source"),
    "missing id column": ("id_column: ticket\n", "attributes.id_column"),
    "template naming a missing column": (
        "prompt_template: 'Classify: {{ body }}'\n",
        "attributes.prompt_template",
    ),
    "invalid JSON schema": ("output_schema:\n    type: objekt\n", "attributes.output_schema"),
    "unknown model": ("model: claude-haiku-9\n", "attributes.model"),
    "invalid SQL": ("source:\n    sql: SELECT id, FROM WHERE\n", "attributes.source.sql"),
    "unknown upstream asset": ("source:\n    asset: nowhere\n", "attributes.source.asset"),
}


def _bad_yaml(override: str) -> str:
    key = override.split(":", 1)[0]
    base = {
        "source": "source:\n    files: rows.jsonl\n",
        "id_column": "id_column: id\n",
        "prompt_template": "prompt_template: 'Classify: {{ text }}'\n",
        "output_schema": "",
        "model": "model: claude-haiku-5-5\n",
    }
    base[key] = override
    body = "".join("  " + line for line in base.values() if line)
    return "type: harvest_defs.ClaudeBatchHarvest\nattributes:\n  name: bad\n" + body


def _write_bad(project: Path, i: int, override: str) -> Path:
    folder = project / "myproj" / "defs" / f"bad{i}"
    folder.mkdir()
    (folder / "rows.jsonl").write_text('{"id": "a", "text": "hello"}\n')
    (folder / "defs.yaml").write_text(_bad_yaml(override))
    return folder


def _remove(folder: Path) -> None:
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


@pytest.mark.parametrize("what", sorted(BAD))
def test_bad_configuration_fails_at_load_naming_file_and_field(
    tmp_path: Path, what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _new_project(tmp_path / "proj")
    override, field = BAD[what]
    folder = _write_bad(project, 0, override)
    monkeypatch.syspath_prepend(str(project))
    with pytest.raises(Exception) as raised:
        dg.load_from_defs_folder(path_within_project=project)
    message = str(raised.value) + "".join(str(c) for c in _causes(raised.value))
    assert str(folder / "defs.yaml") in message or "bad0/defs.yaml" in message, message[-2000:]
    assert field in message, message[-2000:]


def _causes(exc: BaseException) -> list[BaseException]:
    found = []
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        found.append(exc)
    return found


def test_bad_configuration_fails_dg_check_defs(tmp_path: Path) -> None:
    """The same errors through the CLI users run (two kinds: a schema error, and one of our checks)."""
    project = _new_project(tmp_path / "proj")
    for i, what in enumerate(("unknown source", "template naming a missing column")):
        override, field = BAD[what]
        folder = _write_bad(project, i, override)
        checked = _dg("check", "defs", cwd=project)
        output = checked.stdout + checked.stderr
        assert checked.returncode != 0, what
        assert f"bad{i}" in output and "defs.yaml" in output, (what, output[-2000:])
        assert field in output, (what, output[-2000:])
        _remove(folder)


def _load_error(project: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.syspath_prepend(str(project))
    with pytest.raises(Exception) as raised:
        dg.load_from_defs_folder(path_within_project=project)
    return str(raised.value) + "".join(str(c) for c in _causes(raised.value))


def test_sql_source_columns_checked_against_the_warehouse_when_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import duckdb

    project = _new_project(tmp_path / "proj")
    folder = project / "myproj" / "defs" / "from_sql"
    folder.mkdir()
    (folder / "defs.yaml").write_text(
        "type: harvest_defs.ClaudeBatchHarvest\nattributes:\n  name: from_sql\n"
        "  source:\n    sql: SELECT note_id, body FROM harvest.notes\n"
        "  id_column: note_id\n  prompt_template: 'Classify: {{ text }}'\n"
    )
    home = tmp_path / "home"
    monkeypatch.setenv("HARVEST_HOME", str(home))
    monkeypatch.syspath_prepend(str(project))
    dg.load_from_defs_folder(path_within_project=project)  # no warehouse yet: deferred to the run
    home.mkdir()
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA harvest; CREATE TABLE harvest.notes (note_id VARCHAR, body VARCHAR)")
    con.close()
    message = _load_error(project, monkeypatch)
    assert "from_sql/defs.yaml: attributes.prompt_template: names missing column(s) ['text']" in message


def test_unknown_upstream_of_embeddings_and_index_fails_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _new_project(tmp_path / "proj")
    for name, body in (
        ("vectors", "type: harvest_defs.VoyageEmbeddings\nattributes:\n  upstream: nowhere\n"),
        ("index", "type: harvest_defs.RagIndex\nattributes:\n  name: idx\n  embeddings:\n    - asset: vex\n"),
    ):
        folder = project / "myproj" / "defs" / name
        folder.mkdir()
        (folder / "defs.yaml").write_text(body)
        message = _load_error(project, monkeypatch)
        field = "upstream" if name == "vectors" else "embeddings[0].asset"
        assert f"{name}/defs.yaml: attributes.{field}: unknown asset" in message, message[-2000:]
        _remove(folder)


def test_chain_model_and_prompt_configurable_in_yaml_defaults_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_env: EmulatorServer
) -> None:
    import shutil

    from harvest_defs.defs.local_run import register_collections
    from harvest_defs.harvest.corpus import default_corpus_dir

    home = tmp_path / "home"
    monkeypatch.setenv("HARVEST_HOME", str(home))
    corpus = tmp_path / "corpus"
    shutil.copytree(Path(default_corpus_dir()) / "handbook", corpus / "handbook")
    monkeypatch.setenv("HARVEST_CORPUS", str(corpus))
    shipped = dg.load_from_defs_folder(path_within_project=REPO / "harvest_defs" / "location")
    assert shipped.resources["anthropic"].model == "claude-haiku-4-5"  # the default, no YAML override
    assert shipped.resources["anthropic"].prompt_template is None

    project = _new_project(tmp_path / "proj")
    defs_dir = project / "myproj" / "defs"
    shutil.copytree(REPO / "harvest_defs" / "location" / "chain", defs_dir / "chain")
    (defs_dir / "chain" / "summaries" / "defs.yaml").write_text(
        "type: harvest_defs.ClaudeBatchHarvest\nattributes:\n  preset: corpus_summaries\n"
        "  model: claude-haiku-5-5\n  max_tokens: 120\n  system_prompt: You write one-line abstracts.\n"
        "  prompt_template: 'Abstract of this page:\\n{text}'\n"
    )
    mine = defs_dir / "mine"  # another instance in the same project: the resources still merge
    mine.mkdir()
    (mine / "rows.jsonl").write_text('{"id": "a", "text": "hello"}\n')
    (mine / "defs.yaml").write_text(
        "type: harvest_defs.ClaudeBatchHarvest\nattributes:\n  name: mine\n  source:\n    files: rows.jsonl\n"
        "  prompt_template: 'Say: {{ text }}'\n"
    )
    monkeypatch.syspath_prepend(str(project))
    defs = dg.load_from_defs_folder(path_within_project=project)
    anthropic = defs.resources["anthropic"]
    assert (anthropic.model, anthropic.max_tokens) == ("claude-haiku-5-5", 120)
    assert anthropic.system_prompt == "You write one-line abstracts."

    with dg.instance_for_test() as instance:
        [partition] = register_collections(instance, corpus)
        materialize_selection(defs, instance, ["documents", "claude_summary_batches"], partition)
        tick = tick_sensor(defs, instance, "claude_batch_sensor", None)
        run_requests(defs, instance, tick.run_requests)
    rows = query(
        home / "warehouse.duckdb",
        "SELECT DISTINCT model, success, starts_with(prompt, 'Abstract of this page:') "
        "FROM harvest.claude_messages ORDER BY 1",
    )
    assert rows == [("claude-haiku-5-5", True, True)]  # the YAML's model and template were sent
    prompts = query(home / "warehouse.duckdb", "SELECT count(*) FROM harvest.voyage_embeddings")
    assert prompts[0][0] > 0  # the embedding step found the summaries of *these* prompts (same hashes)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("  prompt_template: 'no placeholder'\n", "attributes.prompt_template"),
        ("  prompt_template: '{document}'\n", "attributes.prompt_template"),
        ("  model: claude-haiku-9\n", "attributes.model"),
        ("  few_shot: [{input: a, output: b}]\n", "attributes.few_shot"),
    ],
)
def test_bad_chain_overrides_fail_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, field: str
) -> None:
    project = _new_project(tmp_path / "proj")
    folder = project / "myproj" / "defs" / "summaries"
    folder.mkdir()
    (folder / "defs.yaml").write_text(
        "type: harvest_defs.ClaudeBatchHarvest\nattributes:\n  preset: corpus_summaries\n" + line
    )
    message = _load_error(project, monkeypatch)
    assert f"summaries/defs.yaml: {field}:" in message, message[-2000:]


def test_partitions_upstream_needs_a_partitioned_upstream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _new_project(tmp_path / "proj")
    defs_dir = project / "myproj" / "defs"
    (defs_dir / "mine").mkdir()
    (defs_dir / "mine" / "rows.jsonl").write_text('{"id": "a", "text": "hello", "topic": "x"}\n')
    (defs_dir / "mine" / "defs.yaml").write_text(
        "type: harvest_defs.ClaudeBatchHarvest\nattributes:\n  name: mine\n  source:\n    files: rows.jsonl\n"
        "  prompt_template: 'Say: {{ text }}'\n"
    )
    (defs_dir / "vectors").mkdir()
    (defs_dir / "vectors" / "defs.yaml").write_text(
        "type: harvest_defs.VoyageEmbeddings\nattributes:\n  upstream: mine\n  partitions: upstream\n"
    )
    message = _load_error(project, monkeypatch)
    assert "vectors/defs.yaml: attributes.partitions: 'mine' has no partitions" in message, message[-2000:]
    (defs_dir / "mine" / "defs.yaml").write_text(
        (defs_dir / "mine" / "defs.yaml").read_text() + "  partitions:\n    column: topic\n"
    )
    for name in [m for m in sys.modules if m == "myproj" or m.startswith("myproj.")]:
        del sys.modules[name]
    defs = dg.load_from_defs_folder(path_within_project=project)  # now it loads
    assert defs.resolve_assets_def("mine_embeddings").partitions_def is not None
