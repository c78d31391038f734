"""Both harvesters keep their ledger in one place: $HARVEST_HOME, else beside the active pipeline."""

from __future__ import annotations

from pathlib import Path

import dlt
import pytest

from harvest_defs.harvest.home import HOME_ENV, default_home


def test_env_wins_else_beside_the_active_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HOME_ENV, raising=False)
    seen: list[Path] = []

    @dlt.resource(name="probe")
    def probe():  # type: ignore[no-untyped-def]
        seen.append(default_home())
        yield {"x": 1}

    pipeline = dlt.pipeline("home_probe", pipelines_dir=str(tmp_path / "p"), destination="duckdb")
    pipeline.extract(probe())
    assert seen == [Path(pipeline.working_dir).parent / "home_probe.harvest"]
    assert not str(seen[0]).startswith(pipeline.working_dir + "/")  # never inside: dlt may wipe it

    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    assert default_home() == tmp_path / "home"
