"""``genrec recipe prorec``: PRORec, with its ablations as flags in the same harness.

Stage 1 (``prorec-align``) aligns a collaborative model's item embeddings with adapted text
embeddings; stage 2 (``prorec-distill``) quantizes them into unified codes and distils both
modalities into the generator while it trains.
"""

import inspect
from typing import Any

import typer

from genrec.config import PipelineConfig, StageSpec
from genrec.errors import ConfigError
from genrec.recipe_command import recipe_command
from genrec_recipes.profiles import PROFILES

# Chosen on Beauty validation at a fixed budget of 8 generator epochs (docs/results.md): TIGER's residual
# k-means (3 x 256) gave better codes than hierarchical k-means (32, 32, 32), from text embeddings and
# from PRORec's aligned ones alike. The source ablations use it too, so --semantic-only is TIGER.
BASE_QUANTIZER = "rkmeans"
ABLATIONS = {
    "no_align": "--no-align",
    "no_distill": "--no-distill",
    "concat": "--concat",
    "semantic_only": "--semantic-only",
    "collaborative_only": "--collaborative-only",
}
HELP = {
    "no_align": "Ablation: train the collaborative model without the alignment loss.",
    "no_distill": "Ablation: no in-modality distillation while the generator trains.",
    "concat": "Baseline: concatenated text and SASRec embeddings, plain codes, no distillation.",
    "semantic_only": "Baseline: codes from text embeddings alone (TIGER-style), no distillation.",
    "collaborative_only": "Baseline: codes from SASRec embeddings alone, no distillation.",
}


def _flag(name: str) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(False, ABLATIONS[name], help=HELP[name]),
        annotation=bool,
    )


def apply_ablations(config: PipelineConfig, flags: dict[str, Any]) -> None:
    chosen = [ABLATIONS[name] for name, on in flags.items() if on]
    source_flags = [f for f in chosen if f in ("--concat", "--semantic-only", "--collaborative-only")]
    if len(source_flags) > 1:
        raise ConfigError(f"{' and '.join(source_flags)} cannot be combined: each picks where the codes come from")
    if source_flags and ("--no-align" in chosen or "--no-distill" in chosen):
        raise ConfigError(f"{source_flags[0]} already has no alignment and no distillation")
    if flags.get("no_align") and config.fuser is not None:
        config.fuser.options["align_weight"] = 0.0
    if flags.get("no_distill") and config.quantizer is not None:
        config.quantizer.options.update(collaborative_weight=0.0, semantic_weight=0.0)
    fusers = {"concat": "concat", "semantic_only": "semantic", "collaborative_only": "collaborative"}
    for name, fuser in fusers.items():
        if flags.get(name):
            config.fuser = StageSpec(fuser, {})
            if config.quantizer is not None and config.quantizer.name == "prorec-distill":  # else --quantizer's
                config.quantizer = StageSpec(BASE_QUANTIZER, {})
    config.notes["ablations"] = chosen


command = recipe_command(
    "prorec",
    stages={
        "semantic": "text",
        "collaborative": "sasrec",
        "fuser": "prorec-align",
        "quantizer": "prorec-distill",
        "generator": "tiger",
    },
    options={"prorec-distill": {"base": BASE_QUANTIZER}},
    extra=[_flag(name) for name in ABLATIONS],
    adjust=apply_ablations,
    doc="PRORec: progressive collaborative and semantic knowledge fusion for generative recommendation.",
    profiles=PROFILES,
)
