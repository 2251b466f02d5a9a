"""A hybrid run (``causal`` with ``rerank``) against its own generative ranking, on the same weights.

Loads a finished run, then ranks its validation and test users twice: as the run does (the beam
re-scored with the dense weight chosen on validation) and by the codes alone (beam ``beam``, as
``rerank=false`` would). Prints both as one JSON object. ``--generative-results FILE`` also writes the
generative ranking as a results file of its own, with per-user ranks for ``genrec report``'s paired test:
the run's results with ``rerank=false``, which is what that run would have given, since ``rerank`` changes
only the ranking after training. ``--generative-only`` skips the hybrid, whose metrics the run's results
already hold. Usage::

    GENREC_DATA_DIR=../shared/data python benchmarks/rerank.py runs/prorec-hybrid [--generative-results F]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def main() -> None:
    import copy

    import genrec
    from genrec.artifacts import atomic_write_json
    from genrec.evaluation import encode_ranks, metrics_of_ranks, split_ranks, under_protocol
    from genrec.protocol import leave_one_out

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--generative-results", help="write the generative ranking's results file here")
    parser.add_argument("--generative-only", action="store_true", help="skip re-ranking the hybrid (in the results)")
    args = parser.parse_args()
    recommender = genrec.load(args.run)
    generator = recommender.generator
    config = recommender.results["config"]
    dataset = genrec.load_dataset(config["data"])
    split = leave_one_out(dataset, config["max_history"], bool(config.get("exclude_history")))
    chosen = generator.rerank_weight
    out: dict[str, Any] = {"run": args.run, "rerank_weight": chosen}
    ranks_of: dict[str, dict[str, Any]] = {}
    rankings = (("hybrid", chosen), ("generative", None))
    for label, weight in rankings[1:] if args.generative_only else rankings:
        generator.rerank_weight = weight
        recommend = under_protocol(generator.recommend, split.exclude_history)
        started = time.perf_counter()
        ranks = ranks_of[label] = split_ranks(recommend, split)
        out[label] = {name: metrics_of_ranks(r) for name, r in ranks.items()}
        out[label]["seconds"] = round(time.perf_counter() - started, 1)
        print(label, {s: round(out[label][s]["ndcg@10"], 4) for s in ("valid", "test")}, flush=True)
    if args.generative_results:
        results = copy.deepcopy(recommender.results)
        results["config"]["stages"]["generator"]["options"]["rerank"] = False
        results["training"].pop("selected", None)
        results.update(valid=out["generative"]["valid"], test=out["generative"]["test"])
        results["per_user"] = encode_ranks(**ranks_of["generative"])
        results["derived"] = f"the generative ranking of {args.run}'s weights (benchmarks/rerank.py)"
        atomic_write_json(args.generative_results, results)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
