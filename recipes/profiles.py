"""Settings per dataset where the defaults (sized for Amazon data) do not fit.

``demo`` has 320 items and 600 users: codebooks of 256 would give most items a code of their own at
the first level, and TIGER's full-size model would take minutes per run. The demo profile keeps every
recipe under two minutes on two CPU cores. Options given with ``--set`` override these.
"""

DEMO = {
    "rkmeans": {"levels": 2, "codebook_size": 16},
    "rqvae": {"levels": 2, "codebook_size": 16, "epochs": 20},
    "kmeans": {"levels": 2, "codebook_size": 16},
    "prorec-distill": {"levels": 2, "codebook_size": 16},
    "prorec-align": {"epochs": 40, "patience": 4},
    "sasrec": {"epochs": 40, "patience": 4},
    "tiger": {
        "d_model": 64,
        "layers_encoder": 2,
        "layers_decoder": 2,
        "heads": 2,
        "head_dim": 32,
        "ffn": 128,
        "epochs": 20,
        "patience": 3,
        "warmup_steps": 20,
        "bf16": False,  # autocast costs more than it saves on a model this small
    },
    "causal": {
        "d_model": 64,
        "heads": 2,
        "head_dim": 32,
        "ffn": 128,
        "dropout": 0.1,
        "batch_size": 32,
        "epochs": 40,
        "warmup_steps": 20,
    },  # fmt: skip
}

PROFILES = {"demo": DEMO}
