"""A hybrid run (``causal`` with ``rerank``) against its own generative ranking, on the same weights.

Loads a finished run, then ranks its validation and test users twice: as the run does (the beam
re-scored with the dense weight chosen on validation) and by the codes alone (beam ``beam``, as
``rerank=false`` would). Prints both as one JSON object. ``--generative-results FILE`` also writes the
generative ranking as a results file of its own, with per-user ranks for ``genrec report``'s paired test:
the run's results with ``rerank=false``, which is what that run would have given, since ``rerank`` changes
only the ranking after training. ``--generative-only`` skips the hybrid, whose metrics the run's results
already hold.

``--rerank-beam N`` re-scores an N-wide beam instead of the run's ``rerank_beam``, with the weight chosen
again on the validation users, as training would have chosen it. ``--choose-only`` stops there and prints
the validation NDCG@10 of each weight, so that the beam width is chosen on validation before any test
ranking; ``--hybrid-results FILE`` then writes the hybrid ranking under that beam as a results file, the
run's results with ``rerank_beam=N``. Usage::

    GENREC_DATA_DIR=../shared/data python benchmarks/rerank.py runs/prorec-hybrid [--generative-results F]
    GENREC_DATA_DIR=../shared/data python benchmarks/rerank.py RUN --rerank-beam 100 --choose-only
    GENREC_DATA_DIR=../shared/data python benchmarks/rerank.py RUN --rerank-beam 100 --hybrid-only --hybrid-results F
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
    from genrec_plugins.tiger.causal import rerank_choice

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--generative-results", help="write the generative ranking's results file here")
    parser.add_argument("--generative-only", action="store_true", help="rank by the codes alone, not the hybrid")
    parser.add_argument("--hybrid-only", action="store_true", help="rank the hybrid alone, not by the codes")
    parser.add_argument("--rerank-beam", type=int, help="re-score a beam this wide; the weight is chosen again")
    parser.add_argument("--choose-only", action="store_true", help="with --rerank-beam: validation only")
    parser.add_argument("--hybrid-results", help="write the hybrid ranking's results file here")
    args = parser.parse_args()
    if args.choose_only and not args.rerank_beam:
        parser.error("--choose-only needs --rerank-beam")
    if args.generative_only and args.hybrid_only:
        parser.error("--generative-only and --hybrid-only leave nothing to rank")
    if args.generative_only and args.hybrid_results or args.hybrid_only and args.generative_results:
        parser.error("a results file needs its ranking: drop --generative-only or --hybrid-only")
    recommender = genrec.load(args.run)
    generator = recommender.generator
    config = recommender.results["config"]
    dataset = genrec.load_dataset(config["data"])
    split = leave_one_out(dataset, config["max_history"], bool(config.get("exclude_history")))
    out: dict[str, Any] = {"run": args.run, "rerank_beam": generator.rerank_beam}
    if args.rerank_beam:
        generator.rerank_beam = out["rerank_beam"] = args.rerank_beam
        started = time.perf_counter()
        found = generator.rerank_ndcg(split.valid_histories, split.valid_targets, split.exclude_history)
        out["choice"] = rerank_choice(found)
        generator.rerank_weight = out["choice"]["weight"]
        out["choose_seconds"] = round(time.perf_counter() - started, 1)
        print(f"beam {args.rerank_beam}: weight {generator.rerank_weight}, valid ndcg@10 {max(found.values()):.5f}")
        if args.choose_only:
            print(json.dumps(out))
            return
    chosen = out["rerank_weight"] = generator.rerank_weight
    ranks_of: dict[str, dict[str, Any]] = {}
    rankings = (("hybrid", chosen), ("generative", None))
    skipped = "hybrid" if args.generative_only else "generative" if args.hybrid_only else None
    for label, weight in rankings:
        if label == skipped:
            continue
        generator.rerank_weight = weight
        recommend = under_protocol(generator.recommend, split.exclude_history)
        started = time.perf_counter()
        ranks = ranks_of[label] = split_ranks(recommend, split)
        out[label] = {name: metrics_of_ranks(r) for name, r in ranks.items()}
        out[label]["seconds"] = round(time.perf_counter() - started, 1)
        print(label, {s: round(out[label][s]["ndcg@10"], 4) for s in ("valid", "test")}, flush=True)
    for label, path in (("generative", args.generative_results), ("hybrid", args.hybrid_results)):
        if not path:
            continue
        results = copy.deepcopy(recommender.results)
        options = results["config"]["stages"]["generator"]["options"]
        if label == "generative":
            options["rerank"] = False
            results["training"].pop("selected", None)
        else:
            options["rerank_beam"] = out["rerank_beam"]
            if "choice" in out:
                results["training"].setdefault("selected", {})["rerank"] = out["choice"]
        results.update(valid=out[label]["valid"], test=out[label]["test"])
        results["per_user"] = encode_ranks(**ranks_of[label])
        results["derived"] = f"the {label} ranking of {args.run}'s weights (benchmarks/rerank.py)"
        atomic_write_json(path, results)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
