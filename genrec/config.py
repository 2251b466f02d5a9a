"""A run's configuration: its stages' components and options, checked in full before any work.

:func:`resolve_config` is pure: it returns a new, validated :class:`PipelineConfig` (the recipe's
choices, ``--set`` values and every component's defaults merged) and leaves its input alone. The
pipeline runs only resolved configs, so each run resolves once; :meth:`PipelineConfig.record` is what
``--print-config`` prints and ``results.json`` keeps.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genrec.errors import ConfigError
from genrec.registry import Registry

STAGES = ("semantic", "collaborative", "fuser", "quantizer", "generator")
KIND_OF_STAGE = {"semantic": "embedder", "collaborative": "embedder"}  # each stage's component kind, where it differs
# Stage names of earlier releases, still read in --set, --config files and results files.
STAGE_ALIASES = {"embedder": "semantic"}
FLAGS = {"semantic": "--semantic-embedder", "collaborative": "--collaborative-embedder"}  # the embedder stages' flags


@dataclass
class StageSpec:
    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PipelineConfig:
    recipe: str
    data: str
    generator: StageSpec
    semantic: StageSpec | None = None  # the semantic (text) embedder
    collaborative: StageSpec | None = None  # the collaborative embedder, used if the fuser needs one
    fuser: StageSpec | None = None
    quantizer: StageSpec | None = None
    seed: int = 0
    max_history: int = 20
    exclude_history: bool = False  # the protocol option: rankings never hold the user's history items
    device: str = "auto"
    force: bool = False  # quantize even when the codebook collapses
    run_dir: Path | None = None
    store_dir: Path | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    resolved: bool = False  # set by resolve_config: the stages are the used ones, their options complete

    def stages(self) -> dict[str, StageSpec]:
        return {name: spec for name in STAGES if (spec := getattr(self, name)) is not None}

    def record(self) -> dict[str, Any]:
        """The resolved configuration as ``--print-config`` prints it and ``--config`` reads it."""
        if not self.resolved:
            raise ValueError("record() needs a resolved config: call resolve_config first")
        return {
            "recipe": self.recipe,
            "data": self.data,
            "seed": self.seed,
            "max_history": self.max_history,
            **({"exclude_history": True} if self.exclude_history else {}),
            "device": self.device,
            "force": self.force,
            "stages": {
                name: {"name": spec.name, "options": dict(spec.options)} for name, spec in self.stages().items()
            },
            **({"notes": self.notes} if self.notes else {}),
        }


def parse_settings(settings: list[str]) -> dict[str, dict[str, str]]:
    """``["generator.epochs=5", ...]`` -> ``{"generator": {"epochs": "5"}}``, each checked."""
    parsed: dict[str, dict[str, str]] = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        stage, dot, option = key.strip().partition(".")
        stage = STAGE_ALIASES.get(stage, stage)
        if not sep or not dot or not option:
            raise ConfigError(f"--set {setting!r}: expected STAGE.OPTION=VALUE, e.g. generator.epochs=5")
        if stage not in STAGES:
            raise ConfigError(f"--set {setting!r}: unknown stage {stage!r} (stages: {', '.join(STAGES)})")
        parsed.setdefault(stage, {})[option] = value.strip()
    return parsed


def resolve_config(
    config: PipelineConfig, registry: Registry, settings: Mapping[str, Mapping[str, str]] | None = None
) -> PipelineConfig:
    """``config`` with ``settings`` applied, the stages its fuser does not need dropped, and every
    component and option checked (names, types and values) before any work. ``config`` is unchanged."""
    from genrec.contracts import MODALITIES

    config = copy.deepcopy(config)
    settings = settings or {}
    for stage, options in settings.items():
        spec = getattr(config, stage)
        if spec is None:
            raise ConfigError(f"--set {stage}.…: recipe {config.recipe!r} has no {stage} stage")
        spec.options.update(options)
    if config.fuser is not None:
        fuser_cls = registry.get("fuser", config.fuser.name).load()
        requires = tuple(getattr(fuser_cls, "requires", ()))
        for modality in ("semantic", "collaborative"):  # each modality's embedder is the stage of its name
            if modality not in requires:
                setattr(config, modality, None)
        for modality in requires:
            if modality not in MODALITIES:
                raise ConfigError(f"fuser {config.fuser.name!r} requires unknown modality {modality!r}")
            if getattr(config, modality) is None:
                raise ConfigError(f"fuser {config.fuser.name!r} needs a {modality} embedder ({FLAGS[modality]})")
    for stage in settings:
        if getattr(config, stage) is None:
            raise ConfigError(
                f"--set {stage}.…: the {stage} stage is not used here (fuser {config.fuser.name!r} does not need it)"
            )
    for stage, spec in config.stages().items():
        component = registry.get(KIND_OF_STAGE.get(stage, stage), spec.name)
        where = f"{stage} {spec.name!r}"
        options = component.validate(spec.options, where=where)
        if stage in FLAGS:
            modality = getattr(component.load(), "modality", None)
            if modality not in (stage, None):
                raise ConfigError(f"{FLAGS[stage]} {spec.name!r} is a {modality} embedder; a {stage} one is needed")
        check_values(component, options, where)
        spec.options = {**component.defaults(), **options}
    generator_cls = registry.get("generator", config.generator.name).load()
    if getattr(generator_cls, "uses_codes", True) and (config.quantizer is None or config.fuser is None):
        raise ConfigError(f"generator {config.generator.name!r} needs codes: give --fuser and --quantizer")
    if config.exclude_history and "exclude_history" not in inspect.signature(generator_cls.recommend).parameters:
        raise ConfigError(f"--exclude-history: generator {config.generator.name!r} cannot exclude history items")
    return dataclasses.replace(config, resolved=True)


def check_values(component: Any, options: Mapping[str, Any], where: str) -> None:
    """Build the component once, so that its own value checks run before any stage does any work."""
    from genrec.device import resolve_device

    for name, value in options.items():
        if name == "device" and isinstance(value, str):
            resolve_device(value, f"{where} option 'device'")
    try:
        component.load()(**options)
    except ConfigError:
        raise
    except (ValueError, TypeError) as error:  # a third-party component's own check
        raise ConfigError(f"{where}: {error}") from None


def upgrade_stage_names(stages: Mapping[str, Any]) -> dict[str, Any]:
    """A mapping keyed by stage, with the stage names of earlier releases renamed to today's."""
    return {STAGE_ALIASES.get(stage, stage): value for stage, value in stages.items()}


def default_run_dir(record: Mapping[str, Any]) -> Path:
    """``./runs/<recipe>-<data>-seed<seed>-<hash>`` of a config's record: one command, one directory."""
    from genrec.artifacts import digest

    data = Path(str(record["data"])).name
    return Path("runs") / f"{record['recipe']}-{data}-seed{record['seed']}-{digest(record)[:8]}"
