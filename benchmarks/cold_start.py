"""New items without retraining, on Beauty: hold out 5 % of the items from every stage, then add them.

A random 5 % of the items (seed 0) is removed from every user's sequence, and the ``tiger`` and
``prorec`` recipes train on what is left. The held-out items are then placed with ``genrec items add``'s
machinery (the run's own embedder, fuser and quantizer) and the runs rank the full catalogue again.
Measured on the users whose last item (their test target) is a held-out item, from their whole
history before it: Recall and NDCG at 10 for each run, for most-popular (it never ranks an item
without interactions) and for a text-similarity baseline (cosine between an item's text embedding and
the mean of the history's). Each run ranks new items both ways ``Recommender.recommend`` offers
(``new_items="follow"``: right after their nearest trained item; ``"generated"``: as the generator
writes them), and the same two ways are measured on the reduced dataset's own test users ("warm":
what following costs the users whose next item is not new).

Usage: GENREC_DATA_DIR=../shared/data python benchmarks/cold_start.py [--out runs/cold-start]
  [--set generator.epochs=10 ...] [--generator causal]. The recipes run as ``genrec recipe`` commands
  and resume from their store; the figures go to stdout and, as JSON, to OUT/cold-start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import genrec
from genrec.artifacts import atomic_write_json, load_arrays
from genrec.data import load_dataset
from genrec.data.format import write_dataset
from genrec.evaluation import most_popular, rank_metrics
from genrec.protocol import leave_one_out
from genrec.recommender import load_component, raw_id_field, stage_dir

KS = (10,)


def hold_out(dataset, fraction: float, seed: int):
    """(the reduced dataset's sequences and items, held-out item ids, old id -> new id) of ``dataset``."""
    rng = np.random.default_rng(seed)
    held = np.sort(rng.choice(np.arange(1, dataset.n_items + 1), round(fraction * dataset.n_items), replace=False))
    keep = np.setdiff1d(np.arange(1, dataset.n_items + 1), held)
    new_id = np.zeros(dataset.n_items + 1, dtype=np.int64)
    new_id[keep] = np.arange(1, len(keep) + 1)
    sequences = [new_id[s[new_id[s] > 0]] for s in dataset.sequences]
    sequences = [s for s in sequences if len(s)]
    items = [dataset.items[i - 1] for i in keep]
    return sequences, items, held, new_id


def cold_users(dataset, held: np.ndarray, max_history: int):
    """Users whose last item is held out: their histories (old ids, left-padded) and targets."""
    held_set = set(held.tolist())
    rows = [s for s in dataset.sequences if len(s) >= 2 and int(s[-1]) in held_set]
    histories = np.zeros((len(rows), max_history), dtype=np.int64)
    for row, sequence in enumerate(rows):
        history = sequence[:-1][-max_history:]
        histories[row, max_history - len(history) :] = history
    return histories, np.array([int(s[-1]) for s in rows], dtype=np.int64)


def run_recipe(recipe: str, data_dir: Path, out: Path, generator: str, settings: list[str]) -> Path:
    run_dir = out / recipe
    command = [
        "genrec", "recipe", recipe, "--data", str(data_dir), "--generator", generator,
        "--run-dir", str(run_dir), "--store-dir", str(out / "store"), *settings,
    ]  # fmt: skip
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, env=os.environ)
    print(f"{recipe}: {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return run_dir


def text_similarity(vectors: np.ndarray):
    """Recommend by cosine between each item's vector and the mean vector of the history."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    padded = np.concatenate([np.zeros((1, unit.shape[1]), unit.dtype), unit])

    def recommend(histories: np.ndarray, k: int) -> np.ndarray:
        profile = padded[histories].sum(axis=1)
        scores = profile @ unit.T
        return np.argsort(-scores, axis=1, kind="stable")[:, :k] + 1

    return recommend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="beauty")
    parser.add_argument("--out", type=Path, default=Path("runs/cold-start"))
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generator", default="causal", help="the code generator both recipes use")
    parser.add_argument("--set", action="append", default=[], help="STAGE.OPTION=VALUE for both recipes")
    parser.add_argument("--recipes", default="tiger,prorec")
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    sequences, items, held, new_id = hold_out(dataset, args.fraction, args.seed)
    data_dir = args.out / f"{dataset.name}-without-{len(held)}"
    if not (data_dir / "items.jsonl").is_file():
        write_dataset(data_dir, sequences, items)
    histories, targets = cold_users(dataset, held, 20)
    print(f"{len(held)} of {dataset.n_items} items held out; {len(targets)} users have one as their target")
    settings = [part for setting in args.set for part in ("--set", setting)]

    # The held-out items as new items: named by the dataset's own ids (or, without any, by a fresh name).
    named = raw_id_field(dataset.items) is not None
    new_items = [dataset.items[i - 1] if named else {**dataset.items[i - 1], "item_id": f"held-{i}"} for i in held]
    report: dict = {"data": args.data, "held_out_items": len(held), "cold_users": len(targets), "settings": args.set}
    for recipe in args.recipes.split(","):
        run_dir = run_recipe(recipe, data_dir, args.out, args.generator, settings)
        recommender = genrec.load(run_dir)
        if recommender.n_items == len(items):  # not added yet (a rerun reuses what it added)
            started = time.perf_counter()
            recommender.add_items(new_items, source=f"{args.data} held-out items")
            report.setdefault("add_seconds", {})[recipe] = round(time.perf_counter() - started, 2)
        # Internal ids of the run: kept items by their new id, held-out ones in the order they were added.
        mapped = new_id.copy()
        mapped[held] = np.arange(len(items) + 1, len(items) + 1 + len(held))
        cold = [[int(i) for i in row if i] for row in mapped[histories]]
        warm_split = leave_one_out(load_dataset(str(data_dir)), 20)
        warm = [[int(i) for i in row if i] for row in warm_split.test_histories]
        for mode in ("follow", "generated"):  # new items after their nearest trained item, or as generated
            for users, (given, wanted) in {
                "cold": (cold, mapped[targets]),
                "warm": (warm, warm_split.test_targets),
            }.items():
                lists = recommender.recommend(given, k=max(KS), ids="internal", new_items=mode)
                ranked = np.array([[scored.item for scored in row] for row in lists])
                report.setdefault(recipe, {})[f"{users} users, new items {mode}"] = rank_metrics(
                    ranked, wanted, ks=KS, errors=True
                )
        if "text-similarity" not in report:
            results = recommender.results
            semantic = load_arrays(stage_dir(run_dir, results, "semantic") / "embeddings.npz")["vectors"]
            vectors = np.concatenate([semantic, load_component(run_dir, results, "semantic").embed_new(new_items)])
            baselines = {
                "text-similarity": text_similarity(vectors),
                "most-popular": most_popular(sequences, recommender.n_items),  # new items have no interactions
            }
            for name, baseline in baselines.items():
                report[name] = rank_metrics(baseline(mapped[histories], max(KS)), mapped[targets], ks=KS, errors=True)
        print(json.dumps({recipe: report[recipe]}), flush=True)
    atomic_write_json(args.out / "cold-start.json", report)
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
