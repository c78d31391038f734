"""Two processes writing the same DuckDB file: the store's lock makes the second wait instead of failing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb

WRITER = """
import sys, time, duckdb
from pathlib import Path
db, tag, use_lock = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
def write():
    con = duckdb.connect(db)
    con.execute("CREATE TABLE IF NOT EXISTS t (tag VARCHAR, i INTEGER)")
    con.execute("INSERT INTO t SELECT ?, range FROM range(1000)", [tag])
    time.sleep(1.0)  # hold the file like a dlt load does
    con.close()
if use_lock:
    from harvest_defs.defs.resources import HarvestStoreResource
    with HarvestStoreResource(home=str(Path(db).parent)).duckdb_lock(Path(db)):
        write()
else:
    write()
"""


def _writers(db: Path, use_lock: bool) -> list[subprocess.CompletedProcess[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), tag, "1" if use_lock else "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=60), *p.communicate()) for p in procs]


def test_locked_writers_both_succeed(tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    results = _writers(db, use_lock=True)
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-2000:] for r in results]
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT tag, count(*) FROM t GROUP BY tag ORDER BY tag").fetchall() == [
        ("a", 1000),
        ("b", 1000),
    ]
    con.close()


def test_unlocked_writers_collide(tmp_path: Path) -> None:
    """The failure the lock prevents (DuckDB admits one writing process per file)."""
    db = tmp_path / "warehouse.duckdb"
    holder = duckdb.connect(str(db))
    try:
        results = _writers(db, use_lock=False)
    finally:
        holder.close()
    assert all(r.returncode != 0 for r in results)
    assert all("lock" in r.stderr.lower() for r in results), [r.stderr[-500:] for r in results]
