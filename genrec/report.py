"""Finished runs grouped by configuration: mean ± std over seeds, paired significance, Markdown, curves.

Runs belong to one group when their resolved configurations are equal apart from the seed. A group's
label is what sets it apart from the other groups (``recipe=prorec generator=causal``). Two groups on
the same split are compared user by user: each user's NDCG@10 (or Recall@10) from the per-user target
ranks every results file keeps, averaged over a group's seeds, then a paired bootstrap over users and a
paired t-test on the differences.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from genrec.errors import DataError
from genrec.evaluation import decode_ranks, metrics_of_ranks
from genrec.results import upgrade_results

METRICS = tuple(f"{m}@{k}" for k in (5, 10, 20) for m in ("recall", "ndcg"))


@dataclass(frozen=True)
class Run:
    path: Path
    results: dict[str, Any]
    name: str = ""  # what the user called it: the results file's or the run directory's name, less its seed

    @property
    def seed(self) -> int:
        return int(self.results["config"]["seed"])

    def ranks(self, split: str) -> np.ndarray | None:
        encoded = self.results.get("per_user", {}).get(f"{split}_rank")
        return None if encoded is None else decode_ranks(encoded)


@dataclass(frozen=True)
class Comparison:
    first: str
    second: str
    metric: str
    difference: float  # first minus second, the mean over users of the seed-averaged per-user metric
    p_bootstrap: float
    p_ttest: float
    users: int


def load_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Run directories (or their results.json files); a directory without results is an error."""
    runs = []
    for given in paths:
        path = Path(given)
        results_path = path if path.is_file() else path / "results.json"
        if not results_path.is_file():
            raise DataError(path, "not a finished run (no results.json)")
        try:
            results = json.loads(results_path.read_text())
        except json.JSONDecodeError as error:
            raise DataError(results_path, f"not valid JSON ({error.msg})", error.lineno) from None
        runs.append(Run(results_path.parent, upgrade_results(results), _run_name(results_path)))
    if not runs:
        raise DataError(Path("."), "no runs given")
    return runs


def _run_name(results_path: Path) -> str:
    """``runs/x/seed1/results.json`` -> ``x``; ``prorec-beauty-seed0.json`` -> ``prorec-beauty``."""
    names = [results_path.stem, *(parent.name for parent in results_path.resolve().parents)]
    name = next((n for n in names if n != "results" and not re.fullmatch(r"seed\d+", n)), "")
    return re.sub(r"[-_]seed\d+", "", name)


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flat(inner, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: json.dumps(value, sort_keys=True)}


def _configuration(run: Run) -> dict[str, Any]:
    config = {k: v for k, v in run.results["config"].items() if k not in ("seed", "notes")}
    # The config records the protocol option only when it is on; the protocol record always has it.
    config["exclude_history"] = bool(run.results.get("protocol", {}).get("exclude_history", False))
    flat = _flat({**config, "data": run.results["data"].get("fingerprint", config.get("data"))})
    return {k.removeprefix("stages.").replace(".options.", "."): v for k, v in flat.items()}


def _chain(run: Run) -> str:
    """The run's components in stage order and its dataset, e.g. ``text > rkmeans > tiger on beauty``."""
    stages = run.results["config"].get("stages", {})
    names = " > ".join(str(stage["name"]) for stage in stages.values() if stage.get("name"))
    return f"{names or run.results['recipe']} on {run.results['data']['name']}"


def group_runs(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Runs by configuration, each group labelled by its components and by the settings that set it
    apart from the groups with the same components. Settings that older results files lack stay out of
    the label; where two labels would then be the same, each gets its runs' name."""
    configs = [_configuration(run) for run in runs]
    keys = [json.dumps(config, sort_keys=True) for config in configs]
    first: dict[str, tuple[str, dict[str, Any], str]] = {}  # configuration -> (chain, settings, run name)
    for run, config, key in zip(runs, configs, keys, strict=True):
        first.setdefault(key, (_chain(run), config, run.name))
    labels = {}
    for key, (chain, config, _) in first.items():
        alike = [c for other, c, _ in first.values() if other == chain]
        shared = [k for k in dict.fromkeys(k for c in alike for k in c) if all(k in c for c in alike)]
        varying = [k for k in shared if len({c[k] for c in alike}) > 1]
        labels[key] = " ".join([chain, *(f"{k}={_plain(config[k])}" for k in varying)])
    counts = Counter(labels.values())
    for key, (_, _, name) in first.items():  # settings only newer runs record: the runs' names tell them apart
        labels[key] += f" [{name}]" if counts[labels[key]] > 1 else ""
    groups: dict[str, list[Run]] = {}
    for run, key in zip(runs, keys, strict=True):
        groups.setdefault(labels[key], []).append(run)
    return groups


def cell(summary: Mapping[str, tuple[float, float]], metric: str, seeds: int) -> str:
    """``mean ± std`` over several seeds, the value alone for one."""
    if metric not in summary:
        return ""
    mean, std = summary[metric]
    return f"{mean:.4f} ± {std:.4f}" if seeds > 1 else f"{mean:.4f}"


def _plain(value: str | None) -> str:
    return "-" if value is None else str(json.loads(value))


def summarize(group: Sequence[Run], split: str) -> dict[str, tuple[float, float]]:
    """metric -> (mean, sample std) over the group's seeds (std 0 for one seed)."""
    out = {}
    for metric in METRICS:
        values = np.array([run.results[split][metric] for run in group if metric in run.results[split]])
        if len(values):
            out[metric] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
    return out


def per_user(group: Sequence[Run], split: str, metric: str) -> np.ndarray | None:
    """The seed-averaged per-user ``metric`` (recall@K or ndcg@K) of a group, None without ranks."""
    name, k = metric.split("@")
    rows = []
    for run in group:
        ranks = run.ranks(split)
        if ranks is None:
            return None
        within = (ranks > 0) & (ranks <= int(k))
        gain = 1 / np.log2(np.maximum(ranks, 1) + 1.0)
        rows.append(within.astype(float) if name == "recall" else np.where(within, gain, 0.0))
    return np.mean(rows, axis=0)


def compare(
    first: tuple[str, Sequence[Run]],
    second: tuple[str, Sequence[Run]],
    split: str = "test",
    metric: str = "ndcg@10",
    resamples: int = 10_000,
    seed: int = 0,
) -> Comparison | None:
    """Paired bootstrap and paired t-test of ``metric`` between two groups on one split (None without ranks)."""
    from scipy import stats

    a, b = per_user(first[1], split, metric), per_user(second[1], split, metric)
    if a is None or b is None:
        return None
    if len(a) != len(b) or _protocol(first[1][0]) != _protocol(second[1][0]):
        raise DataError(first[1][0].path, f"cannot pair with {second[1][0].path}: the splits differ")
    difference = a - b
    rng = np.random.default_rng(seed)
    means = np.array([difference[rng.integers(0, len(difference), len(difference))].mean() for _ in range(resamples)])
    p_bootstrap = min(1.0, 2 * min(float((means <= 0).mean()), float((means >= 0).mean())))
    p_ttest = float(stats.ttest_rel(a, b).pvalue) if difference.any() else 1.0
    return Comparison(first[0], second[0], metric, float(difference.mean()), p_bootstrap, p_ttest, len(a))


def _protocol(run: Run) -> tuple[Any, ...]:
    protocol = run.results.get("protocol", {})
    return run.results["data"].get("fingerprint"), protocol.get("max_history"), protocol.get("exclude_history", False)


def comparisons(groups: Mapping[str, Sequence[Run]], metric: str = "ndcg@10") -> list[Comparison]:
    """Every pair of groups on the same split, on test ``metric``."""
    found = []
    for first, second in combinations(groups.items(), 2):
        if _protocol(first[1][0]) == _protocol(second[1][0]):
            result = compare(first, second, "test", metric)
            if result is not None:
                found.append(result)
    return found


def markdown(groups: Mapping[str, Sequence[Run]], pairs: Sequence[Comparison]) -> str:
    """The report as Markdown: one table per split, then the paired tests."""
    lines = []
    for split in ("valid", "test"):
        lines += [f"**{split}** (mean ± std over seeds)", ""]
        lines.append("| configuration | seeds | " + " | ".join(METRICS) + " |")
        lines.append("|---|---|" + "---|" * len(METRICS))
        for label, group in groups.items():
            summary = summarize(group, split)
            cells = [cell(summary, m, len(group)) for m in METRICS]
            seeds = ",".join(str(run.seed) for run in sorted(group, key=lambda r: r.seed))
            lines.append(f"| {label} | {seeds} | " + " | ".join(cells) + " |")
        lines.append("")
    if pairs:
        lines += ["**paired tests** (test, per user, seeds averaged)", ""]
        lines.append("| first | second | metric | difference | p (bootstrap) | p (t-test) | users |")
        lines.append("|---|---|---|---|---|---|---|")
        for c in pairs:
            lines.append(
                f"| {c.first} | {c.second} | {c.metric} | {c.difference:+.4f} | {format_p(c.p_bootstrap)} | "
                f"{c.p_ttest:.2g} | {c.users} |"
            )
        lines.append("")
    return "\n".join(lines)


def format_p(p: float, resamples: int = 10_000) -> str:
    """A bootstrap p-value; 0 means none of the resamples crossed zero."""
    return f"< {1 / resamples:g}" if p == 0 else f"{p:.4f}"


def plot_curves(groups: Mapping[str, Sequence[Run]], path: Path) -> Path:
    """Validation NDCG@10 per epoch of every run, one colour per group, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genrec.artifacts import atomic_write_bytes

    figure, axes = plt.subplots(figsize=(7, 4.2))
    for index, (label, group) in enumerate(groups.items()):
        for number, run in enumerate(group):
            curve = (run.results.get("training") or {}).get("valid_curve") or []
            shown = label if not number else None
            axes.plot(range(1, len(curve) + 1), curve, color=f"C{index}", alpha=0.8, label=shown)
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation ndcg@10")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


def check_ranks(run: Run) -> None:
    """A results file's per-user ranks agree with its metrics (a guard against mixing files)."""
    for split in ("valid", "test"):
        ranks = run.ranks(split)
        if ranks is not None and abs(metrics_of_ranks(ranks)["ndcg@10"] - run.results[split]["ndcg@10"]) > 1e-9:
            raise DataError(run.path, f"its per-user {split} ranks do not give its {split} metrics")
