"""The rows of docs/results.md, printed as Markdown from recipe results files.

    python benchmarks/results_table.py runs/*/results.json

One row per run and split (validation, then test): Recall and NDCG at 5, 10 and 20, the generator's best
epoch and epochs run, and the run's wall time (every stage's build time, training across resumes
included; see stage_times.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stage_times import stage_seconds

METRICS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10", "recall@20", "ndcg@20")


def label(results: dict) -> str:
    ablations = results["config"].get("notes", {}).get("ablations") or []
    generator = results["config"]["stages"]["generator"]["options"]
    budget = generator.get("epochs") if results.get("training") else None
    name = " ".join([results["recipe"], *ablations])
    return f"{name} ({budget} epochs max)" if budget else name


def duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def rows(results: dict) -> list[str]:
    training = results.get("training") or {}
    epochs = f"{training['best_epoch']} of {training['epochs_run']}" if training else ""
    seconds = stage_seconds(results)
    total = duration(sum(v for v in seconds.values() if v is not None)) + ("+" if None in seconds.values() else "")

    def cells(split: str) -> str:
        return " | ".join(f"{results[split][m]:.4f}" for m in METRICS)

    return [
        f"| {label(results)} | valid | {cells('valid')} | {epochs} | {total} |",
        f"| | test | {cells('test')} | | |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args()
    print(
        "| run | split | "
        + " | ".join(m.replace("recall", "R").replace("ndcg", "N") for m in METRICS)
        + " | best epoch | time |"
    )
    print("|---" * (len(METRICS) + 4) + "|")
    for path in args.results:
        print("\n".join(rows(json.loads(path.read_text()))))


if __name__ == "__main__":
    main()
