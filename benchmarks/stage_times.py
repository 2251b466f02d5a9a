"""End-to-end wall time of recipe runs, per stage, from their results files.

    python benchmarks/stage_times.py runs/*/results.json

Each stage counts what building it took, also when the run reused it from the store (its
``build_seconds``); a generator trained across several sessions counts every epoch's training and
validation (``training.seconds``) plus the final evaluation. A stage reused from the store before build
times were recorded shows as "?" and leaves the total a lower bound.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from genrec.config import STAGES


def stage_seconds(results: dict) -> dict[str, float | None]:
    seconds: dict[str, float | None] = {}
    for stage in STAGES:
        if stage in results["stages"]:
            record = results["stages"][stage]
            built_here = None if record.get("reused") else results["timings"].get(stage)
            seconds[stage] = record.get("build_seconds", built_here)
    training = results.get("training")
    if training:  # spans resumes, unlike the generator's build time
        seconds["generator"] = training["seconds"] + results["timings"].get("evaluate", 0.0)
    return seconds


def minutes(value: float | None) -> str:
    return "?" if value is None else f"{value / 60:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args()
    print("minutes per stage (data preparation excluded)")
    print(f"{'run':48} " + " ".join(f"{stage:>13}" for stage in STAGES) + f" {'total':>8}")
    for path in args.results:
        results = json.loads(path.read_text())
        seconds = stage_seconds(results)
        known = sum(value for value in seconds.values() if value is not None)
        total = minutes(known) + ("+" if None in seconds.values() else "")
        cells = " ".join(f"{minutes(seconds[s]) if s in seconds else '-':>13}" for s in STAGES)
        print(f"{path.parent.name[:48]:48} {cells} {total:>8}")


if __name__ == "__main__":
    main()
