"""PRORec: progressive collaborative and semantic knowledge fusion for generative recommendation.

Stage 1 is the ``prorec-align`` fuser, stage 2 the ``prorec-distill`` quantizer. Registered lazily by
"module:attribute", so importing this plugin imports no torch.
"""

import genrec


@genrec.hookimpl
def genrec_register(registry: genrec.Registry) -> None:
    registry.add(
        "fuser",
        "prorec-align",
        "genrec_plugins.prorec.align:ProrecAlign",
        description="PRORec stage 1: SASRec (or DIN-style) item embeddings aligned with adapted text embeddings",
    )
    registry.add(
        "quantizer",
        "prorec-distill",
        "genrec_plugins.prorec.distill:ProrecDistill",
        description="PRORec stage 2: a base quantizer's codes plus per-modality distillation losses for the generator",
    )
