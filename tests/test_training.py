"""The shared training loop: early stopping, best-state restore, resume, NaN guard."""

import numpy as np
import pytest
import torch

from genrec.errors import TrainingError
from genrec.training import TrainConfig, seed_everything, train


def _problem(seed: int = 0):
    """A small regression whose 'validation metric' is the negative validation error."""
    seed_everything(seed)
    x = torch.randn(256, 8)
    w = torch.randn(8, 1)
    y = x @ w + 0.1 * torch.randn(256, 1)
    model = torch.nn.Linear(8, 1)

    def batches(epoch):
        order = torch.randperm(200)
        for start in range(0, 200, 32):
            yield order[start : start + 32]

    def loss_fn(index):
        return torch.nn.functional.mse_loss(model(x[index]), y[index])

    def validate():
        return {"ndcg@10": -torch.nn.functional.mse_loss(model(x[200:]), y[200:]).item()}

    return model, batches, loss_fn, validate


def test_training_improves_and_restores_the_best_state(tmp_path):
    model, batches, loss_fn, validate = _problem()
    before = validate()["ndcg@10"]
    result = train(model, batches, loss_fn, validate, TrainConfig(epochs=15, lr=0.05), log=lambda m: None)
    assert result.best_metrics["ndcg@10"] > before
    assert validate()["ndcg@10"] == pytest.approx(result.best_metrics["ndcg@10"])


def test_early_stopping_stops_after_patience():
    model, batches, loss_fn, _ = _problem()
    scores = iter([0.5, 0.4, 0.3, 0.2, 0.1, 0.0, -0.1])
    result = train(
        model,
        batches,
        loss_fn,
        lambda: {"ndcg@10": next(scores)},
        TrainConfig(epochs=7, patience=2),
        log=lambda m: None,
    )
    assert result.best_epoch == 0 and result.epochs_run == 3


def test_resume_gives_the_same_result_as_an_uninterrupted_run(tmp_path):
    model, batches, loss_fn, validate = _problem(seed=1)
    full = train(model, batches, loss_fn, validate, TrainConfig(epochs=6, lr=0.05), log=lambda m: None)
    full_weights = model.weight.detach().clone()

    model, batches, loss_fn, validate = _problem(seed=1)
    train(model, batches, loss_fn, validate, TrainConfig(epochs=3, lr=0.05), tmp_path, log=lambda m: None)
    model, batches, loss_fn, validate = _problem(seed=1)  # a new process: fresh model, same data
    seed_everything(999)  # whatever the random state, the checkpoint restores it
    resumed = train(model, batches, loss_fn, validate, TrainConfig(epochs=6, lr=0.05), tmp_path, log=lambda m: None)
    assert resumed.best_metrics["ndcg@10"] == pytest.approx(full.best_metrics["ndcg@10"], abs=1e-6)
    assert torch.allclose(model.weight, full_weights, atol=1e-6)
    # the summary covers the epochs run before the resume too
    summary = resumed.summary()
    assert summary["epochs_run"] == 6 and len(summary["valid_curve"]) == 6
    assert summary["valid_curve"] == pytest.approx(full.summary()["valid_curve"], abs=1e-5)
    assert resumed.total_seconds > sum(record["seconds"] for record in resumed.history[3:])


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    model, batches, loss_fn, validate = _problem()
    train(model, batches, loss_fn, validate, TrainConfig(epochs=2), tmp_path, log=lambda m: None)
    good = (tmp_path / "last.pt").read_bytes()

    def exploding(index):
        return loss_fn(index) * float("nan")

    with pytest.raises(TrainingError, match="loss became nan.*last good checkpoint"):
        train(model, batches, exploding, validate, TrainConfig(epochs=4), tmp_path, log=lambda m: None)
    assert (tmp_path / "last.pt").read_bytes() == good


def test_seeding_makes_runs_repeatable():
    results = []
    for _ in range(2):
        model, batches, loss_fn, validate = _problem(seed=3)
        train(model, batches, loss_fn, validate, TrainConfig(epochs=3), log=lambda m: None)
        results.append(model.weight.detach().numpy().copy())
    np.testing.assert_array_equal(results[0], results[1])
