"""One training loop for every model: early stopping on validation, checkpoints, resume, NaN guard.

A model trains by ``train(model, batches, loss_fn, validate, config, checkpoint_dir)``. Each epoch
ends with a checkpoint (``last.pt``: model, optimizer, epoch, best state, random state), written
atomically, so a killed run continues from its last finished epoch with the same result, and a finished
run continues into a longer one (more epochs or patience) with the result training from the start
gives. Inside a long epoch, ``epoch.pt`` keeps the steps taken so far (at most every
``checkpoint_seconds``), so an interrupted epoch resumes at its last saved step, with the same result.
The best state by validation ``config.monitor`` is restored at the end. A non-finite loss stops
training with a :class:`TrainingError` and leaves the last good checkpoint in place.

The learning rate follows ``config.schedule`` after a linear warm-up of ``warmup_steps``: ``constant``,
``cosine`` (to zero at the last epoch) or ``wsd`` (warm-up, stable, then a linear decay to zero over the
last ``decay_fraction`` of the epochs). A checkpoint continues into a run under another schedule or
length whenever the new schedule would have used the same rate at every step already taken, so a
finished constant-rate run continues into a ``wsd`` cool-down that starts after it.

Under ``torchrun`` (see :mod:`genrec.distributed`) each rank trains on its share of every epoch's
batches and the gradients are averaged over ranks before each step, so all ranks hold the same weights;
validation metrics are rank 0's, so early stopping decides the same everywhere; rank 0 alone writes
checkpoints, and every rank resumes from the same one.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genrec import distributed
from genrec.artifacts import load_checkpoint, save_checkpoint
from genrec.console import progress, record_epoch
from genrec.errors import ConfigError, TrainingError
from genrec.threads import fit_threads


@dataclass
class TrainConfig:
    epochs: int = 50
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 5
    eval_every: int = 1
    grad_clip: float | None = 1.0
    monitor: str = "ndcg@10"
    bf16: bool = False
    device: str = "cpu"
    warmup_steps: int = 0
    schedule: str = "constant"
    decay_fraction: float = 0.2
    checkpoint_seconds: float = 300.0  # how often, at most, an epoch in progress is saved (epoch.pt)


SCHEDULES = ("constant", "cosine", "wsd")


def check_schedule(owner: str, schedule: str, decay_fraction: float, warmup_steps: int = 0) -> None:
    """The ConfigError a component raises for bad schedule options; ``owner`` names it."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"{owner} option 'schedule' must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if not 0.0 < decay_fraction <= 1.0:
        raise ConfigError(f"{owner} option 'decay_fraction' must be in (0, 1], got {decay_fraction}")
    if warmup_steps < 0:
        raise ConfigError(f"{owner} option 'warmup_steps' must be non-negative, got {warmup_steps}")


def lr_factor(config: TrainConfig, step: int, progress: float) -> float:
    """The multiple of ``config.lr`` used at global ``step``, ``progress`` epochs into training."""
    warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps > 0 else 1.0
    done = min(1.0, progress / config.epochs)
    if config.schedule == "cosine":
        return warmup * 0.5 * (1.0 + math.cos(math.pi * done))
    if config.schedule == "wsd":
        return warmup * min(1.0, (1.0 - done) / config.decay_fraction)
    return warmup


def _step_grid(history: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """(global step, progress in epochs) of every step the recorded epochs took."""
    grid, step = [], 0
    for record in history:
        steps = record.get("steps", 0)
        grid += [(step + i, record["epoch"] + i / steps) for i in range(steps)]
        step += steps
    return grid


@dataclass
class TrainResult:
    best_metrics: dict[str, float]
    best_epoch: int
    epochs_run: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    monitor: str = "ndcg@10"
    selected: dict[str, Any] = field(default_factory=dict)  # what a component chose on validation after training

    @property
    def total_seconds(self) -> float:
        """Training and validation time of every epoch, including those run before a resume."""
        return sum(record["seconds"] + record.get("valid_seconds", 0.0) for record in self.history)

    def summary(self) -> dict[str, Any]:
        return {
            "best_epoch": self.best_epoch + 1,
            "epochs_run": self.epochs_run,
            "seconds": round(self.total_seconds, 2),
            "monitor": self.monitor,
            "valid_curve": [round(r["valid"][self.monitor], 5) for r in self.history if "valid" in r],
            **({"selected": self.selected} if self.selected else {}),
        }


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64))}


def _set_rng_state(state: dict[str, Any], seed: int) -> None:
    torch.set_rng_state(state["torch"])
    keys = state["numpy"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, 624, 0, 0.0))
    random.seed(seed + int(keys[0]))


def _silent(message: str) -> None:
    pass


# A run may continue a checkpoint made under other values of these (the schedule is checked by the
# rates it gives, not by its settings).
GROWABLE = ("epochs", "patience", "schedule", "decay_fraction")
INERT = ("device", "checkpoint_seconds")  # they change no step: a checkpoint moves between devices
UNCHECKED = (*GROWABLE, *INERT)


def _cannot_continue(state: dict[str, Any], config: TrainConfig) -> str | None:
    """Why a checkpoint cannot continue into a run under ``config`` (None if it can).

    A checkpoint continues into a run with more epochs, more patience or another schedule as long as
    every step it took used the rate the new run would have used: the result is the one training from
    the start would give. It cannot continue into a shorter run, or one that early stopping would have
    ended before the checkpoint's epoch.
    """
    saved_config = {**asdict(TrainConfig()), **state.get("config", {})}  # older checkpoints: the defaults
    saved = {k: v for k, v in saved_config.items() if k not in UNCHECKED}
    if saved != {k: v for k, v in asdict(config).items() if k not in UNCHECKED}:
        return "it was made with other training settings"
    old = TrainConfig(**saved_config)
    if config.schedule != "constant" and any("steps" not in record for record in state["history"]):
        return "it does not record the steps its epochs took, which a decaying schedule needs"
    for step, at in _step_grid(state["history"]):
        if not math.isclose(lr_factor(old, step, at), lr_factor(config, step, at), abs_tol=1e-12):
            return f"the learning-rate schedule differs from its own at step {step + 1}"
    if state["epoch"] + 1 > config.epochs:
        return f"it is at epoch {state['epoch'] + 1}, past the {config.epochs} epochs asked for"
    best, stale = -math.inf, 0
    for record in state["history"]:
        if stale >= config.patience:
            return f"patience {config.patience} would have stopped training after epoch {record['epoch']}"
        if "valid" in record:
            score = record["valid"][config.monitor]
            best, stale = (score, 0) if score > best else (best, stale + 1)
    return None


def _epoch_in_progress(path: Path | None, epoch: int, config: TrainConfig) -> dict[str, Any] | None:
    """The saved steps of ``epoch`` at ``path``, if they were taken under ``config``'s settings.

    The rate of every step depends on the whole schedule, so a partial epoch continues only into a run
    with the same settings (the device aside).
    """
    if path is None or not path.is_file():
        return None
    inside = load_checkpoint(path)
    same = {k: v for k, v in asdict(config).items() if k not in INERT}
    saved = {k: v for k, v in inside["config"].items() if k not in INERT}
    return inside if inside["epoch"] == epoch and saved == same else None


def train(
    model: torch.nn.Module,
    batches: Callable[[int], Iterable[Any]],
    loss_fn: Callable[[Any], torch.Tensor],
    validate: Callable[[], dict[str, float]],
    config: TrainConfig,
    checkpoint_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``model`` with AdamW; ``batches(epoch)`` yields batches, ``loss_fn(batch)`` a scalar loss."""
    if not distributed.is_main():
        log = _silent
    elif log is None:
        from genrec.console import log
    started = time.perf_counter()
    distributed.broadcast_module(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    checkpoint = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
    in_progress = Path(checkpoint_dir) / "epoch.pt" if checkpoint_dir else None
    start_epoch, best_score, best_epoch, best_metrics, stale = 0, -math.inf, -1, {}, 0
    best_state = copy.deepcopy(model.state_dict())
    history: list[dict[str, Any]] = []
    state = load_checkpoint(checkpoint) if checkpoint is not None and checkpoint.is_file() else None
    if state is not None and (reason := _cannot_continue(state, config)):
        log(f"{checkpoint}: {reason}; training from the start")
        state = None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        best_state = state["best_state"]
        start_epoch, best_score, best_epoch = state["epoch"] + 1, state["best_score"], state["best_epoch"]
        best_metrics, stale, history = state["best_metrics"], state["stale"], state["history"]
        _set_rng_state(state["rng"], start_epoch)
        log(f"resumed from {checkpoint} at epoch {start_epoch}")

    step = sum(record.get("steps", 0) for record in history)  # optimizer steps taken so far
    if state is not None and "scheduler" in state:  # a checkpoint from before epochs recorded their steps
        step = state["scheduler"]["last_epoch"]
    device_type = torch.device(config.device).type
    step_loss = distributed.objective(model, loss_fn)
    for epoch in range(start_epoch, config.epochs):
        if stale >= config.patience:
            break
        model.train()
        fit_threads()  # to the cores other processes leave free (genrec.threads)
        total, steps, epoch_start, earlier_seconds = 0.0, 0, time.perf_counter(), 0.0
        epoch_batches = list(distributed.shard_batches(batches(epoch)))  # its length places each step
        if (inside := _epoch_in_progress(in_progress, epoch, config)) is not None:
            model.load_state_dict(inside["model"])
            optimizer.load_state_dict(inside["optimizer"])
            total, steps, earlier_seconds = inside["loss_sum"], inside["steps"], inside["seconds"]
            step += steps
            _set_rng_state(inside["rng"], step)
            log(f"resumed inside epoch {epoch + 1} after step {steps}/{len(epoch_batches)}")
        saved_at = time.perf_counter()
        remaining = epoch_batches[steps:]
        for batch in progress(remaining, f"epoch {epoch + 1}", total=len(epoch_batches), completed=steps):
            rate = config.lr * lr_factor(config, step, epoch + steps / len(epoch_batches))
            for group in optimizer.param_groups:
                group["lr"] = rate
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=config.bf16):
                loss = step_loss(batch)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"loss became {loss.item()} at epoch {epoch} step {steps}; stopped. "
                    f"The last good checkpoint is kept{f' at {checkpoint}' if checkpoint else ''}; "
                    "lower the learning rate or check the input embeddings"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # distributed: DDP averages the gradients over ranks, bucket by bucket
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            total += float(loss.detach())
            steps += 1
            step += 1
            due = time.perf_counter() - saved_at >= config.checkpoint_seconds
            if in_progress is not None and due and steps < len(epoch_batches) and distributed.is_main():
                save_checkpoint(
                    in_progress,
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "epoch": epoch,
                        "steps": steps,
                        "loss_sum": total,
                        "seconds": earlier_seconds + time.perf_counter() - epoch_start,
                        "rng": _rng_state(),
                        "config": asdict(config),
                    },
                )
                saved_at = time.perf_counter()
        record: dict[str, Any] = {
            "epoch": epoch,
            "loss": distributed.average(total / max(1, steps)),  # ranks take equal numbers of steps
            "seconds": earlier_seconds + time.perf_counter() - epoch_start,
            "steps": steps,
            "lr": rate if steps else 0.0,
        }
        if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
            model.eval()
            valid_start = time.perf_counter()
            with torch.no_grad():
                metrics = distributed.broadcast(validate())  # one decision for all ranks
            record["valid"], record["valid_seconds"] = metrics, time.perf_counter() - valid_start
            score = metrics[config.monitor]
            if score > best_score:
                best_score, best_epoch, best_metrics, stale = score, epoch, metrics, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
        history.append(record)
        if distributed.is_main():
            record_epoch(record)  # into the run's metrics.jsonl while it trains
        shown = ""
        if "valid" in record:
            error = record["valid"].get(f"{config.monitor}_se")
            shown = f" valid {config.monitor} {record['valid'][config.monitor]:.4f}"
            shown += f" ± {error:.4f}" if error is not None else ""
            shown += f" (best {best_score:.4f} at epoch {best_epoch + 1}, patience left {config.patience - stale})"
        log(f"epoch {epoch + 1}/{config.epochs} loss {record['loss']:.4f}{shown} ({record['seconds']:.1f}s)")
        if checkpoint is not None and distributed.is_main():
            save_checkpoint(
                checkpoint,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "best_state": best_state,
                    "epoch": epoch,
                    "best_score": best_score,
                    "best_epoch": best_epoch,
                    "best_metrics": best_metrics,
                    "stale": stale,
                    "history": history,
                    "rng": _rng_state(),
                    "config": asdict(config),
                },
            )
            if in_progress is not None:
                in_progress.unlink(missing_ok=True)  # the finished epoch supersedes its partial state
        if checkpoint is not None:
            distributed.barrier()  # a resumed run finds the same checkpoint on every rank
    model.load_state_dict(best_state)
    model.eval()
    # One history record per epoch run, across resumes (none more when a finished checkpoint is continued).
    return TrainResult(best_metrics, best_epoch, len(history), time.perf_counter() - started, history, config.monitor)
