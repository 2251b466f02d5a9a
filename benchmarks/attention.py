"""Attention forward + backward on CPU at TIGER training shapes: torch's fused kernel against plain ops.

    .venv/bin/python benchmarks/attention.py

Shapes: 256 examples x 6 heads x 28 tokens x 64 (an average Beauty training batch), in float32 and
under bf16 autocast. Prints milliseconds per forward + backward of each, and which one
``genrec.attention.attention`` uses.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from genrec.attention import attention, plain_attention


def fused(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def timed(function: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...], bf16: bool, runs: int) -> float:
    def once() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = function(*inputs)
        out.float().sum().backward()

    once()
    started = time.perf_counter()
    for _ in range(runs):
        once()
    return (time.perf_counter() - started) / runs * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=28)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    q, k, v = (torch.randn(args.batch, 6, args.tokens, 64, requires_grad=True) for _ in range(3))
    mask = torch.ones(args.batch, 1, 1, args.tokens, dtype=torch.bool)
    mask[: args.batch // 2, ..., : args.tokens // 4] = False  # left padding in half the batch
    print(f"threads {torch.get_num_threads()}, shape {tuple(q.shape)}")
    for bf16 in (False, True):
        theirs = timed(fused, (q, k, v, mask), bf16, args.runs)
        plain = timed(plain_attention, (q, k, v, mask), bf16, args.runs)
        chosen = timed(attention, (q, k, v, mask), bf16, args.runs)
        dtype = "bf16" if bf16 else "fp32"
        print(
            f"{dtype}: fused {theirs:.1f} ms, plain {plain:.1f} ms per forward + backward "
            f"(plain is {theirs / plain:.1f}x as fast); genrec's attention {chosen:.1f} ms"
        )


if __name__ == "__main__":
    main()
