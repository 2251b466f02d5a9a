"""Fit quantizers and report time and code quality.

    .venv/bin/python benchmarks/quantizers.py [EMBEDDINGS.npy] [--quantizers rkmeans,kmeans,rqvae] [--threads N]

Each quantizer is a name with its defaults, or ``name:option=value:option=value`` (for example
``kmeans:balanced=true``), options checked and typed as ``--set`` does.

Without a file it uses random clustered data shaped like Amazon Beauty's text embeddings
(12,101 items x 384, unit norm). A script, not a test: it takes minutes.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from genrec.codes import code_stats
from genrec.discovery import load_plugins
from genrec.errors import GenrecError


def clustered_embeddings(n: int = 12101, dim: int = 384, seed: int = 0) -> np.ndarray:
    """Topics, sub-topics within them, and item noise, normalised like sentence embeddings."""
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(40, dim))
    subtopics = topics[rng.integers(40, size=400)] + 0.7 * rng.normal(size=(400, dim))
    x = subtopics[rng.integers(400, size=n)] + 0.8 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("embeddings", nargs="?", help="a .npy file of (n_items, dim) embeddings")
    parser.add_argument("--quantizers", default="rkmeans,kmeans,rqvae", help="comma-separated NAME[:OPTION=VALUE...]")
    parser.add_argument("--threads", type=int, default=0, help="limit torch and BLAS threads (0: library defaults)")
    args = parser.parse_args()
    if args.threads:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    x = np.load(args.embeddings).astype(np.float32) if args.embeddings else clustered_embeddings()
    print(f"embeddings: {x.shape[0]} x {x.shape[1]} ({args.embeddings or 'random clustered'})")
    registry = load_plugins().registry
    results = {}
    for spec in args.quantizers.split(","):
        name, *settings = spec.split(":")
        if not all("=" in setting for setting in settings):
            parser.error(f"--quantizers {spec}: options are written name:option=value")
        try:
            component = registry.get("quantizer", name)
            options = component.validate(dict(s.split("=", 1) for s in settings), where=f"--quantizers {spec}")
        except GenrecError as error:
            parser.error(str(error))
        quantizer = component.build(**options)
        start = time.perf_counter()
        quantizer.fit(x)
        fitted = time.perf_counter()
        codes = quantizer.encode(x)
        encoded = time.perf_counter()
        stats = code_stats(codes, quantizer.codebook_sizes)
        usage = ", ".join(
            f"L{level['level']} {level['used']}/{level['size']} (perplexity {level['perplexity']:.0f})"
            for level in stats["levels"]
        )
        print(
            f"{spec:8s} fit {fitted - start:6.1f}s  encode {encoded - fitted:5.2f}s  "
            f"collision rate {stats['collision_rate']:.3f}  largest group {stats['largest_group']}  {usage}"
        )
        results[spec] = {"fit_s": fitted - start, "encode_s": encoded - fitted, **stats}
    print(json.dumps({name: {k: v for k, v in r.items() if k != "levels"} for name, r in results.items()}))


if __name__ == "__main__":
    main()
