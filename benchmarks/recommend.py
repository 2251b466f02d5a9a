"""How fast a trained run recommends: single-history latency (p50/p99) and batch throughput, on CPU.

Usage: python benchmarks/recommend.py RUN [RUN ...] [--requests 200] [--batch 1024] [--k 10]
Histories are drawn from the run's own catalogue (lengths 1..20, seed 0). Each request is one call of
``Recommender.recommend`` with raw ids, as an application would make it; the batch figure is one call
with ``--batch`` histories. Time it on idle cores: the last line is one JSON object keyed by run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import genrec


def histories(recommender: genrec.Recommender, count: int, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 21, size=count)
    return [[recommender.raw_id(int(i)) for i in rng.integers(1, recommender.n_items + 1, n)] for n in lengths]


def measure(run: Path, requests: int, batch: int, k: int) -> dict[str, float]:
    started = time.perf_counter()
    recommender = genrec.load(run)
    load_seconds = time.perf_counter() - started
    singles = histories(recommender, requests)
    recommender.recommend(singles[:5], k=k)  # warm-up: first calls build caches
    latencies = []
    for history in singles:
        started = time.perf_counter()
        recommender.recommend([history], k=k)
        latencies.append(time.perf_counter() - started)
    many = histories(recommender, batch, seed=1)
    started = time.perf_counter()
    recommender.recommend(many, k=k)
    batch_seconds = time.perf_counter() - started
    figures = {
        "generator": recommender.results["config"]["stages"]["generator"]["name"],
        "items": recommender.n_items,
        "load_s": round(load_seconds, 2),
        "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 1),
        "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 1),
        "batch_users_per_s": round(batch / batch_seconds, 1),
        "threads": torch.get_num_threads(),
    }
    print(f"{run}: {figures}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps({str(run): measure(run, args.requests, args.batch, args.k) for run in args.runs}))


if __name__ == "__main__":
    main()
