"""The pipeline every recipe runs: embedders -> fuser -> quantizer -> generator -> evaluation.

Components are built by name from the registry, so any stage can be swapped. Each stage's output is
an artifact in the store (:mod:`genrec.stages`): a finished stage is reused, a killed run resumes
from the last finished stage, and a training stage from its last checkpoint. Test metrics are computed
once, at the end, and written with everything needed to reproduce them (:mod:`genrec.results`).

Under ``torchrun`` every rank runs the pipeline (training and evaluation are collective), and rank 0
alone writes to the store and the run directory (see docs/distributed.md).
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from genrec import distributed
from genrec.artifacts import ArtifactStore, atomic_write_json, atomic_write_text, load_arrays, save_arrays
from genrec.config import PipelineConfig, default_run_dir, resolve_config
from genrec.console import log, run_log
from genrec.contracts import ItemCodes, ItemEmbeddings, RecData, auxiliary_losses_of, fit_quantizer
from genrec.registry import Registry
from genrec.results import LOG, results_record
from genrec.saved import FITTED, ITEMS, save_fitted, write_items
from genrec.stages import METRICS, Stages, checked_embeddings, load_embeddings, save_embeddings


def pick_device(preference: str = "auto") -> str:
    """The run's device from ``--device``: ``auto`` is CUDA when available, else the CPU."""
    from genrec.device import resolve_device

    return str(resolve_device(preference, "--device"))


class Pipeline:
    """Runs one config; an unresolved config is resolved (and so checked in full) first."""

    def __init__(self, config: PipelineConfig, registry: Registry):
        self.config = config if config.resolved else resolve_config(config, registry)
        self.registry = registry
        self.fresh = False  # rebuild every stage instead of reusing the store's

    def prepare(self) -> dict[str, Any]:
        """Load the data and open the store; returns the config's record (what results.json keeps)."""
        from genrec.data.resolve import load_dataset
        from genrec.errors import DataError
        from genrec.protocol import leave_one_out

        config = self.config
        distributed.init_from_env(config.device)
        self.record = config.record()
        if distributed.world_size() > 1:  # its own run directory, and a record of how it ran
            self.record["world_size"] = distributed.world_size()
        self.run_dir = Path(config.run_dir or default_run_dir(self.record))
        store = ArtifactStore(config.store_dir or self.run_dir.parent / "store")
        started = time.perf_counter()
        self.dataset = load_dataset(config.data)
        self.split = leave_one_out(self.dataset, config.max_history, config.exclude_history)
        if len(self.split.test_targets) == 0:
            where = self.dataset.path or Path(config.data)
            raise DataError(where, "no user has the 3 or more items a validation and test need")
        self.data = RecData(self.dataset, self.split, seed=config.seed, device=pick_device(config.device))
        self.data_key = {"data": self.dataset.fingerprint, "max_history": config.max_history}
        if config.exclude_history:  # another protocol selects other epochs: keyed only when on, so older keys hold
            self.data_key["exclude_history"] = True
        self.stages = Stages(config, self.registry, store, self.data, self.run_dir)
        self.stages.fresh = self.fresh
        self.stages.timings["data"] = round(time.perf_counter() - started, 2)
        return self.record

    @property
    def store(self) -> ArtifactStore:
        return self.stages.store

    def embed(self) -> tuple[dict[str, ItemEmbeddings], dict[str, str]]:
        """The semantic and collaborative embeddings the fuser needs, with their artifact keys."""
        embeddings: dict[str, ItemEmbeddings] = {}
        keys: dict[str, str] = {}
        for stage in ("semantic", "collaborative"):  # each embedder stage is named after its modality
            if getattr(self.config, stage) is None:
                continue

            def build(tmp: Path, stage: str = stage) -> None:
                embedder = self.stages.component(stage)
                where = f"{stage} {getattr(self.config, stage).name!r}"
                save_embeddings(tmp, checked_embeddings(embedder.embed(self.data), self.data.n_items, where))
                save_fitted(embedder, tmp / FITTED)

            path, keys[stage] = self.stages.run(stage, self.data_key, build)
            embeddings[stage] = load_embeddings(path)
        return embeddings, keys

    def fuse(self) -> tuple[ItemEmbeddings, str, dict[str, ItemEmbeddings]]:
        embeddings, keys = self.embed()

        def build(tmp: Path) -> None:
            fuser = self.stages.component("fuser")
            where = f"fuser {self.config.fuser.name!r}"
            save_embeddings(tmp, checked_embeddings(fuser.fuse(self.data, embeddings), self.data.n_items, where))
            save_fitted(fuser, tmp / FITTED)

        path, key = self.stages.run("fuser", {**self.data_key, **keys}, build)
        return load_embeddings(path), key, embeddings

    def quantize(self, fused: ItemEmbeddings, fused_key: str) -> tuple[ItemCodes, dict[str, Any], str]:
        from genrec.codes import check_collapse, code_stats, disambiguate

        def build(tmp: Path) -> None:
            quantizer = self.stages.component("quantizer")
            fitted = fit_quantizer(quantizer, fused.vectors, self.config.seed, self.data.device)
            raw = fitted.encode(fused.vectors)
            sizes = tuple(int(s) for s in quantizer.codebook_sizes)
            check_collapse(raw, sizes, force=self.config.force)
            unique = disambiguate(raw, sizes)
            save_arrays(tmp / "codes.npz", raw=raw, codes=unique.codes, sizes=np.asarray(unique.codebook_sizes))
            (tmp / "stats.json").write_text(json.dumps(code_stats(raw, sizes), indent=2))
            save_fitted(quantizer, tmp / FITTED)

        path, key = self.stages.run("quantizer", {"fused": fused_key}, build)
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
        from genrec.evaluation import checked_ids, encode_ranks, metrics_of_ranks, split_ranks, under_protocol

        split = self.split
        codes: ItemCodes | None = None
        stats: dict[str, Any] = {}
        aux_losses: list[Any] = []
        upstream: dict[str, str] = {k: str(v) for k, v in self.data_key.items()}
        if self.config.fuser is not None and self.config.quantizer is not None:
            fused, fused_key, _ = self.fuse()
            codes, stats, codes_key = self.quantize(fused, fused_key)
            # The fitted fuser and quantizer (built now, or loaded from their stages) give the losses.
            aux_losses = [
                *auxiliary_losses_of(self.stages.fitted("fuser"), fused),
                *auxiliary_losses_of(self.stages.fitted("quantizer"), fused),
            ]
            upstream = {"codes": codes_key, "fused": fused_key}

        def build_generator(tmp: Path) -> None:
            generator = self.stages.component("generator")
            fit_started = time.perf_counter()
            generator.fit(self.data, codes, aux_losses)
            fit_seconds = time.perf_counter() - fit_started
            eval_started = time.perf_counter()
            ranking = under_protocol(generator.recommend, split.exclude_history)
            recommend = checked_ids(ranking, self.data.n_items, f"generator {self.config.generator.name!r}")
            ranks = split_ranks(recommend, split)  # test once, at the end
            record = {
                **{name: metrics_of_ranks(r) for name, r in ranks.items()},
                # Each user's target rank in the top 20 (0: not there): what paired significance tests need.
                "per_user": encode_ranks(**ranks),
                "fit_seconds": round(fit_seconds, 2),
                "evaluate_seconds": round(time.perf_counter() - eval_started, 2),
            }
            (tmp / "metrics.json").write_text(json.dumps(record))
            # The trained model is the stage's product: weights and codes, and the catalog it ranks.
            save_fitted(generator, tmp / FITTED)
            write_items(tmp / ITEMS, self.dataset.items)

        aux_names = [getattr(a, "name", type(a).__name__) for a in aux_losses]
        inputs = {**upstream, "aux_losses": ",".join(aux_names)}
        generator_path, _ = self.stages.run("generator", inputs, build_generator)
        metrics = json.loads((generator_path / "metrics.json").read_text())
        results = results_record(self, metrics, stats, aux_names)
        if distributed.is_main():
            atomic_write_text(self.run_dir / METRICS, self.stages.epoch_history())
            atomic_write_json(self.run_dir / "results.json", results)
        results["run_dir"] = str(self.run_dir)
        return results
