"""Built-in recipes: ``prorec`` (flagship), ``tiger`` and ``sasrec`` (baselines).

Recipes build every component by name from the registry and import no algorithm module, so each
stage can be swapped on the command line.
"""

import genrec


@genrec.hookimpl
def genrec_register(registry: genrec.Registry) -> None:
    registry.add(
        "recipe",
        "prorec",
        "genrec_recipes.prorec:command",
        description="PRORec: aligned collaborative+semantic codes, distilled into a TIGER generator",
    )
    registry.add(
        "recipe", "tiger", "genrec_recipes.tiger:command", description="TIGER: text embeddings -> RQ codes -> seq2seq"
    )
    registry.add("recipe", "sasrec", "genrec_recipes.sasrec:command", description="SASRec: the item-ID baseline")
