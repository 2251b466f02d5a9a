"""Benchmark the ``sasrec`` generator on a real dataset: throughput, validation per epoch, test once.

    GENREC_DATA_DIR=/work/shared/data .venv/bin/python benchmarks/sasrec.py --data beauty \
        --workdir /tmp/sasrec-beauty --set bf16=true

Options of the generator go through ``--set name=value`` (validated like the CLI's). With ``--workdir``
a killed run resumes from its last finished epoch, and raising ``epochs`` continues a finished one.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from genrec.contracts import RecData
from genrec.data import load_dataset
from genrec.evaluation import evaluate, most_popular
from genrec.protocol import leave_one_out
from genrec.registry import Component
from genrec_plugins.sasrec.generator import SASRecGenerator


def metrics_line(metrics: dict[str, float]) -> str:
    return " ".join(f"{name} {value:.4f}" for name, value in metrics.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="beauty")
    parser.add_argument("--max-history", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a generator option")
    parser.add_argument("--json", type=Path, default=None, help="write the results here too")
    args = parser.parse_args()

    options = dict(item.split("=", 1) for item in args.set)
    options = Component("generator", "sasrec", SASRecGenerator).validate(options)
    dataset = load_dataset(args.data)
    split = leave_one_out(dataset, args.max_history)
    data = RecData(dataset, split, seed=0, workdir=args.workdir)
    generator = SASRecGenerator(**options)
    print(f"{args.data}: {dataset.stats()}", flush=True)
    print(
        f"options: {generator.options()} epochs {generator.epochs} patience {generator.patience} "
        f"seed {generator.seed} device {generator.device} bf16 {generator.bf16}",
        flush=True,
    )
    _, window_targets = split.training_windows(generator.max_len or split.max_history)
    n_examples = int((window_targets != 0).sum())
    print(f"training examples (next-item targets) per epoch: {n_examples}", flush=True)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    generator.log = log
    started = time.perf_counter()
    generator.fit(data)
    fit_seconds = time.perf_counter() - started
    result = generator.result
    assert result is not None
    for record in result.history:
        print(
            f"epoch {record['epoch'] + 1:3d} loss {record['loss']:.4f} {record['seconds']:6.1f}s "
            f"{n_examples / record['seconds']:8.0f} ex/s | valid {metrics_line(record.get('valid', {}))}"
        )
    print(f"best epoch {result.best_epoch + 1}: valid {metrics_line(result.best_metrics)}")

    started = time.perf_counter()
    test = evaluate(generator.recommend, split.test_histories, split.test_targets)
    decode_seconds = time.perf_counter() - started
    popular = evaluate(most_popular(split.train, dataset.n_items), split.test_histories, split.test_targets)
    print(f"test {metrics_line(test)}")
    print(f"most-popular test {metrics_line(popular)}")
    print(f"decoding: {len(split.test_targets) / decode_seconds:.0f} users/s; fit {fit_seconds:.0f}s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "data": args.data,
                    "options": {**generator.options(), "epochs": generator.epochs, "bf16": generator.bf16},
                    "protocol": split.record(),
                    "best_epoch": result.best_epoch + 1,
                    "valid": result.best_metrics,
                    "test": test,
                    "history": result.history,
                    "fit_seconds": fit_seconds,
                    "decode_users_per_second": len(split.test_targets) / decode_seconds,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
