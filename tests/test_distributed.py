"""Data parallelism under torchrun: 2 CPU processes with gloo (the module doubles as the worker script)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genrec import distributed
from genrec.evaluation import evaluate
from genrec.training import TrainConfig, seed_everything, train

N_ITEMS = 50


def _torchrun(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def _recommend(histories: np.ndarray, k: int) -> np.ndarray:
    """A fixed recommender that ranks each user on their own (as every generator does)."""
    table = np.random.default_rng(0).normal(size=(N_ITEMS + 1, N_ITEMS))
    return np.argsort(-table[histories].sum(axis=1), axis=1, kind="stable")[:, :k] + 1


def _users(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    return rng.integers(0, N_ITEMS + 1, size=(n, 20)), rng.integers(1, N_ITEMS + 1, size=n)


def _problem(paired: bool):
    """A regression; distributed, ranks take batches 2i and 2i+1, whose union is batch i when ``paired``."""
    seed_everything(0)
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(80, 8)).astype(np.float32))
    y = x @ torch.arange(8.0).reshape(8, 1) - 1.0
    model = torch.nn.ModuleDict({"used": torch.nn.Linear(8, 1), "unused": torch.nn.Linear(2, 1)})
    size = 16 if paired else 8

    def batches(epoch: int):
        order = torch.from_numpy(np.random.default_rng([2, epoch]).permutation(64))
        for start in range(0, 64, size):
            yield order[start : start + size]

    def loss_fn(index: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(model["used"](x[index]), y[index])

    def validate() -> dict[str, float]:
        return {"ndcg@10": -torch.nn.functional.mse_loss(model["used"](x[64:]), y[64:]).item()}

    return model, batches, loss_fn, validate


CONFIG = TrainConfig(epochs=4, lr=0.05, weight_decay=0.1, patience=10)


def _weights(model: torch.nn.Module) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy()


def _worker(out: Path) -> None:
    assert distributed.init_from_env("cpu") and distributed.world_size() == 2
    me = distributed.rank()
    if distributed.is_main():
        metrics = {n: evaluate(_recommend, *_users(n), batch_size=16) for n in (1, 101)}
        (out / "metrics.json").write_text(json.dumps(metrics))
    else:
        for n in (1, 101):
            evaluate(_recommend, *_users(n), batch_size=16)

    model, batches, loss_fn, validate = _problem(paired=False)
    step = distributed.objective(model, loss_fn)  # kept while backward runs: DDP holds itself weakly
    step(next(distributed.shard_batches(batches(0)))).backward()
    gradient = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None]).numpy()
    train(model, batches, loss_fn, validate, CONFIG)
    whole = _weights(model)
    model, batches, loss_fn, validate = _problem(paired=False)
    half = TrainConfig(**{**CONFIG.__dict__, "epochs": 2})
    train(model, batches, loss_fn, validate, half, out / "checkpoints")
    model, batches, loss_fn, validate = _problem(paired=False)
    seed_everything(100 + me)  # whatever each rank's random state, the checkpoint restores it
    train(model, batches, loss_fn, validate, CONFIG, out / "checkpoints")
    np.savez(out / f"rank{me}.npz", gradient=gradient, whole=whole, resumed=_weights(model))


@pytest.fixture(scope="module")
def worker_output(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("distributed")
    result = _torchrun(__file__, str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_sharded_evaluation_equals_the_single_process_metrics(worker_output):
    metrics = json.loads((worker_output / "metrics.json").read_text())
    for n in (1, 101):
        assert metrics[str(n)] == evaluate(_recommend, *_users(n), batch_size=16)


def test_ranks_train_identical_weights_equal_to_the_combined_batch_run(worker_output):
    ranks = [np.load(worker_output / f"rank{r}.npz") for r in (0, 1)]
    assert np.array_equal(ranks[0]["whole"], ranks[1]["whole"])
    # Averaging the gradients of batches 2i and 2i+1 is one step on their union.
    model, batches, loss_fn, validate = _problem(paired=True)
    initial = _weights(model)
    loss_fn(next(iter(batches(0)))).backward()
    gradient = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None]).numpy()
    for weights in ranks:
        np.testing.assert_allclose(weights["gradient"], gradient, rtol=1e-5, atol=1e-6)
    model.zero_grad()
    train(model, batches, loss_fn, validate, CONFIG, log=lambda m: None)
    np.testing.assert_allclose(ranks[0]["whole"], _weights(model), rtol=1e-5, atol=1e-6)
    assert not np.allclose(ranks[0]["whole"][:9], initial[:9])
    # A parameter no rank uses gets no gradient, so (as in one process) not even weight decay moves it.
    np.testing.assert_array_equal(ranks[0]["whole"][9:], initial[9:])
    # Rank 0 alone wrote the checkpoint; both resumed from it to the uninterrupted result.
    assert [p.name for p in (worker_output / "checkpoints").iterdir()] == ["last.pt"]
    for weights in ranks:
        np.testing.assert_allclose(weights["resumed"], ranks[0]["whole"], rtol=1e-6, atol=1e-7)


def test_shard_splits_users_into_ordered_blocks_and_batches_into_equal_counts(monkeypatch):
    users = np.arange(10)
    assert distributed.shard(users) is users  # one process: everything, untouched
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    blocks, shares = [], []
    for me in range(3):
        monkeypatch.setattr(distributed, "rank", lambda me=me: me)
        blocks.append(distributed.shard(users))
        shares.append(list(distributed.shard_batches(iter(range(7)))))
    assert np.array_equal(np.concatenate(blocks), users) and {len(b) for b in blocks} <= {3, 4}
    assert shares == [[0, 3, 6], [1, 4, 0], [2, 5, 1]]  # the short last round is completed from the start


def test_sasrec_recipe_trains_under_torchrun(tmp_path):
    args = ["recipe", "sasrec", "--data", "demo", "--run-dir", str(tmp_path / "run")]
    args += ["--store-dir", str(tmp_path / "store"), "--set", "generator.epochs=2", "--set", "generator.dim=32"]
    result = _torchrun("-m", "genrec.cli", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert listed == ["log.txt", "metrics.jsonl", "results.json", "tensorboard"]  # written by rank 0 alone
    assert len(list((tmp_path / "run" / "tensorboard").iterdir())) == 1  # one writer: no event file per rank
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["world_size"] == 2
    assert results["test"]["ndcg@10"] > results["baselines"]["most_popular"]["test"]["ndcg@10"]
    stage = tmp_path / "store" / "generator"
    published = sorted(p.name for p in stage.iterdir() if not p.name.startswith(".work-") and ".lock" not in p.name)
    assert published == [results["stages"]["generator"]["key"]]  # no stray temporary directory
    assert len(list(stage.glob(".work-*/sasrec/*/last.pt"))) == 1  # one checkpoint, written by rank 0
    assert result.stderr.count("results:") == 1  # rank 0 alone reports


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
    distributed.finish_process()  # as the command line ends a run
