"""Built-in quantizers: hierarchical k-means, residual k-means and RQ-VAE.

Components are registered by "module:Class" string, so listing them imports neither torch nor the
k-means code.
"""

import genrec


@genrec.hookimpl
def genrec_register(registry):
    registry.add(
        "quantizer",
        "kmeans",
        "genrec_plugins.quantizers.kmeans:HierarchicalKMeans",
        description="hierarchical k-means: each cluster split again per level (optionally balanced)",
    )
    registry.add(
        "quantizer",
        "rkmeans",
        "genrec_plugins.quantizers.rkmeans:ResidualKMeans",
        description="residual k-means: each level clusters what the previous levels left unexplained",
    )
    registry.add(
        "quantizer",
        "rqvae",
        "genrec_plugins.quantizers.rqvae:RQVAE",
        description="RQ-VAE: MLP autoencoder with residual codebooks (TIGER's quantizer)",
    )
