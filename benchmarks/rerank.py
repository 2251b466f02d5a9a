"""A hybrid run (``causal`` with ``rerank``) against its own generative ranking, on the same weights.

Loads a finished run, then ranks its validation and test users twice: as the run does (the beam
re-scored with the dense weight chosen on validation) and by the codes alone (beam ``beam``, as
``rerank=false`` would). Prints both as one JSON object. Usage::

    GENREC_DATA_DIR=../shared/data python benchmarks/rerank.py runs/prorec-hybrid
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def main() -> None:
    import genrec
    from genrec.evaluation import evaluate, under_protocol
    from genrec.protocol import leave_one_out

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    args = parser.parse_args()
    recommender = genrec.load(args.run)
    generator = recommender.generator
    config = recommender.results["config"]
    dataset = genrec.load_dataset(config["data"])
    split = leave_one_out(dataset, config["max_history"], bool(config.get("exclude_history")))
    chosen = generator.rerank_weight
    out: dict[str, Any] = {"run": args.run, "rerank_weight": chosen}
    for label, weight in (("hybrid", chosen), ("generative", None)):
        generator.rerank_weight = weight
        recommend = under_protocol(generator.recommend, split.exclude_history)
        started = time.perf_counter()
        out[label] = {
            "valid": evaluate(recommend, split.valid_histories, split.valid_targets),
            "test": evaluate(recommend, split.test_histories, split.test_targets),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(label, {s: round(out[label][s]["ndcg@10"], 4) for s in ("valid", "test")}, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
