"""TIGER: an encoder-decoder transformer that generates the next item's semantic ID.

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
