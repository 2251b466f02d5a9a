"""TIGER throughput on Beauty-shaped data: training step efficiency and constrained beam decoding.

    GENREC_DATA_DIR=/work/shared/data .venv/bin/python benchmarks/tiger.py --steps 200 --users 3000
    GENREC_DATA_DIR=... python3 benchmarks/tiger.py --device cuda --dtypes bf16 --users 22363   # on a GPU

Codes are random unique 3-level codes of 256 (plus the core's disambiguation level): the model's cost
does not depend on what the codes mean. Prints training examples/s and tokens/s, the achieved matmul
FLOP/s of a training step (counted analytically: every matmul of forward and backward) as a fraction
of this machine's matmul peak measured here in the same dtype, beam-20 decoding users/s (and the time
that makes for every test user), and peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from genrec.codes import disambiguate
from genrec.contracts import RecData
from genrec.data import load_dataset
from genrec.protocol import leave_one_out
from genrec_plugins.tiger.generator import Tiger


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(dtype: torch.dtype, device: torch.device, seconds: float = 2.0) -> float:
    """The best FLOP/s of large square matmuls in ``dtype`` (the machine's practical peak)."""
    best = 0.0
    for n in (1024, 2048) if device.type == "cpu" else (4096, 8192):
        a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
        a @ b
        synchronize(device)
        runs, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 2:
            a @ b
            runs += 1
            synchronize(device)
        best = max(best, 2 * n**3 * runs / (time.perf_counter() - started))
    return best


def step_flops(generator: Tiger, history_items: np.ndarray, levels: int, sizes: tuple[int, ...]) -> float:
    """Matmul FLOPs of one training step (forward + backward = 3 x forward) for these histories."""
    d, inner, ffn = generator.d_model, generator.heads * generator.head_dim, generator.ffn
    total = 0.0
    for items in history_items:
        s, t = int(items) * levels, levels  # encoder and decoder tokens (padding trimmed away)
        per_token = 2 * d * 3 * inner + 2 * inner * d + 4 * d * ffn
        encoder = generator.layers_encoder * (s * per_token + 4 * s * s * inner)
        decoder_token = per_token + 2 * d * inner + 2 * inner * d  # plus cross-attention q and out
        decoder = generator.layers_decoder * (
            t * decoder_token + 4 * t * t * inner + 4 * t * s * inner + s * 2 * d * 2 * inner
        )
        heads = sum(2 * d * size for size in sizes)
        total += encoder + decoder + heads
    return 3 * total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="beauty")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    args = parser.parse_args()
    device = torch.device(args.device)

    dataset = load_dataset(args.data)
    data = RecData(dataset, leave_one_out(dataset), seed=0)
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(dataset.n_items, 3))
    codes = disambiguate(raw, (256, 256, 256))
    print(f"{args.data}: {dataset.n_items} items, codes {codes.codebook_sizes}, threads {torch.get_num_threads()}")
    for dtype_name in args.dtypes.split(","):
        bf16 = dtype_name == "bf16"
        peak = matmul_peak(torch.bfloat16 if bf16 else torch.float32, device)
        generator = Tiger(batch_size=args.batch_size, device=str(device), bf16=bf16, warmup_steps=100)
        batches, loss_fn = generator.prepare(data, codes)
        model = generator.fitted_model()
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=generator.lr, weight_decay=generator.weight_decay)
        examples = tokens = 0
        flops, elapsed, steps = 0.0, 0.0, 0
        histories, _ = data.split.training_examples()
        lengths = (histories != 0).sum(axis=1)
        order = iter(())
        epoch = 0
        while steps < args.steps:
            batch = next(order, None)
            if batch is None:
                order, epoch = iter(batches(epoch)), epoch + 1
                continue
            history_tokens = batch[0]
            started = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = loss_fn(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            synchronize(device)
            if steps >= 5:  # the first steps warm up allocators and kernels
                elapsed += time.perf_counter() - started
                n = len(history_tokens)
                items = (history_tokens != 0).sum(dim=1).cpu().numpy() // codes.levels
                examples += n
                tokens += int((history_tokens != 0).sum()) + n * codes.levels
                flops += step_flops(generator, items, codes.levels, codes.codebook_sizes)
            steps += 1
        achieved = flops / elapsed
        print(
            f"[{dtype_name}] train: {examples / elapsed:,.0f} examples/s, {tokens / elapsed:,.0f} tokens/s, "
            f"{achieved / 1e9:.1f} GFLOP/s = {achieved / peak:.0%} of the measured matmul peak "
            f"{peak / 1e9:.1f} GFLOP/s (loss {float(loss.detach()):.3f} after {steps} steps; mean history "
            f"{lengths.mean():.1f} items)"
        )
        histories = data.split.test_histories[: args.users]
        model.eval()
        generator.recommend(histories[:64], 20)  # warm-up
        started = time.perf_counter()
        ranked = generator.recommend(histories, 20)
        seconds = time.perf_counter() - started
        all_users = len(data.split.test_targets)
        assert ranked.shape == (len(histories), 20)
        memory = f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
        if device.type == "cuda":
            memory += f", peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB"
        print(
            f"[{dtype_name}] decode: beam 20, {len(histories) / seconds:,.0f} users/s "
            f"({seconds:.1f} s for {len(histories)}; {all_users / len(histories) * seconds:.0f} s for all "
            f"{all_users} test users); {memory}"
        )


if __name__ == "__main__":
    main()
