"""Codes of the catalogue items no training sequence has, before and after placing them as new items.

Usage: GENREC_DATA_DIR=../shared/data python benchmarks/unseen_items.py FUSER_DIR QUANTIZER_DIR
FUSER_DIR is a stored `prorec-align` output (its `embeddings.npz` holds the integrated vectors and the
adapted semantic view), QUANTIZER_DIR the `rkmeans`-based codes made from it. The items' collaborative
rows are replaced as ``unseen_items="adapted"`` does (the unit adapted text embedding times the
trained rows' mean length), residual k-means is fitted again with the recipe's options, and the script
prints how many distinct codes the unseen items get, and the collision rate, before and after.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from genrec.artifacts import load_arrays
from genrec.data import load_dataset
from genrec.protocol import leave_one_out
from genrec_plugins.quantizers.rkmeans import ResidualKMeans


def distinct(codes: np.ndarray) -> int:
    return len({tuple(row) for row in codes.tolist()})


def main(fuser_dir: Path, quantizer_dir: Path, data: str = "beauty") -> None:
    dataset = load_dataset(data)
    seen = np.zeros(dataset.n_items + 1, dtype=bool)
    seen[np.concatenate(leave_one_out(dataset, 20).train)] = True
    unseen = np.flatnonzero(~seen[1:])
    arrays = load_arrays(fuser_dir / "embeddings.npz")
    before = load_arrays(quantizer_dir / "codes.npz")["raw"]
    vectors, adapted = arrays["vectors"].copy(), arrays["view_semantic"]
    norm = np.linalg.norm(vectors[seen[1:]], axis=1).mean()
    vectors[unseen] = adapted[unseen] / np.linalg.norm(adapted[unseen], axis=1, keepdims=True) * norm
    after = ResidualKMeans(levels=3, codebook_size=256, seed=0).fit(vectors).encode(vectors)
    for name, codes in (("before", before), ("after", after)):
        print(
            f"{name}: {len(unseen)} unseen items get {distinct(codes[unseen])} distinct codes "
            f"({len(set(codes[unseen, 0].tolist()))} first-level); collision rate of the catalogue "
            f"{1 - distinct(codes) / len(codes):.4f}"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
