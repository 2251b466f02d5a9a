"""TIGER: an encoder-decoder transformer that generates the next item's semantic ID, and ``causal``, its
variant that learns from every position of a sequence in one pass.

Registered lazily by "module:attribute", so importing this plugin imports no torch.
"""

import genrec


@genrec.hookimpl
def genrec_register(registry: genrec.Registry) -> None:
    registry.add(
        "generator",
        "tiger",
        "genrec_plugins.tiger.generator:Tiger",
        description="TIGER encoder-decoder over semantic IDs, trie-constrained beam search decoding",
    )
    registry.add(
        "generator",
        "causal",
        "genrec_plugins.tiger.causal:Causal",
        description="causal item-level encoder + TIGER's code decoder over semantic IDs; trains every position",
    )
