"""The shared training loop: early stopping, best-state restore, resume, NaN guard, learning-rate schedules."""

import numpy as np
import pytest
import torch

from genrec.errors import ConfigError, TrainingError
from genrec.training import TrainConfig, check_schedule, lr_factor, seed_everything, train


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


def test_continuing_a_finished_checkpoint_trains_no_further_and_reports_the_same_run(tmp_path):
    config = TrainConfig(epochs=3, lr=0.05)
    model, batches, loss_fn, validate = _problem(seed=2)
    first = train(model, batches, loss_fn, validate, config, tmp_path, log=lambda m: None)
    weights = model.weight.detach().clone()
    model, batches, loss_fn, validate = _problem(seed=2)
    again = train(model, lambda epoch: pytest.fail("trained again"), loss_fn, validate, config, tmp_path)
    assert again.summary() == first.summary() and again.epochs_run == 3
    assert torch.equal(model.weight, weights)


def test_an_epoch_interrupted_in_the_middle_resumes_at_its_last_saved_step(tmp_path):
    config = TrainConfig(epochs=3, lr=0.05, checkpoint_seconds=0.0)  # save after every step
    model, batches, loss_fn, validate = _problem(seed=3)
    dropout = torch.nn.Dropout(0.3)  # draws from the random state, which the resume must restore
    full = train(model, batches, lambda i: loss_fn(i) * dropout(torch.ones(1)).sum(), validate, config)
    full_weights = model.weight.detach().clone()

    model, batches, loss_fn, validate = _problem(seed=3)
    calls = 0

    def interrupted(index):
        nonlocal calls
        calls += 1
        if calls == 7 + 4:  # the 4th step of the second epoch (7 steps an epoch)
            raise KeyboardInterrupt
        return loss_fn(index) * dropout(torch.ones(1)).sum()

    with pytest.raises(KeyboardInterrupt):
        train(model, batches, interrupted, validate, config, tmp_path, log=lambda m: None)
    assert (tmp_path / "epoch.pt").is_file()

    model, batches, loss_fn, validate = _problem(seed=3)  # a new process
    seed_everything(999)
    lines: list[str] = []
    resumed = train(
        model, batches, lambda i: loss_fn(i) * dropout(torch.ones(1)).sum(), validate, config, tmp_path, lines.append
    )
    assert "resumed inside epoch 2 after step 3/7" in lines
    assert torch.equal(model.weight, full_weights)
    assert [r["loss"] for r in resumed.history] == pytest.approx([r["loss"] for r in full.history])
    assert [r["steps"] for r in resumed.history] == [7, 7, 7]
    assert not (tmp_path / "epoch.pt").exists()  # the finished epochs superseded it


def test_an_epoch_in_progress_under_other_settings_is_not_resumed(tmp_path):
    config = TrainConfig(epochs=2, lr=0.05, checkpoint_seconds=0.0)
    model, batches, loss_fn, validate = _problem(seed=3)
    calls = 0

    def interrupted(index):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return loss_fn(index)

    with pytest.raises(KeyboardInterrupt):
        train(model, batches, interrupted, validate, config, tmp_path, log=lambda m: None)
    lines: list[str] = []
    model, batches, loss_fn, validate = _problem(seed=3)
    train(model, batches, loss_fn, validate, TrainConfig(epochs=2, lr=0.01), tmp_path, lines.append)
    assert not any("resumed" in line for line in lines)


def _scripted(scores):
    """The small problem, validated by a fixed list of scores (one per epoch)."""
    model, batches, loss_fn, _ = _problem(seed=2)
    remaining = iter(scores)
    return model, batches, loss_fn, lambda: {"ndcg@10": next(remaining)}


def _trained(config: TrainConfig, directory=None):  # noqa: ANN001
    """Train the small problem (seed 1) under ``config``; the result and the loop's log lines."""
    lines: list[str] = []
    return train(*_problem(seed=1), config, directory, log=lines.append), lines


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        (TrainConfig(epochs=4, lr=0.05), TrainConfig(epochs=2, lr=0.05), "past the 2 epochs asked for"),
        (TrainConfig(epochs=2, lr=0.05), TrainConfig(epochs=3, lr=0.01), "made with other training settings"),
        (
            TrainConfig(epochs=2, lr=0.05),
            TrainConfig(epochs=4, lr=0.05, schedule="cosine"),
            "the learning-rate schedule differs from its own at step 2",
        ),
        (
            TrainConfig(epochs=3, lr=0.05, schedule="wsd", decay_fraction=0.5),
            TrainConfig(epochs=6, lr=0.05, schedule="wsd", decay_fraction=0.5),
            "the learning-rate schedule differs",
        ),
    ],
)
def test_a_checkpoint_that_cannot_continue_is_not_used(tmp_path, first, second, reason):
    _trained(first, tmp_path)
    result, lines = _trained(second, tmp_path)
    assert any(reason in line and line.endswith("; training from the start") for line in lines)
    fresh, _ = _trained(second)
    assert result.epochs_run == fresh.epochs_run == second.epochs
    assert result.summary()["valid_curve"] == pytest.approx(fresh.summary()["valid_curve"], abs=1e-6)


def test_a_checkpoint_continues_only_where_the_new_patience_would_not_have_stopped(tmp_path):
    scores = [0.5, 0.4, 0.3, 0.6, 0.7, 0.8]
    for directory, patience in ((tmp_path / "short", 1), (tmp_path / "long", 8)):
        train(*_scripted(scores), TrainConfig(epochs=4, patience=5), directory, log=lambda m: None)
        lines: list[str] = []
        # a resumed run is validated on the scores after the checkpoint's, a restarted one from the first
        result = train(*_scripted(scores), TrainConfig(epochs=6, patience=patience), directory, log=lines.append)
        if patience == 1:  # stops after epoch 2 from the start, so the checkpoint at epoch 4 cannot go on
            assert any("patience 1 would have stopped training after epoch 2" in line for line in lines)
            assert result.epochs_run == 2 and result.best_epoch == 0
        else:
            assert any("resumed from" in line for line in lines)
            assert result.epochs_run == 6 and result.best_epoch == 3


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


def test_schedules_warm_up_then_hold_or_decay_to_zero():
    constant = TrainConfig(epochs=10, warmup_steps=4)
    assert [lr_factor(constant, step, 0.0) for step in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    cosine = TrainConfig(epochs=10, schedule="cosine")
    assert lr_factor(cosine, 0, 0.0) == 1.0 and lr_factor(cosine, 99, 5.0) == pytest.approx(0.5)
    assert lr_factor(cosine, 199, 10.0) == pytest.approx(0.0, abs=1e-12)
    wsd = TrainConfig(epochs=10, schedule="wsd", decay_fraction=0.2)
    assert lr_factor(wsd, 140, 7.5) == 1.0 and lr_factor(wsd, 150, 8.0) == pytest.approx(1.0)  # then decays
    assert lr_factor(wsd, 170, 9.0) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="'schedule' must be one of"):
        check_schedule("tiger", "linear", 0.2)
    with pytest.raises(ConfigError, match="'decay_fraction' must be in"):
        check_schedule("tiger", "wsd", 0.0)


def test_the_loop_applies_the_schedule_and_records_each_epochs_rate():
    result, _ = _trained(TrainConfig(epochs=4, lr=0.05, schedule="wsd", decay_fraction=0.5))
    rates = [record["lr"] for record in result.history]
    assert rates[0] == rates[1] == 0.05  # stable, then decaying to zero at the end
    assert 0.0 < rates[3] < rates[2] < 0.05
    assert all(record["steps"] == 7 for record in result.history)


def test_a_constant_rate_checkpoint_continues_into_a_cool_down_that_starts_after_it(tmp_path):
    _trained(TrainConfig(epochs=4, lr=0.05), tmp_path)
    cool_down = TrainConfig(epochs=6, lr=0.05, schedule="wsd", decay_fraction=2 / 6)  # decays over epochs 5-6
    result, lines = _trained(cool_down, tmp_path)
    assert any("resumed from" in line for line in lines)
    straight, _ = _trained(cool_down)
    assert result.summary()["valid_curve"] == pytest.approx(straight.summary()["valid_curve"], abs=1e-6)
    assert result.history[-1]["lr"] < 0.05


def test_a_checkpoint_from_before_step_records_resumes_its_warm_up(tmp_path):
    from genrec.artifacts import load_checkpoint, save_checkpoint

    config = TrainConfig(epochs=4, lr=0.05, warmup_steps=20)
    _trained(TrainConfig(epochs=2, lr=0.05, warmup_steps=20), tmp_path)
    path = tmp_path / "last.pt"
    state = load_checkpoint(path)
    for record in state["history"]:  # what the loop wrote then: no steps, a scheduler's step count
        del record["steps"], record["lr"]
    state["scheduler"] = {"last_epoch": 14}
    save_checkpoint(path, state)
    resumed, lines = _trained(config, tmp_path)
    assert any("resumed from" in line for line in lines)
    straight, _ = _trained(config)
    assert resumed.summary()["valid_curve"] == pytest.approx(straight.summary()["valid_curve"], abs=1e-6)


def test_epochs_go_to_metrics_jsonl_and_to_tensorboard(tmp_path):
    import json

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from genrec.console import epoch_records, record_epoch

    metrics = tmp_path / "run" / "metrics.jsonl"
    with epoch_records(metrics, "generator"):
        for epoch, ndcg in enumerate((0.1, 0.3)):
            record_epoch({"epoch": epoch, "loss": 2.0 - epoch, "valid": {"ndcg@10": ndcg}, "seconds": 1.5})
    record_epoch({"epoch": 2, "loss": 0.5, "valid": {"ndcg@10": 0.9}, "seconds": 1.0})  # after: recorded nowhere
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [(r["epoch"], r["valid"]["ndcg@10"]) for r in lines] == [(1, 0.1), (2, 0.3)]
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    ndcg = [(e.step, round(e.value, 4)) for e in events.Scalars("generator/valid/ndcg@10")]
    assert ndcg == [(1, 0.1), (2, 0.3)]
    assert [e.value for e in events.Scalars("generator/loss")] == [2.0, 1.0]
