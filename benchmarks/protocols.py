"""A finished run's ranking under ``exclude_history``, on the same trained weights.

A run trained under the standard protocol is ranked again with each user's history items removed,
as ``--exclude-history`` ranks. Training, epoch selection and a hybrid's rerank weight stay as the run
chose them under the standard protocol; only the ranking changes. So this is what the run's weights
give under the second protocol, not what a run trained under it would select (that takes a retraining).
Prints both protocols' validation and test NDCG@10 and writes the excluded ranking as a results file
of its own, with per-user ranks, for ``genrec report``. Usage::

    GENREC_DATA_DIR=../shared/data python benchmarks/protocols.py runs/toys-prorec-hybrid/seed0 \
        --results docs/results/prorec-hybrid-toys-seed0-20epochs-excluded.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time


def main() -> None:
    import genrec
    from genrec.artifacts import atomic_write_json
    from genrec.evaluation import encode_ranks, metrics_of_ranks, split_ranks, under_protocol
    from genrec.protocol import leave_one_out
    from genrec.results import baselines

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--results", required=True, help="write the excluded ranking's results file here")
    args = parser.parse_args()
    recommender = genrec.load(args.run)
    results = copy.deepcopy(recommender.results)
    if results["config"].get("exclude_history"):
        raise SystemExit(f"{args.run}: this run already ranks under exclude_history")
    dataset = genrec.load_dataset(results["config"]["data"])
    split = leave_one_out(dataset, results["config"]["max_history"], exclude_history=True)
    recommend = under_protocol(recommender.generator.recommend, exclude_history=True)
    started = time.perf_counter()
    ranks = split_ranks(recommend, split)
    seconds = round(time.perf_counter() - started, 1)
    results["config"]["exclude_history"] = True
    results["protocol"] = split.record()
    results.update({name: metrics_of_ranks(r) for name, r in ranks.items()})
    results["baselines"] = baselines(split, dataset.n_items)
    results["per_user"] = encode_ranks(**ranks)
    results["derived"] = f"{args.run}'s weights, ranked without history items (benchmarks/protocols.py)"
    atomic_write_json(args.results, results)
    summary = {
        "run": args.run,
        "seconds": seconds,
        **{
            protocol: {s: round(source[s]["ndcg@10"], 4) for s in ("valid", "test")}
            for protocol, source in (("standard", recommender.results), ("exclude_history", results))
        },
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
