"""``genrec recipe sasrec``: the item-ID baseline (full-catalog scores, no codes)."""

from genrec.recipe import recipe_command

command = recipe_command(
    "sasrec",
    stages={"generator": "sasrec"},
    doc="SASRec: a causal transformer over item IDs, trained with full-softmax next-item loss.",
)
