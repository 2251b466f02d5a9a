"""The code generators side by side on Beauty: training and decoding speed, and quality against time.

    GENREC_DATA_DIR=../shared/data .venv/bin/python benchmarks/generators.py                 # speed
    GENREC_DATA_DIR=../shared/data .venv/bin/python benchmarks/generators.py --busy 1        # beside a busy process
    GENREC_DATA_DIR=../shared/data .venv/bin/python benchmarks/generators.py --generators "causal,causal:encoder=codes"
    GENREC_DATA_DIR=../shared/data .venv/bin/python benchmarks/generators.py --quality --set tiger.epochs=8

Speed mode gives each generator a process of its own (so peak memory is its own) and prints training
examples/s (one example = one training row: a sliding window for ``tiger``, a user window for
``causal``) and target positions/s, the epoch time those make for the whole training split, the
matmul FLOP/s of training (counted by torch's FlopCounterMode over the same batches) as a fraction of
the matmul peak measured in the same process, beam-20 decoding users/s with the time for every test
user, and peak resident memory, each generator in its own default precision (``--dtype`` sets one for
both). Codes are random unique 3 x 256 codes plus the core's disambiguation
level: the cost does not depend on what the codes mean. ``--busy N`` runs N busy processes beside
the measurement and measures each generator under genrec's default threading (``genrec.threads``),
with one thread, and with two. The last line is one JSON object keyed by generator name.

Quality mode trains each generator on the tiger recipe's real codes (all-MiniLM-L6-v2 + rkmeans 3 x
256, from the store at ``--store``, built if missing) with the shared loop and its own defaults
(``--set`` changes them), validating on all users every epoch, and prints validation NDCG@10 with its
standard error against minutes of training (validation time not counted).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import time
from typing import Any

import numpy as np
import torch

GENERATORS = ("tiger", "causal")


def matmul_peak(dtype: torch.dtype, seconds: float = 2.0) -> float:
    """The best FLOP/s of large square matmuls in ``dtype`` on the CPU (the practical peak)."""
    best = 0.0
    for n in (1024, 2048):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        runs, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 2:
            a @ b
            runs += 1
        best = max(best, 2 * n**3 * runs / (time.perf_counter() - started))
    return best


def beauty(name: str = "beauty") -> Any:
    from genrec.contracts import RecData
    from genrec.data import load_dataset
    from genrec.protocol import leave_one_out

    dataset = load_dataset(name)
    return RecData(dataset, leave_one_out(dataset), seed=0)


def random_codes(n_items: int) -> Any:
    from genrec.codes import disambiguate

    raw = np.random.default_rng(0).integers(0, 256, size=(n_items, 3))
    return disambiguate(raw, (256, 256, 256))


def busy_loop(stop: Any) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def speed(spec: str, steps: int, users: int, threads: int | None, dtype: str, data_name: str) -> dict[str, Any]:
    """One generator's figures, measured in this process; ``spec`` is ``NAME`` or ``NAME:OPTION=VALUE,...``."""
    from torch.utils.flop_counter import FlopCounterMode

    from genrec.discovery import get_registry
    from genrec.threads import fit_threads

    if threads:
        torch.set_num_threads(threads)
    data = beauty(data_name)
    codes = random_codes(data.n_items)
    name, _, given = spec.partition(":")
    options: dict[str, Any] = {"device": "cpu", **dict(pair.split("=", 1) for pair in given.split(",") if pair)}
    if dtype != "default":
        options["bf16"] = dtype == "bf16"
    generator = get_registry().create("generator", name, **options)
    batches, loss_fn = generator.prepare(data, codes)
    model = generator.fitted_model()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=generator.lr)
    epoch_batches = list(batches(0))
    timed = epoch_batches[:steps]

    def step(batch: Any) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=generator._bf16):
            loss = loss_fn(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    for batch in timed[:5]:  # warm-up: allocators and kernels
        step(batch)
    used = fit_threads() if threads is None else threads
    started = time.perf_counter()
    for batch in timed:
        step(batch)
    elapsed = time.perf_counter() - started
    counter = FlopCounterMode(display=False)
    with counter:
        for batch in timed:
            step(batch)
    flops = counter.get_total_flops()
    peak = matmul_peak(torch.bfloat16 if generator._bf16 else torch.float32)

    def positions(batch: Any) -> int:
        return len(batch[-1])  # both generators' batches end with their target items

    rows = sum(len(batch[0]) for batch in timed)
    targets = sum(positions(batch) for batch in timed)
    epoch_targets = sum(positions(batch) for batch in epoch_batches)
    histories = data.split.test_histories[:users]
    model.eval()
    generator.recommend(histories[:64], 20)
    started = time.perf_counter()
    generator.recommend(histories, 20)
    decode_seconds = time.perf_counter() - started
    all_users = len(data.split.test_targets)
    return {
        "threads": used,
        "bf16": generator._bf16,
        "examples_per_s": rows / elapsed,
        "targets_per_s": targets / elapsed,
        "epoch_seconds": epoch_targets / (targets / elapsed),
        "train_gflops": flops / elapsed / 1e9,
        "peak_gflops": peak / 1e9,
        "fraction_of_peak": flops / elapsed / peak,
        "decode_users_per_s": len(histories) / decode_seconds,
        "decode_all_test_users_s": all_users / len(histories) * decode_seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(queue: Any, *args: Any) -> None:
    queue.put(speed(*args))


def in_own_process(*args: Any) -> dict[str, Any]:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, *args))
    process.start()
    result = queue.get()
    process.join()
    return result


def show(label: str, r: dict[str, Any]) -> None:
    print(
        f"{label}: train {r['examples_per_s']:,.0f} examples/s, {r['targets_per_s']:,.0f} targets/s, epoch "
        f"{r['epoch_seconds']:.0f} s, {r['train_gflops']:.1f} GFLOP/s = {r['fraction_of_peak']:.0%} of the matmul "
        f"peak {r['peak_gflops']:.0f} GFLOP/s ({'bf16' if r['bf16'] else 'fp32'}, {r['threads']} threads); decode "
        f"beam 20 {r['decode_users_per_s']:,.0f} users/s ({r['decode_all_test_users_s']:.0f} s for every test "
        f"user); peak RSS {r['peak_rss_mib']:.0f} MiB",
        flush=True,
    )


def quality(names: list[str], settings: list[str], store: str, data_name: str) -> dict[str, Any]:
    """Each generator trained by the shared loop on real codes; its per-epoch validation on every user."""
    from pathlib import Path

    from genrec.config import PipelineConfig, StageSpec
    from genrec.discovery import get_registry
    from genrec.pipeline import Pipeline

    registry = get_registry()
    config = PipelineConfig(
        recipe="tiger",
        data=data_name,
        generator=StageSpec("tiger", {}),
        semantic=StageSpec("text", {}),
        collaborative=StageSpec("sasrec", {}),
        fuser=StageSpec("semantic", {}),
        quantizer=StageSpec("rkmeans", {}),
        store_dir=Path(store),
    )
    pipeline = Pipeline(config, registry)
    pipeline.prepare()
    fused, key, _ = pipeline.fuse()
    codes, _, _ = pipeline.quantize(fused, key)
    out: dict[str, Any] = {}
    for name in names:
        options = {"valid_users": None, "patience": 1000}
        for setting in settings:
            target, _, pair = setting.partition(".")
            option, _, value = pair.partition("=")
            if target == name:
                options[option] = value
        component = registry.get("generator", name)
        generator = component.load()(**component.validate(options))
        generator.fit(pipeline.data, codes)
        assert generator.result is not None
        trained, curve = 0.0, []
        for record in generator.result.history:
            trained += record["seconds"]
            valid = record["valid"]
            curve.append([round(trained / 60, 2), round(valid["ndcg@10"], 5), round(valid["ndcg@10_se"], 5)])
            print(
                f"[{name}] epoch {record['epoch'] + 1}: {trained / 60:.1f} min of training, valid ndcg@10 "
                f"{valid['ndcg@10']:.4f} ± {valid['ndcg@10_se']:.4f} (all users)",
                flush=True,
            )
        out[name] = {"options": options, "minutes_ndcg10_se": curve, "best_ndcg10": max(c[1] for c in curve)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="beauty")
    parser.add_argument(
        "--generators", default=",".join(GENERATORS), help="NAME or NAME:OPTION=VALUE;... separated by commas"
    )
    parser.add_argument("--steps", type=int, default=60, help="timed training steps per generator")
    parser.add_argument("--users", type=int, default=3000, help="test users decoded per generator")
    parser.add_argument("--dtype", choices=("default", "fp32", "bf16"), default="default", help="default: each's own")
    parser.add_argument("--busy", type=int, default=0, help="busy processes to run beside the measurement")
    parser.add_argument("--quality", action="store_true", help="validation NDCG@10 against minutes of training")
    parser.add_argument("--set", action="append", default=[], help="GENERATOR.OPTION=VALUE in quality mode")
    parser.add_argument("--store", default="runs/store")
    args = parser.parse_args()
    names = [spec.replace(";", ",") for spec in args.generators.split(",")]
    print(f"cpu: {os.cpu_count()} cores, torch {torch.__version__}, threads {torch.get_num_threads()}", flush=True)
    if args.quality:
        print(json.dumps(quality(names, args.set, args.store, args.data)))
        return
    stop = mp.get_context("spawn").Event()
    busy = [mp.get_context("spawn").Process(target=busy_loop, args=(stop,)) for _ in range(args.busy)]
    for process in busy:
        process.start()
    results: dict[str, Any] = {}
    try:
        for name in names:
            runs = {"default": None}
            if args.busy:  # genrec's fitted threads against one thread and torch's two
                runs.update({"one thread": 1, "two threads": 2})
            for label, threads in runs.items():
                result = in_own_process(name, args.steps, args.users, threads, args.dtype, args.data)
                show(f"[{name}] {label}" + (f" beside {args.busy} busy" if args.busy else ""), result)
                results.setdefault(name, {})[label] = result
    finally:
        stop.set()
        for process in busy:
            process.join()
    print(json.dumps({name: r if args.busy else r["default"] for name, r in results.items()}))


if __name__ == "__main__":
    main()
