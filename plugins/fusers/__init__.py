"""Built-in fusers: ``semantic``, ``collaborative`` (one modality as it is) and ``concat``."""

import genrec


@genrec.hookimpl
def genrec_register(registry):
    registry.add(
        "fuser",
        "semantic",
        "genrec_plugins.fusers.basic:SemanticFuser",
        description="the semantic embedding as it is (TIGER-style codes)",
    )
    registry.add(
        "fuser",
        "collaborative",
        "genrec_plugins.fusers.basic:CollaborativeFuser",
        description="the collaborative embedding as it is",
    )
    registry.add(
        "fuser",
        "concat",
        "genrec_plugins.fusers.basic:ConcatFuser",
        description="L2-normalised semantic and collaborative embeddings side by side (naive baseline)",
    )
