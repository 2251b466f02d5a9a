"""The pipeline every recipe runs: embedders -> fuser -> quantizer -> generator -> evaluation.

Components are built by name from the registry, so any stage can be swapped. Each stage's output is
an artifact in the store, keyed by the stage's component, options and inputs: a finished stage is
reused, a killed run resumes from the last finished stage, and a training stage resumes from its last
checkpoint (the work directory is keyed the same way). Test metrics are computed once, at the end.

Under ``torchrun`` every rank runs the pipeline (training and evaluation are collective), and rank 0
alone writes to the store and the run directory (see docs/distributed.md).
"""

from __future__ import annotations

import inspect
import json
import tempfile
import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from genrec import distributed
from genrec.artifacts import Artifact, ArtifactStore, atomic_write_json, load_arrays, save_arrays
from genrec.console import echo, epoch_line, epoch_records, log, run_log
from genrec.contracts import ItemCodes, ItemEmbeddings, RecData, auxiliary_losses_of
from genrec.errors import ConfigError
from genrec.registry import Registry
from genrec.saved import FITTED, ITEMS, save_fitted, write_items

STAGES = ("embedder", "collaborative", "fuser", "quantizer", "generator")
KIND_OF_STAGE = {"collaborative": "embedder"}
BUILD_RECORD = "build.json"  # in each stage artifact: the seconds its build took
HISTORY = "history.jsonl"  # in a training stage's artifact: one line per epoch of the shared loop
METRICS = "metrics.jsonl"  # in the run directory: every training stage's epochs, live, then complete
LOG = "log.txt"  # in the run directory: the console's lines


@dataclass
class StageSpec:
    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PipelineConfig:
    recipe: str
    data: str
    generator: StageSpec
    embedder: StageSpec | None = None  # the semantic embedder
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

    def stages(self) -> dict[str, StageSpec]:
        return {name: spec for name in STAGES if (spec := getattr(self, name)) is not None}


def parse_settings(settings: list[str]) -> dict[str, dict[str, str]]:
    """``["generator.epochs=5", ...]`` -> ``{"generator": {"epochs": "5"}}``, each checked."""
    parsed: dict[str, dict[str, str]] = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        stage, dot, option = key.strip().partition(".")
        if not sep or not dot or not option:
            raise ConfigError(f"--set {setting!r}: expected STAGE.OPTION=VALUE, e.g. generator.epochs=5")
        if stage not in STAGES:
            raise ConfigError(f"--set {setting!r}: unknown stage {stage!r} (stages: {', '.join(STAGES)})")
        parsed.setdefault(stage, {})[option] = value.strip()
    return parsed


def resolve_config(config: PipelineConfig, registry: Registry, settings: Mapping[str, Mapping[str, str]]) -> dict:
    """Validate every stage's component and options before any work; return the full resolved config."""
    from genrec.contracts import MODALITIES

    for stage, options in settings.items():
        spec = getattr(config, stage)
        if spec is None:
            raise ConfigError(f"--set {stage}.…: recipe {config.recipe!r} has no {stage} stage")
        spec.options.update(options)
    if config.fuser is not None:
        fuser_cls = registry.get("fuser", config.fuser.name).load()
        requires = tuple(getattr(fuser_cls, "requires", ()))
        if "semantic" not in requires:
            config.embedder = None
        if "collaborative" not in requires:
            config.collaborative = None
        for modality in requires:
            if modality not in MODALITIES:
                raise ConfigError(f"fuser {config.fuser.name!r} requires unknown modality {modality!r}")
            if getattr(config, "embedder" if modality == "semantic" else "collaborative") is None:
                flag = "--embedder" if modality == "semantic" else "--collaborative-embedder"
                raise ConfigError(f"fuser {config.fuser.name!r} needs a {modality} embedder ({flag})")
    for stage in settings:
        if getattr(config, stage) is None:
            raise ConfigError(
                f"--set {stage}.…: the {stage} stage is not used here (fuser {config.fuser.name!r} does not need it)"
            )
    resolved: dict[str, Any] = {}
    for stage, spec in config.stages().items():
        kind = KIND_OF_STAGE.get(stage, stage)
        component = registry.get(kind, spec.name)
        spec.options = component.validate(spec.options, where=f"{stage} {spec.name!r}")
        if stage in ("embedder", "collaborative"):
            expected = "semantic" if stage == "embedder" else "collaborative"
            modality = getattr(component.load(), "modality", None)
            if modality not in (expected, None):
                flag = "--embedder" if stage == "embedder" else "--collaborative-embedder"
                raise ConfigError(f"{flag} {spec.name!r} is a {modality} embedder; a {expected} one is needed")
        resolved[stage] = {"name": spec.name, "options": {**component.defaults(), **spec.options}}
        check_values(component, spec.options, f"{stage} {spec.name!r}")
    generator_cls = registry.get("generator", config.generator.name).load()
    if getattr(generator_cls, "uses_codes", True) and (config.quantizer is None or config.fuser is None):
        raise ConfigError(f"generator {config.generator.name!r} needs codes: give --fuser and --quantizer")
    if config.exclude_history and "exclude_history" not in inspect.signature(generator_cls.recommend).parameters:
        raise ConfigError(f"--exclude-history: generator {config.generator.name!r} cannot exclude history items")
    return {
        "recipe": config.recipe,
        "data": config.data,
        "seed": config.seed,
        "max_history": config.max_history,
        **({"exclude_history": True} if config.exclude_history else {}),
        "device": config.device,
        "force": config.force,
        "stages": resolved,
        **({"notes": config.notes} if config.notes else {}),
    }


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


def pick_device(preference: str = "auto") -> str:
    """The run's device from ``--device``: ``auto`` is CUDA when available, else the CPU."""
    from genrec.device import resolve_device

    return str(resolve_device(preference, "--device"))


def _save_embeddings(directory: Path, embeddings: ItemEmbeddings) -> None:
    views = {f"view_{name}": np.asarray(v, dtype=np.float32) for name, v in embeddings.views.items()}
    save_arrays(
        directory / "embeddings.npz",
        vectors=np.asarray(embeddings.vectors, dtype=np.float32),
        item_ids=embeddings.item_ids,
        **views,
    )
    (directory / "info.json").write_text(json.dumps({"modality": embeddings.modality, "views": list(embeddings.views)}))


def _load_embeddings(directory: Path) -> ItemEmbeddings:
    arrays = load_arrays(directory / "embeddings.npz")
    info = json.loads((directory / "info.json").read_text())
    views = {name: arrays[f"view_{name}"] for name in info["views"]}
    embeddings = ItemEmbeddings(arrays["vectors"], modality=info["modality"], views=views)
    if not np.array_equal(arrays["item_ids"], embeddings.item_ids):
        raise ConfigError(f"{directory}: stored item ids do not match the dataset's 1..n numbering")
    return embeddings


class Pipeline:
    def __init__(self, config: PipelineConfig, registry: Registry):
        self.config = config
        self.registry = registry
        self.timings: dict[str, float] = {}
        self.reused: dict[str, dict[str, Any]] = {}
        self._built: dict[str, Any] = {}  # the component each stage built last, for its training record
        self.fresh = False  # rebuild every stage instead of reusing the store's

    def _build(self, stage: str) -> Any:
        spec = getattr(self.config, stage)
        self._built[stage] = self.registry.create(KIND_OF_STAGE.get(stage, stage), spec.name, **spec.options)
        return self._built[stage]

    def _manifest(self, stage: str, inputs: Mapping[str, str]) -> dict[str, Any]:
        spec = getattr(self.config, stage)
        component = self.registry.get(KIND_OF_STAGE.get(stage, stage), spec.name)
        manifest = {
            "component": spec.name,
            "plugin": component.plugin,
            "options": {**component.defaults(), **spec.options},
            "inputs": dict(inputs),
            "seed": self.config.seed,
        }
        if distributed.world_size() > 1:  # more ranks train on larger effective batches: another result
            manifest["world_size"] = distributed.world_size()
        return manifest

    def _stage(self, stage: str, inputs: Mapping[str, str], build: Any) -> tuple[Path, str]:
        from genrec.threads import fit_threads
        from genrec.training import GROWABLE, TrainResult, seed_everything

        started = time.perf_counter()
        manifest = self._manifest(stage, inputs)
        key_preview = self.store.stage_key(stage, manifest)
        # Stages that differ only in how long they train share their checkpoints, kept after the stage
        # is published: a run with more epochs (or patience) continues a finished shorter one.
        options = {k: v for k, v in manifest["options"].items() if k not in GROWABLE}
        work_key = self.store.stage_key(stage, {**manifest, "options": options})
        workdir = self.store.workdir(stage, work_key)

        def run(tmp: Path) -> None:
            seed_everything(self.config.seed)
            fit_threads()  # each stage starts on the cores other processes leave free
            self.data.workdir = workdir
            # rank 0 alone writes checkpoints, so it alone holds their lock
            held = self.store.holding(self.store.work_lock(stage, work_key), f"the {stage} checkpoints {work_key}")
            lock = held if distributed.is_main() else nullcontext()
            with lock, epoch_records(self.run_dir / METRICS, stage):
                build(tmp)
            # What building cost (and how training went), kept with the artifact for runs that reuse it.
            record: dict[str, Any] = {"seconds": round(time.perf_counter() - started, 2)}
            trained = getattr(self._built.get(stage), "result", None)
            if isinstance(trained, TrainResult):
                record["training"] = trained.summary()
                lines = (epoch_line(stage, epoch) for epoch in trained.history)
                (tmp / HISTORY).write_text("".join(line + "\n" for line in lines))
            (tmp / BUILD_RECORD).write_text(json.dumps(record))

        log(f"[bold]{stage}[/bold]: {getattr(self.config, stage).name}")
        if self.fresh and distributed.is_main():
            import shutil

            shutil.rmtree(self.store.path_for(stage, key_preview), ignore_errors=True)
            shutil.rmtree(workdir, ignore_errors=True)
        artifact = self._publish(stage, manifest, run)
        self.timings[stage] = round(time.perf_counter() - started, 2)
        built = artifact.path / BUILD_RECORD
        record = json.loads(built.read_text()) if built.is_file() else {}
        self.reused[stage] = {
            "key": artifact.key,
            "reused": artifact.reused,
            "path": str(artifact.path),
            "build_seconds": record.get("seconds"),
            "training": record.get("training"),
        }
        if artifact.reused:
            log(f"{stage}: reused {artifact.path}")
        return artifact.path, artifact.key

    def _publish(self, stage: str, manifest: dict[str, Any], run: Any) -> Artifact:
        """The store's stage; distributed, every rank builds (training is collective), rank 0 publishes.

        Rank 0 decides under the store's lock whether to build and tells the others; they build in a
        throwaway directory and, after a barrier, read what rank 0 published.
        """
        if distributed.world_size() == 1:
            return self.store.stage(stage, manifest, run)
        key = self.store.stage_key(stage, manifest)
        if distributed.is_main():
            built = False

            def build(tmp: Path) -> None:
                nonlocal built
                built = distributed.broadcast(True)
                run(tmp)

            self.store.stage(stage, manifest, build)
            if not built:
                distributed.broadcast(False)
        else:
            built = distributed.broadcast(False)
            if built:
                with tempfile.TemporaryDirectory(prefix=f"genrec-{stage}-") as tmp:
                    run(Path(tmp))
        distributed.barrier()
        return Artifact(stage, key, self.store.path_for(stage, key), manifest, reused=not built)

    def prepare(self) -> dict[str, Any]:
        """Validate the config, load the data and open the store; returns the resolved config."""
        from genrec.data.resolve import load_dataset
        from genrec.protocol import leave_one_out

        config = self.config
        distributed.init_from_env(config.device)
        self.resolved = resolve_config(config, self.registry, {})
        if distributed.world_size() > 1:  # its own run directory, and a record of how it ran
            self.resolved["world_size"] = distributed.world_size()
        self.run_dir = Path(config.run_dir or default_run_dir(self.resolved))
        self.store = ArtifactStore(config.store_dir or self.run_dir.parent / "store")
        started = time.perf_counter()
        self.dataset = load_dataset(config.data)
        self.split = leave_one_out(self.dataset, config.max_history, config.exclude_history)
        if len(self.split.test_targets) == 0:
            from genrec.errors import DataError

            raise DataError(
                self.dataset.path or Path(config.data), "no user has the 3 or more items a validation and test need"
            )
        self.data = RecData(self.dataset, self.split, seed=config.seed, device=pick_device(config.device))
        self.data_key = {"data": self.dataset.fingerprint, "max_history": config.max_history}
        if config.exclude_history:  # another protocol selects other epochs: keyed only when on, so older keys hold
            self.data_key["exclude_history"] = True
        self.timings["data"] = round(time.perf_counter() - started, 2)
        return self.resolved

    def embed(self) -> tuple[dict[str, ItemEmbeddings], dict[str, str]]:
        """The semantic and collaborative embeddings the fuser needs, with their artifact keys."""
        embeddings: dict[str, ItemEmbeddings] = {}
        keys: dict[str, str] = {}
        for stage, modality in (("embedder", "semantic"), ("collaborative", "collaborative")):
            if getattr(self.config, stage) is None:
                continue

            def build(tmp: Path, stage: str = stage) -> None:
                embedder = self._build(stage)
                _save_embeddings(tmp, embedder.embed(self.data))
                save_fitted(embedder, tmp / FITTED)

            path, keys[modality] = self._stage(stage, self.data_key, build)
            embeddings[modality] = _load_embeddings(path)
        return embeddings, keys

    def fuse(self) -> tuple[ItemEmbeddings, str, dict[str, ItemEmbeddings]]:
        embeddings, keys = self.embed()

        def build(tmp: Path) -> None:
            fuser = self._build("fuser")
            _save_embeddings(tmp, fuser.fuse(self.data, embeddings))
            save_fitted(fuser, tmp / FITTED)

        path, key = self._stage("fuser", {**self.data_key, **keys}, build)
        return _load_embeddings(path), key, embeddings

    def quantize(self, fused: ItemEmbeddings, fused_key: str) -> tuple[ItemCodes, dict[str, Any], str]:
        from genrec.codes import check_collapse, code_stats, disambiguate

        def build(tmp: Path) -> None:
            quantizer = self._build("quantizer")
            raw = quantizer.fit(fused.vectors).encode(fused.vectors)
            sizes = tuple(int(s) for s in quantizer.codebook_sizes)
            check_collapse(raw, sizes, force=self.config.force)
            unique = disambiguate(raw, sizes)
            save_arrays(tmp / "codes.npz", raw=raw, codes=unique.codes, sizes=np.asarray(unique.codebook_sizes))
            (tmp / "stats.json").write_text(json.dumps(code_stats(raw, sizes), indent=2))
            save_fitted(quantizer, tmp / FITTED)

        path, key = self._stage("quantizer", {"fused": fused_key}, build)
        arrays = load_arrays(path / "codes.npz")
        codes = ItemCodes(arrays["codes"], tuple(int(s) for s in arrays["sizes"]))
        stats = json.loads((path / "stats.json").read_text())
        log(
            f"codes: {codes.levels} levels {codes.codebook_sizes}, collision rate "
            f"{stats.get('collision_rate', float('nan')):.3f}"
        )
        return codes, stats, key

    def run(self) -> dict[str, Any]:
        """Every stage, then the results; the console's lines also go to the run directory's log.txt."""
        self.prepare()
        with run_log(self.run_dir / LOG) if distributed.is_main() else nullcontext():
            return self._run()

    def _run(self) -> dict[str, Any]:
        from genrec.evaluation import (
            encode_ranks,
            evaluate,
            evaluate_ranks,
            metrics_of_ranks,
            most_popular,
            under_protocol,
        )

        config = self.config
        split, dataset = self.split, self.dataset
        codes: ItemCodes | None = None
        stats: dict[str, Any] = {}
        aux_losses: list[Any] = []
        upstream: dict[str, str] = {k: str(v) for k, v in self.data_key.items()}
        if config.fuser is not None and config.quantizer is not None:
            fused, fused_key, _ = self.fuse()
            codes, stats, codes_key = self.quantize(fused, fused_key)
            aux_losses = auxiliary_losses_of(self._build("fuser"), fused) + auxiliary_losses_of(
                self._build("quantizer"), fused
            )
            upstream = {"codes": codes_key, "fused": fused_key}

        def build_generator(tmp: Path) -> None:
            generator = self._build("generator")
            fit_started = time.perf_counter()
            generator.fit(self.data, codes, aux_losses)
            fit_seconds = time.perf_counter() - fit_started
            eval_started = time.perf_counter()
            recommend = under_protocol(generator.recommend, split.exclude_history)
            valid_ranks = evaluate_ranks(recommend, split.valid_histories, split.valid_targets)
            test_ranks = evaluate_ranks(recommend, split.test_histories, split.test_targets)  # once, at the end
            record = {
                "valid": metrics_of_ranks(valid_ranks),
                "test": metrics_of_ranks(test_ranks),
                # Each user's target rank in the top 20 (0: not there): what paired significance tests need.
                "per_user": encode_ranks(valid=valid_ranks, test=test_ranks),
                "fit_seconds": round(fit_seconds, 2),
                "evaluate_seconds": round(time.perf_counter() - eval_started, 2),
            }
            (tmp / "metrics.json").write_text(json.dumps(record))
            # The trained model is the stage's product: weights and codes, and the catalog it ranks.
            save_fitted(generator, tmp / FITTED)
            write_items(tmp / ITEMS, dataset.items)

        aux_names = [getattr(a, "name", type(a).__name__) for a in aux_losses]
        generator_path, _ = self._stage("generator", {**upstream, "aux_losses": ",".join(aux_names)}, build_generator)
        metrics = json.loads((generator_path / "metrics.json").read_text())
        popular_recommend = under_protocol(most_popular(split.train, dataset.n_items), split.exclude_history)
        popular = evaluate(popular_recommend, split.test_histories, split.test_targets)

        results = {
            "recipe": config.recipe,
            "data": {**dataset.stats(), "fingerprint": dataset.fingerprint},
            "valid": metrics["valid"],
            "test": metrics["test"],
            "baselines": {"most_popular": {"test": popular}},
            "protocol": split.record(),
            "config": self.resolved,
            "timings": {
                **self.timings,
                "generator_fit": metrics["fit_seconds"],
                "evaluate": metrics["evaluate_seconds"],
            },
            "codes": stats,
            **({"per_user": metrics["per_user"]} if "per_user" in metrics else {}),
            "training": self.reused["generator"]["training"],  # the stage's record: spans resumes
            "stages": self.reused,
            "store": str(self.store.root.resolve()),
            "auxiliary_losses": aux_names,
            "genrec_version": _version(),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if distributed.is_main():
            self._write_metrics()
            atomic_write_json(self.run_dir / "results.json", results)
        results["run_dir"] = str(self.run_dir)
        return results

    def _write_metrics(self) -> None:
        """The run's metrics.jsonl, complete: every training stage's epochs, across resumes and reuse."""
        from genrec.artifacts import atomic_write_text

        lines = []
        for entry in self.reused.values():
            history = Path(entry["path"]) / HISTORY
            if history.is_file():
                lines.append(history.read_text())
        atomic_write_text(self.run_dir / METRICS, "".join(lines))


def _version() -> str:
    from genrec import __version__

    return __version__


def default_run_dir(resolved: Mapping[str, Any]) -> Path:
    """``./runs/<recipe>-<data>-seed<seed>-<hash>``: the same command maps to the same directory."""
    from genrec.artifacts import digest

    data = Path(str(resolved["data"])).name
    return Path("runs") / f"{resolved['recipe']}-{data}-seed{resolved['seed']}-{digest(resolved)[:8]}"


def print_results(results: Mapping[str, Any]) -> None:
    """The results table, timings and where the results are, on the console and in the run's log.txt."""
    from rich.table import Table

    table = Table(title=f"{results['recipe']} on {results['data']['name']}")
    table.add_column("split")
    metric_names = list(results["test"])
    for name in metric_names:
        table.add_column(name, justify="right")
    for split in ("valid", "test"):
        table.add_row(split, *(f"{results[split][m]:.4f}" for m in metric_names))
    table.add_row(
        "most popular (test)", *(f"{results['baselines']['most_popular']['test'][m]:.4f}" for m in metric_names)
    )
    run_dir = Path(results["run_dir"])
    with run_log(run_dir / LOG) if distributed.is_main() else nullcontext():
        echo(table)
        timing = ", ".join(f"{k} {v:.1f}s" for k, v in results["timings"].items())
        echo(f"timings: {timing}")
        training = results.get("training") or {}
        allowed = results["config"]["stages"]["generator"]["options"].get("epochs")
        if training and training.get("best_epoch") == training.get("epochs_run") == allowed:
            echo(
                f"note: the best epoch was the last one allowed ({allowed}): the generator was still improving "
                f"(--set generator.epochs=N with N > {allowed} continues it)"
            )
        echo(f"results: {run_dir / 'results.json'}; per-epoch metrics: {run_dir / METRICS}")


def config_dict(config: PipelineConfig) -> dict[str, Any]:
    return asdict(config)
