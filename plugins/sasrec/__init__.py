"""SASRec: the tuned item-id baseline generator and a collaborative embedder (one shared model).

Registered lazily by "module:attribute", so importing this plugin imports no torch. Its model,
``genrec_plugins.sasrec.model.SASRec``, is public: ``prorec-align`` trains it as its collaborative model.
"""

import genrec


@genrec.hookimpl
def genrec_register(registry: genrec.Registry) -> None:
    registry.add(
        "generator",
        "sasrec",
        "genrec_plugins.sasrec.generator:SASRecGenerator",
        description="SASRec over item ids: full-softmax next-item training, full-catalog ranking (no codes)",
    )
    registry.add(
        "embedder",
        "sasrec",
        "genrec_plugins.sasrec.embedder:SASRecEmbedder",
        description="collaborative item vectors: the item embedding table of a trained SASRec",
    )
