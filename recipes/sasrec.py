"""``genrec recipe sasrec``: the item-ID baseline (full-catalog scores, no codes)."""

from genrec.recipe_command import recipe_command
from genrec_recipes.profiles import PROFILES

command = recipe_command(
    "sasrec",
    stages={"generator": "sasrec"},
    doc="SASRec: a causal transformer over item IDs, trained with full-softmax next-item loss.",
    profiles=PROFILES,
)
