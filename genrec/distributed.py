"""Data-parallel training and evaluation under ``torchrun``, one mechanism for every component.

Every rank runs the whole pipeline with the same seed. The shared training loop gives each rank its
share of every epoch's batches and runs each step through torch's ``DistributedDataParallel``
(:func:`objective`), which averages the gradients bucket by bucket during the backward pass.
Evaluation ranks each rank's block of users and gathers the ranked lists, so the metrics equal the
single-process ones. In a single process (no ``WORLD_SIZE`` > 1 in the environment) every helper here
is a no-op, and torch.distributed is never initialised (nor torch imported, so importing this module
keeps the command line's start fast).
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

T = TypeVar("T")
S = TypeVar("S", bound=Sequence[Any] | np.ndarray)


def init_from_env(device: str = "auto") -> bool:
    """Join the process group ``torchrun`` describes in the environment; True when distributed.

    NCCL when the run uses CUDA (``device`` "auto" on a machine with CUDA, or "cuda..."), else gloo.
    Each CUDA rank uses the GPU of its ``LOCAL_RANK``. Ranks other than 0 are silenced, so logs and
    results print once.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        return False
    if dist.is_initialized():
        return True
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    atexit.register(_shutdown)
    if not is_main():
        from genrec.console import console

        console.quiet = True
    return True


def _group() -> Any:
    """``torch.distributed`` when a process group is up, else None (a group needs torch imported)."""
    dist = sys.modules.get("torch.distributed")
    return dist if dist is not None and dist.is_available() and dist.is_initialized() else None


def _shutdown() -> None:
    """Leave the group on any exit (no barrier: after an error, other ranks may be in a collective)."""
    if (dist := _group()) is not None:
        dist.destroy_process_group()


def finish_process() -> None:
    """End this process of a distributed run that succeeded on every rank (a no-op in one process).

    Every rank waits for the last at a barrier and leaves the group; then the process runs its exit
    handlers, flushes its streams and exits without the interpreter's final teardown. During that
    teardown gloo's worker threads may still be releasing a finished collective's tensors, and a
    thread that asks for the GIL then aborts the process ("terminate called without an active
    exception"); a process group that DistributedDataParallel used is never freed, so its threads
    are never joined before it.
    """
    if (dist := _group()) is None:
        return
    dist.barrier()
    dist.destroy_process_group()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def world_size() -> int:
    return dist.get_world_size() if (dist := _group()) is not None else 1


def rank() -> int:
    return dist.get_rank() if (dist := _group()) is not None else 0


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if (dist := _group()) is not None:
        dist.barrier()


def _device() -> torch.device:
    """Where collective tensors live: the rank's GPU under NCCL, else the CPU."""
    import torch

    if _group().get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def objective(model: nn.Module, loss_fn: Callable[[Any], torch.Tensor]) -> Callable[[Any], torch.Tensor]:
    """``loss_fn`` as a training step's forward: itself in one process; distributed, run through
    ``DistributedDataParallel`` around ``model``, so ``backward()`` averages the gradients over ranks.

    The loss closure calls ``model`` (or its parts) directly: DDP only needs its own forward to wrap the
    step, and its hooks sit on ``model``'s parameters. Parameters a step leaves unused (auxiliary heads,
    unseen ids) are allowed (``find_unused_parameters``).
    """
    if world_size() == 1:
        return loss_fn
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    class Objective(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, batch: Any) -> torch.Tensor:
            return loss_fn(batch)

    device = next(model.parameters()).device
    ids = [device] if device.type == "cuda" else None
    return DistributedDataParallel(Objective(), device_ids=ids, find_unused_parameters=True)


def shard(items: S) -> S:
    """This rank's contiguous block of a sequence or array (blocks differ in length by at most one).

    Concatenating the blocks in rank order (see :func:`all_gather_rows`) gives ``items`` back.
    """
    world = world_size()
    if world == 1:
        return items
    bounds = np.linspace(0, len(items), world + 1).round().astype(int)
    me = rank()
    return items[bounds[me] : bounds[me + 1]]  # type: ignore[return-value]


def shard_batches(batches: Iterable[T]) -> Iterator[T]:
    """Every ``world``-th batch, starting at this rank's index: each rank gets the same number.

    All ranks must produce the same batches (they do: batch order is a function of seed and epoch). A
    last round short of ``world`` batches is completed with the epoch's first batches, so no rank
    waits in a gradient all-reduce another rank never joins.
    """
    world = world_size()
    if world == 1:
        yield from batches
        return
    me = rank()
    head: list[T] = []  # the first world - 1 batches, to complete a short last round
    round_: list[T] = []
    for batch in batches:
        if len(head) < world - 1:
            head.append(batch)
        round_.append(batch)
        if len(round_) == world:
            yield round_[me]
            round_ = []
    if round_:
        round_ += (head * world)[: world - len(round_)]
        yield round_[me]


def all_gather_rows(rows: np.ndarray) -> np.ndarray:
    """Concatenate every rank's ``rows`` in rank order (the inverse of :func:`shard`)."""
    if world_size() == 1:
        return rows
    gathered: list[Any] = [None] * world_size()
    _group().all_gather_object(gathered, np.asarray(rows))
    return np.concatenate(gathered)


def broadcast(value: T) -> T:
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if world_size() == 1:
        return value
    box = [value]
    _group().broadcast_object_list(box, src=0, device=_device())
    return box[0]


def average(value: float) -> float:
    """The mean of ``value`` over ranks."""
    if world_size() == 1:
        return value
    import torch

    tensor = torch.tensor([value], dtype=torch.float64, device=_device())
    _group().all_reduce(tensor)
    return float(tensor.item()) / world_size()


def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank, so all start from the same weights."""
    if (dist := _group()) is None:
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)
