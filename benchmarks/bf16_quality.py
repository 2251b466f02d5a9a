"""Does bf16 autocast hurt a generator's validation metrics? The same recipe in float32 and in bf16.

    python benchmarks/bf16_quality.py --recipe tiger --data demo --seeds 0 1 2

Runs ``genrec recipe RECIPE`` once per dtype and seed (``--set generator.bf16=...``; a shared store, so
the code stages are computed once per seed) and prints validation NDCG@10 and Recall@10 per run, their
mean per dtype, and the generator's fit time. Test metrics are not looked at.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run(recipe: str, data: str, seed: int, bf16: bool, root: Path, extra: list[str]) -> dict:
    run_dir = root / f"{recipe}-{seed}-{'bf16' if bf16 else 'fp32'}"
    command = [
        sys.executable, "-m", "genrec.cli", "recipe", recipe, "--data", data, "--seed", str(seed),
        "--run-dir", str(run_dir), "--store-dir", str(root / "store"),
        "--set", f"generator.bf16={str(bf16).lower()}", *extra,
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads((run_dir / "results.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="tiger")
    parser.add_argument("--data", default="demo")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="options", action="append", default=[], help="STAGE.OPTION=VALUE")
    args = parser.parse_args()
    extra = [part for option in args.options for part in ("--set", option)]
    scores: dict[str, list[float]] = {"fp32": [], "bf16": []}
    with tempfile.TemporaryDirectory(prefix="genrec-bf16-") as tmp:
        print(f"{args.recipe} on {args.data}: validation metrics (seed, dtype)")
        for seed in args.seeds:
            for bf16 in (False, True):
                dtype = "bf16" if bf16 else "fp32"
                results = run(args.recipe, args.data, seed, bf16, Path(tmp), extra)
                valid = results["valid"]
                scores[dtype].append(valid["ndcg@10"])
                print(
                    f"seed {seed} {dtype}: ndcg@10 {valid['ndcg@10']:.4f} recall@10 {valid['recall@10']:.4f} "
                    f"(generator fit {results['timings']['generator_fit']:.1f} s)"
                )
    for dtype, values in scores.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        mean = statistics.mean(values)
        print(f"{dtype}: mean validation ndcg@10 {mean:.4f} +- {spread:.4f} over {len(values)} seeds")


if __name__ == "__main__":
    main()
