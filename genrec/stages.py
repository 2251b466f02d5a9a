"""One run's stages in the artifact store: each is built once, or reused, and records what it cost.

A stage's artifact is keyed by its component, options, inputs and seed (:meth:`Stages.manifest`; no
seed for a component that declares ``seeded = False``); its training checkpoints by the same less the
options that only say how long to train or how the trained model is read out (a component's
``readout_options``), so a longer run continues a finished shorter one, and so does a run that reads
the same training out another way. Under ``torchrun`` every rank builds (training is collective) and
rank 0 alone publishes (:meth:`Stages.publish`).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from genrec import distributed
from genrec.artifacts import Artifact, ArtifactStore, load_arrays, save_arrays
from genrec.config import KIND_OF_STAGE, PipelineConfig
from genrec.console import epoch_line, epoch_records, log
from genrec.contracts import ItemEmbeddings, RecData
from genrec.errors import ComponentError, ConfigError
from genrec.registry import Registry
from genrec.saved import FITTED, load_fitted

BUILD_RECORD = "build.json"  # in each stage artifact: the seconds its build took, and how training went
HISTORY = "history.jsonl"  # in a training stage's artifact: one line per epoch of the shared loop
METRICS = "metrics.jsonl"  # in the run directory: every training stage's epochs, live, then complete

Build = Callable[[Path], None]  # writes a stage's output into the directory it is given


class Stages:
    """Builds or reuses the stages of one (resolved) config for one dataset, in one store."""

    def __init__(self, config: PipelineConfig, registry: Registry, store: ArtifactStore, data: RecData, run_dir: Path):
        self.config, self.registry, self.store, self.data, self.run_dir = config, registry, store, data, run_dir
        self.fresh = False  # rebuild every stage instead of reusing the store's
        self.timings: dict[str, float] = {}
        self.records: dict[str, dict[str, Any]] = {}  # per stage: key, reused, path, build seconds, training
        self._built: dict[str, Any] = {}  # the component that built each stage in this run

    def component(self, stage: str) -> Any:
        """A new, unfitted component of ``stage``, built from the config."""
        spec = getattr(self.config, stage)
        self._built[stage] = self.registry.create(KIND_OF_STAGE.get(stage, stage), spec.name, **spec.options)
        return self._built[stage]

    def fitted(self, stage: str) -> Any:
        """The component that built ``stage`` in this run, or, for a reused stage, one loaded from its artifact
        (built from its options alone when the artifact predates saved fitted state)."""
        if stage in self._built:
            return self._built[stage]
        component = self.component(stage)
        saved = Path(self.records[stage]["path"]) / FITTED
        return load_fitted(component, saved, f"the {stage} stage") if saved.is_dir() else component

    def _registered(self, stage: str) -> Any:
        return self.registry.get(KIND_OF_STAGE.get(stage, stage), getattr(self.config, stage).name)

    def manifest(self, stage: str, inputs: Mapping[str, str]) -> dict[str, Any]:
        spec = getattr(self.config, stage)
        component = self._registered(stage)
        # A component that declares ``seeded = False`` gives the same output whatever the seed: every
        # seed shares one artifact, keyed as seed 0's (so a store built by seed 0 stays valid).
        seeded = getattr(component.load(), "seeded", True)
        manifest = {
            "component": spec.name,
            "plugin": component.plugin,
            "options": {**component.defaults(), **spec.options},
            "inputs": dict(inputs),
            "seed": self.config.seed if seeded else 0,
        }
        if distributed.world_size() > 1:  # more ranks train on larger effective batches: another result
            manifest["world_size"] = distributed.world_size()
        return manifest

    def run(self, stage: str, inputs: Mapping[str, str], build: Build) -> tuple[Path, str]:
        """The stage's artifact directory and key: reused from the store, or built by ``build`` now."""
        from genrec.threads import fit_threads
        from genrec.training import GROWABLE, TrainResult, seed_everything

        started = time.perf_counter()
        manifest = self.manifest(stage, inputs)
        key_preview = self.store.stage_key(stage, manifest)
        readout = getattr(self._registered(stage).load(), "readout_options", ())
        options = {k: v for k, v in manifest["options"].items() if k not in GROWABLE and k not in readout}
        work_key = self.store.stage_key(stage, {**manifest, "options": options})
        workdir = self.store.workdir(stage, work_key)

        def run(tmp: Path) -> None:
            seed_everything(self.config.seed)
            fit_threads()  # each stage starts on the cores other processes leave free
            self.data.workdir = workdir
            # rank 0 alone writes checkpoints, so it alone holds their lock
            held = self.store.holding(self.store.work_lock(stage, work_key), f"the {stage} checkpoints {work_key}")
            main = distributed.is_main()
            lock = held if main else nullcontext()
            with lock, epoch_records(self.run_dir / METRICS, stage) if main else nullcontext():
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
        artifact = self.publish(stage, manifest, run)
        self.timings[stage] = round(time.perf_counter() - started, 2)
        built = artifact.path / BUILD_RECORD
        record = json.loads(built.read_text()) if built.is_file() else {}
        self.records[stage] = {
            "key": artifact.key,
            "reused": artifact.reused,
            "path": str(artifact.path),
            "build_seconds": record.get("seconds"),
            "training": record.get("training"),
        }
        if artifact.reused:
            log(f"{stage}: reused {artifact.path}")
        return artifact.path, artifact.key

    def publish(self, stage: str, manifest: dict[str, Any], run: Build) -> Artifact:
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

    def epoch_history(self) -> str:
        """Every training stage's epochs (one JSON line each), across resumes and reuse."""
        texts = [(Path(r["path"]) / HISTORY) for r in self.records.values()]
        return "".join(path.read_text() for path in texts if path.is_file())


def checked_embeddings(embeddings: object, n_items: int, where: str) -> ItemEmbeddings:
    """A stage's embeddings as the contract wants them (one finite float row per item), or one clear error
    that blames the component which made them, before anything downstream reads them."""
    if not isinstance(embeddings, ItemEmbeddings):
        raise ComponentError(f"{where} returned {type(embeddings).__name__}, not ItemEmbeddings")
    vectors = embeddings.vectors
    if vectors.ndim != 2 or len(vectors) != n_items:
        raise ComponentError(f"{where} returned vectors of shape {vectors.shape} for {n_items} items")
    if not np.issubdtype(vectors.dtype, np.floating):
        raise ComponentError(f"{where} returned {vectors.dtype} vectors; floating point is needed")
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if len(bad):
        raise ComponentError(f"{where} returned NaN or infinity for item {bad[0] + 1} ({len(bad)} of {n_items} items)")
    return embeddings


def save_embeddings(directory: Path, embeddings: ItemEmbeddings) -> None:
    views = {f"view_{name}": np.asarray(v, dtype=np.float32) for name, v in embeddings.views.items()}
    save_arrays(
        directory / "embeddings.npz",
        vectors=np.asarray(embeddings.vectors, dtype=np.float32),
        item_ids=embeddings.item_ids,
        **views,
    )
    (directory / "info.json").write_text(json.dumps({"modality": embeddings.modality, "views": list(embeddings.views)}))


def load_embeddings(directory: Path) -> ItemEmbeddings:
    arrays = load_arrays(directory / "embeddings.npz")
    info = json.loads((directory / "info.json").read_text())
    views = {name: arrays[f"view_{name}"] for name in info["views"]}
    embeddings = ItemEmbeddings(arrays["vectors"], modality=info["modality"], views=views)
    if not np.array_equal(arrays["item_ids"], embeddings.item_ids):
        raise ConfigError(f"{directory}: stored item ids do not match the dataset's 1..n numbering")
    return embeddings
