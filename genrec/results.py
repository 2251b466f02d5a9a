"""A run's results: the ``results.json`` record and its console table."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genrec import distributed
from genrec.console import echo, run_log
from genrec.stages import METRICS

if TYPE_CHECKING:
    from genrec.pipeline import Pipeline
    from genrec.protocol import Split

LOG = "log.txt"  # in the run directory: the console's lines


def baselines(split: Split, n_items: int) -> dict[str, Any]:
    """The popularity baseline's test metrics under the split's protocol."""
    from genrec.evaluation import evaluate, most_popular, under_protocol

    popular = under_protocol(most_popular(split.train, n_items), split.exclude_history)
    return {"most_popular": {"test": evaluate(popular, split.test_histories, split.test_targets)}}


def results_record(
    pipeline: Pipeline, metrics: Mapping[str, Any], stats: Mapping[str, Any], aux_names: list[str]
) -> dict[str, Any]:
    """What a finished run reports: metrics, the popularity baseline, protocol, config, timings, stages."""
    from genrec import __version__

    split, dataset, stages = pipeline.split, pipeline.dataset, pipeline.stages
    return {
        "recipe": pipeline.config.recipe,
        "data": {**dataset.stats(), "fingerprint": dataset.fingerprint},
        "valid": metrics["valid"],
        "test": metrics["test"],
        "baselines": baselines(split, dataset.n_items),
        "protocol": split.record(),
        "config": pipeline.record,
        "timings": {**stages.timings, "generator_fit": metrics["fit_seconds"], "evaluate": metrics["evaluate_seconds"]},
        "codes": dict(stats),
        **({"per_user": metrics["per_user"]} if "per_user" in metrics else {}),
        "training": stages.records["generator"]["training"],  # the stage's record: spans resumes
        "stages": stages.records,
        "store": str(stages.store.root.resolve()),
        "auxiliary_losses": aux_names,
        "genrec_version": __version__,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def upgrade_results(results: dict[str, Any]) -> dict[str, Any]:
    """A results record of an earlier release with today's stage names (``embedder`` is ``semantic``)."""
    from genrec.config import upgrade_stage_names

    for record in (results, results.get("config", {})):
        for key in ("stages", "timings"):
            if isinstance(record.get(key), dict):
                record[key] = upgrade_stage_names(record[key])
    return results


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
