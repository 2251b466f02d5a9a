"""Recipes: named pipelines with their own defaults, exposed as ``genrec recipe NAME``.

A recipe module calls :func:`recipe_command` with its stage defaults (component names and options) and
registers the returned function as a ``recipe`` component. Every stage stays swappable from the CLI
(``--semantic-embedder``, ``--fuser``, ``--quantizer``, ``--generator``, ``--set STAGE.OPTION=VALUE``); options
are validated before any training starts.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import typer

from genrec.config import (
    FLAGS,
    KIND_OF_STAGE,
    PipelineConfig,
    StageSpec,
    parse_settings,
    resolve_config,
    upgrade_stage_names,
)
from genrec.errors import ConfigError, DataError
from genrec.pipeline import Pipeline
from genrec.results import print_results

Adjust = Callable[[PipelineConfig, dict[str, Any]], None]


def _option(default: Any, *flags: str, help: str) -> Any:
    return typer.Option(default, *flags, help=help)


def _common_parameters(stages: Mapping[str, str | None]) -> list[inspect.Parameter]:
    def p(name: str, annotation: Any, default: Any) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)

    params = [p("data", str, _option("demo", "--data", help="Dataset: demo, beauty, sports, toys, or a directory."))]
    flags = {
        "semantic": ((FLAGS["semantic"], "--embedder"), "Semantic embedder (genrec list --kind embedder)."),
        "collaborative": ((FLAGS["collaborative"],), "Collaborative embedder, used when the fuser needs one."),
        "fuser": (("--fuser",), "Fuser."),
        "quantizer": (("--quantizer",), "Quantizer."),
        "generator": (("--generator",), "Generator."),
    }
    for stage, (names, text) in flags.items():
        if stage in stages:
            params.append(p(stage, str | None, _option(stages[stage], *names, help=text)))
    params += [
        p(
            "set",
            list[str] | None,
            _option(None, "--set", help="STAGE.OPTION=VALUE, e.g. generator.epochs=5 (repeatable)."),
        ),
        p("seed", int, _option(0, "--seed", help="Random seed for every stage.")),
        p("seeds", str | None, _option(None, "--seeds", help="Run once per seed, e.g. 0,1,2, then report mean ± std.")),
        p("max_history", int, _option(20, "--max-history", help="Most recent items in a history.")),
        p(
            "exclude_history",
            bool,
            _option(False, "--exclude-history", help="Protocol option: never rank a user's own history items."),
        ),
        p("device", str, _option("auto", "--device", help="auto, cpu, cuda, cuda:1, ...")),
        p("run_dir", Path | None, _option(None, "--run-dir", help="Run directory (default ./runs/<recipe>-...).")),
        p("store_dir", Path | None, _option(None, "--store-dir", help="Artifact store (default <run dir>/../store).")),
        p("force", bool, _option(False, "--force", help="Quantize even if a codebook collapses.")),
        p("resume", bool, _option(True, "--resume/--no-resume", help="Reuse finished stages and checkpoints.")),
        p("print_config", bool, _option(False, "--print-config", help="Print the resolved config and exit.")),
        p(
            "config_file",
            Path | None,
            _option(None, "--config", help="A config as --print-config prints it (JSON or YAML); flags and --set win."),
        ),
        p("as_json", bool, _option(False, "--json", help="Print the results as JSON on stdout.")),
    ]
    return params


def _refuse_overriding_flags(
    config: PipelineConfig,
    before: Mapping[str, Mapping[str, Any]],
    settings: Mapping[str, Mapping[str, str]],
    flags_on: list[inspect.Parameter],
) -> None:
    """A ``--set`` of an option that a recipe flag set would silently undo the flag: refuse it."""
    for stage, spec in config.stages().items():
        set_by_flags = {k for k, v in spec.options.items() if k not in before.get(stage, {}) or before[stage][k] != v}
        for option in sorted(set_by_flags & set(settings.get(stage, {}))):
            names = " ".join(p.default.param_decls[0] for p in flags_on)
            raise ConfigError(f"--set {stage}.{option} would undo {names}, which sets it; drop one of them")


def run_recipe(name: str, data: str = "demo", settings: Mapping[str, Any] | None = None, **flags: Any) -> dict:
    """Run a registered recipe from Python, as ``genrec recipe NAME`` would; returns its results.

    ``settings`` are ``--set`` values (``{"generator.epochs": 3}``); ``flags`` are the command's other
    options by their Python names (``seed=1``, ``generator="causal"``, ``run_dir=Path(...)``,
    ``no_distill=True``). With ``seeds="0,1,2"`` the result is the list of each seed's results.
    """
    from genrec.discovery import get_registry

    command = get_registry().get("recipe", name).load()
    parameters = inspect.signature(command).parameters
    unknown = sorted(set(flags) - set(parameters))
    if unknown:
        accepted = ", ".join(parameters)
        raise ConfigError(f"recipe {name!r}: unknown option(s) {', '.join(unknown)} (accepted: {accepted})")
    kwargs = {key: getattr(p.default, "default", p.default) for key, p in parameters.items()}
    kwargs.update(flags, data=data, set=[f"{key}={value}" for key, value in (settings or {}).items()])
    results = command(**kwargs)
    if results is None:
        raise ConfigError("run_recipe: print_config runs nothing")
    return results if flags.get("seeds") else results[0]


def _with_config_file(
    kwargs: dict[str, Any], path: Path, recipe: str, stages: Mapping[str, str | None]
) -> dict[str, Any]:
    """The command's arguments with a config file's values wherever a flag was left at its default."""
    import yaml

    if not path.is_file():
        raise DataError(path, "no such config file")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise DataError(path, f"not valid YAML or JSON ({getattr(error, 'problem', error)})",
                        mark.line + 1 if mark else None) from None  # fmt: skip
    if not isinstance(loaded, dict) or not isinstance(loaded.get("stages", {}), dict):
        raise DataError(path, "expected a mapping as --print-config prints it (recipe, data, stages, ...)")
    if loaded.get("recipe", recipe) != recipe:
        raise DataError(path, f"is a config of recipe {loaded['recipe']!r}, not {recipe!r}")
    defaults = {p.name: p.default.default for p in _common_parameters(stages)}
    merged = dict(kwargs)
    for key in ("data", "seed", "max_history", "exclude_history", "device", "force"):
        if key in loaded and kwargs[key] == defaults[key]:
            merged[key] = loaded[key]
    file_options: dict[str, dict[str, Any]] = {}
    for stage, spec in upgrade_stage_names(loaded.get("stages", {})).items():
        if stage not in stages:
            raise DataError(path, f"stage {stage!r} is not a stage of recipe {recipe!r} ({', '.join(stages)})")
        if not isinstance(spec, dict) or "name" not in spec:
            raise DataError(path, f"stage {stage!r}: expected {{name: ..., options: {{...}}}}")
        if kwargs.get(stage) == defaults.get(stage):
            merged[stage] = spec["name"]
            file_options[stage] = dict(spec.get("options") or {})
    merged["file_options"] = file_options
    return merged


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}", param_hint="--seeds") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise typer.BadParameter(f"expected distinct seeds, got {text!r}", param_hint="--seeds")
    return seeds


def print_seed_summary(run_dirs: list[str]) -> None:
    """Mean ± std over the seeds just run, on validation and test."""
    from genrec.console import console
    from genrec.report import group_runs, load_runs, summarize

    for group in group_runs(load_runs(run_dirs)).values():
        for split in ("valid", "test"):
            summary = summarize(group, split)
            cells = ", ".join(f"{m} {mean:.4f} ± {std:.4f}" for m, (mean, std) in summary.items() if "@10" in m)
            console.print(f"{split} over seeds {', '.join(str(r.seed) for r in group)}: {cells}")


def recipe_command(
    name: str,
    stages: Mapping[str, str | None],
    options: Mapping[str, Mapping[str, Any]] | None = None,
    extra: list[inspect.Parameter] | None = None,
    adjust: Adjust | None = None,
    doc: str = "",
    profiles: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
) -> Callable[..., None]:
    """Build the Typer command of a recipe with the given stage defaults.

    ``stages`` maps stage -> default component name (stages absent here do not exist in the recipe);
    ``options`` maps a component name to the recipe's default options for it, used whenever that
    component runs in the recipe; ``extra`` adds recipe-specific flags, which ``adjust(config, flags)``
    applies to the config before validation. ``profiles`` maps a dataset name to options per component
    name, applied when that dataset and component are used (a small dataset needs smaller codebooks and
    models). ``--set`` overrides both.
    """
    extra = extra or []

    def command(**kwargs: Any) -> list[dict[str, Any]] | None:
        from genrec.discovery import get_registry

        flags = {p.name: kwargs.pop(p.name) for p in extra}
        if kwargs["config_file"] is not None:
            kwargs = _with_config_file(kwargs, kwargs["config_file"], name, stages)
        file_options = kwargs.pop("file_options", {})
        specs = {
            stage: StageSpec(kwargs[stage], dict(file_options.get(stage, {}))) for stage in stages if kwargs.get(stage)
        }
        config = PipelineConfig(
            recipe=name,
            data=kwargs["data"],
            seed=kwargs["seed"],
            max_history=kwargs["max_history"],
            exclude_history=kwargs["exclude_history"],
            device=kwargs["device"],
            force=kwargs["force"],
            run_dir=kwargs["run_dir"],
            store_dir=kwargs["store_dir"],
            **specs,
        )
        if kwargs["max_history"] < 1:
            raise typer.BadParameter("must be >= 1", param_hint="--max-history")
        settings = parse_settings(kwargs["set"] or [])
        if adjust is not None:
            before = {stage: dict(spec.options) for stage, spec in config.stages().items()}
            adjust(config, flags)
            _refuse_overriding_flags(config, before, settings, [p for p in extra if flags[p.name]])
        registry = get_registry()
        profile = (profiles or {}).get(config.data, {})
        for stage, spec in config.stages().items():
            # A component's own profile for this dataset (a plugin's class attribute ``profiles``), then the recipe's.
            factory = registry.get(KIND_OF_STAGE.get(stage, stage), spec.name).load()
            own = getattr(factory, "profiles", {}).get(config.data, {})
            spec.options = {**(options or {}).get(spec.name, {}), **own, **profile.get(spec.name, {}), **spec.options}
        resolved = resolve_config(config, registry, settings)
        if kwargs["print_config"]:
            typer.echo(json.dumps(resolved.record(), indent=2, default=str))
            return None
        seeds = _seeds(kwargs["seeds"]) if kwargs["seeds"] else [config.seed]
        finished, all_results = [], []
        for seed in seeds:
            # One run directory per seed: <run dir>/seed<N> when one is given, else the default name.
            run_dir = config.run_dir / f"seed{seed}" if config.run_dir and kwargs["seeds"] else config.run_dir
            pipeline = Pipeline(dataclasses.replace(resolved, seed=seed, run_dir=run_dir), registry)
            pipeline.fresh = not kwargs["resume"]
            results = pipeline.run()
            print_results(results)
            if kwargs["as_json"]:
                typer.echo(json.dumps({k: v for k, v in results.items() if k != "per_user"}, indent=2))
            finished.append(results["run_dir"])
            all_results.append(results)
        if len(finished) > 1:
            print_seed_summary(finished)
        return all_results

    command.__signature__ = inspect.Signature(_common_parameters(stages) + extra)  # type: ignore[attr-defined]
    command.__doc__ = doc or f"Run the {name} recipe."
    command.__name__ = name.replace("-", "_")
    return command
