"""Time to load the harvest_defs code location vs. bare ``import dagster, dagster_dlt``.

Every Dagster run process (and the code server, and each sensor evaluation's process) loads the code
location, so its cost is paid per run. Each sample is a fresh subprocess; baseline and code location are
interleaved so machine noise hits both alike. Target: median ratio <= 1.3.

    uv run python benchmarks/load_time.py [--repetitions 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

BASELINE = "import dagster, dagster_dlt"
CODE_LOCATION = (
    "import sys\n"
    "from harvest_defs.definitions import defs\n"
    "defs.get_repository_def()\n"
    "loaded = [m for m in ('anthropic', 'voyageai', 'openai') if m in sys.modules]\n"
    "assert not loaded, f'SDKs imported while loading the code location: {loaded}'\n"
)
TARGET_RATIO = 1.3


def time_subprocess(code: str, cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=cwd)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "load_time.json")
    args = parser.parse_args()

    project = Path(__file__).resolve().parent.parent
    time_subprocess(BASELINE, project)  # warm the OS file cache and .pyc files for both sides
    time_subprocess(CODE_LOCATION, project)
    baseline: list[float] = []
    location: list[float] = []
    for _ in range(args.repetitions):
        baseline.append(time_subprocess(BASELINE, project))
        location.append(time_subprocess(CODE_LOCATION, project))
    ratio = statistics.median(location) / statistics.median(baseline)
    result = {
        "repetitions": args.repetitions,
        "baseline_median_s": round(statistics.median(baseline), 3),
        "code_location_median_s": round(statistics.median(location), 3),
        "baseline_s": [round(x, 3) for x in baseline],
        "code_location_s": [round(x, 3) for x in location],
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
    }
    print(json.dumps(result, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
