"""Built-in embedders: ``text`` (sentence-transformers), ``tfidf``, ``precomputed``, ``precomputed-collaborative``.

Import-light: the components are registered by ``"module:attribute"`` and load their libraries when built.
"""

import genrec


@genrec.hookimpl
def genrec_register(registry):
    registry.add(
        "embedder",
        "text",
        "genrec_plugins.embedders.text:TextEmbedder",
        description="item text -> sentence-transformers vectors (all-MiniLM-L6-v2, offline)",
    )
    registry.add(
        "embedder",
        "tfidf",
        "genrec_plugins.embedders.tfidf:TfidfEmbedder",
        description="item text -> TF-IDF reduced by truncated SVD (no model needed)",
    )
    registry.add(
        "embedder",
        "precomputed",
        "genrec_plugins.embedders.precomputed:PrecomputedEmbedder",
        description="semantic item vectors from a .npy file",
    )
    registry.add(
        "embedder",
        "precomputed-collaborative",
        "genrec_plugins.embedders.precomputed:PrecomputedCollaborativeEmbedder",
        description="collaborative item vectors from a .npy file",
    )
