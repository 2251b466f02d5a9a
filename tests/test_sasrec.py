"""The SASRec plugin: model masking, the generator and embedder contracts, quality and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genrec_plugins.sasrec as sasrec_plugin
from genrec.contracts import RecData
from genrec.data.demo import generate_demo
from genrec.errors import ConfigError
from genrec.evaluation import evaluate, most_popular
from genrec.protocol import leave_one_out
from genrec.testing import checks
from genrec.training import seed_everything
from genrec_plugins.sasrec.embedder import SASRecEmbedder
from genrec_plugins.sasrec.generator import SASRecGenerator
from genrec_plugins.sasrec.model import SASRec


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and the test machine's cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


FAST = {"dim": 16, "layers": 1, "heads": 2, "batch_size": 32, "device": "cpu", "dropout": 0.2}


def small_model(max_len: int = 8) -> SASRec:
    seed_everything(0)
    return SASRec(n_items=30, dim=16, layers=2, heads=2, dropout=0.0, max_len=max_len).eval()


def test_padding_does_not_change_encode() -> None:
    model = small_model(max_len=8)
    histories = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5], [0, 0, 0, 0, 7]])
    with torch.no_grad():
        plain = model.encode(histories)
        padded = model.encode(torch.cat([torch.zeros(3, 3, dtype=torch.long), histories], 1))
        longer = model.encode(torch.cat([torch.zeros(3, 9, dtype=torch.long), histories], 1))  # > max_len
    torch.testing.assert_close(plain, padded, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(plain, longer, rtol=1e-5, atol=1e-5)


def test_encode_ignores_items_before_the_window_and_sees_recent_ones() -> None:
    model = small_model(max_len=4)
    with torch.no_grad():
        a = model.encode(torch.tensor([[9, 1, 2, 3, 4]]))
        b = model.encode(torch.tensor([[8, 1, 2, 3, 4]]))
        c = model.encode(torch.tensor([[9, 1, 2, 3, 5]]))
    torch.testing.assert_close(a, b)  # only the last max_len items count
    assert not torch.allclose(a, c)


def test_encode_all_is_causal_and_ends_with_encode() -> None:
    model = small_model()
    histories = torch.tensor([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]])
    with torch.no_grad():
        states = model.encode_all(histories)
        changed = model.encode_all(torch.tensor([[0, 0, 3, 4, 5, 9], [1, 2, 3, 4, 5, 9]]))
        torch.testing.assert_close(states[:, -1], model.encode(histories))
    assert states.shape == (2, 6, 16)
    torch.testing.assert_close(states[:, :-1], changed[:, :-1])  # a later item never reaches earlier states
    assert not torch.allclose(states[:, -1], changed[:, -1])


def test_all_padding_rows_are_finite_in_training_mode() -> None:
    model = small_model()
    model.train()
    histories = torch.zeros(4, 6, dtype=torch.long)
    histories[0, -1] = 3
    states = model.encode_all(histories)
    assert torch.isfinite(states).all()
    loss = model.next_item_loss(histories, torch.tensor([4, 5, 6, 7]))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_logits_and_losses_shapes() -> None:
    model = small_model()
    histories = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    assert model.logits(model.encode(histories)).shape == (2, 31)
    last = model.next_item_loss(histories, torch.tensor([4, 8]))
    per_position = model.next_item_loss(histories, torch.tensor([[0, 2, 3, 4], [5, 6, 7, 8]]))
    assert last.ndim == 0 and per_position.ndim == 0
    # With a flat model every item is equally likely: the loss starts near log(n_items).
    assert abs(last.item() - np.log(30)) < 0.5


def test_generator_conformance(tiny_recdata: RecData) -> None:
    checks.check_generator(SASRecGenerator(epochs=2, **FAST), tiny_recdata)


def test_embedder_conformance(tiny_recdata: RecData) -> None:
    embedder = SASRecEmbedder(epochs=2, **FAST)
    embeddings = checks.check_embedder(embedder, tiny_recdata)
    assert embeddings.modality == "collaborative"
    assert embeddings.vectors.dtype == np.float32 and embeddings.vectors.shape == (tiny_recdata.n_items, 16)
    assert np.array_equal(embeddings.vectors, embedder.model.item_embedding.weight[1:].detach().numpy())


def test_registered_lazily(registry, register) -> None:  # noqa: ANN001 - fixtures
    register(sasrec_plugin, name="sasrec")
    generator = registry.get("generator", "sasrec").build(epochs="3", loss="bce", max_len="none")
    assert isinstance(generator, SASRecGenerator)
    assert (generator.epochs, generator.loss, generator.max_len) == (3, "bce", None)
    assert isinstance(registry.get("embedder", "sasrec").build(), SASRecEmbedder)
    with pytest.raises(ConfigError, match="loss"):
        registry.get("generator", "sasrec").build(loss="mse")


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="heads"):
        SASRecGenerator(dim=10, heads=3)
    with pytest.raises(ConfigError, match="dropout"):
        SASRecGenerator(dropout=1.5)


@pytest.fixture(scope="module")
def demo() -> RecData:
    dataset = generate_demo(n_users=200, n_items=80, seed=3)
    return RecData(dataset, leave_one_out(dataset))


@pytest.mark.parametrize("loss", ["ce", "bce"])
def test_beats_most_popular_on_demo(demo: RecData, loss: str) -> None:
    generator = SASRecGenerator(epochs=6, lr=1e-2, loss=loss, **FAST).fit(demo)
    split = demo.split
    ours = evaluate(generator.recommend, split.test_histories, split.test_targets)
    popular = evaluate(most_popular(split.train, demo.n_items), split.test_histories, split.test_targets)
    assert ours["ndcg@10"] > popular["ndcg@10"] + 0.05


def test_aux_losses_train_with_the_model(demo: RecData) -> None:
    seen: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    class Pull(torch.nn.Module):
        def __init__(self, dim: int):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, summary: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            seen.append((tuple(summary.shape), tuple(targets.shape)))
            return 0.1 * self.scale * summary.pow(2).mean()

    class Aux:
        name = key = "pull"

        def __init__(self) -> None:
            self.module: Pull | None = None

        def build(self, dim: int) -> torch.nn.Module:
            self.module = Pull(dim)
            return self.module

    aux = Aux()
    SASRecGenerator(epochs=1, **FAST).fit(demo, aux_losses=[aux])
    assert seen and all(s[0][1] == 16 and s[0][0] == s[1][0] for s in seen)
    assert aux.module is not None and aux.module.scale.item() != 1.0  # its parameter was trained


def test_resume_matches_an_uninterrupted_run(demo: RecData, tmp_path) -> None:  # noqa: ANN001
    options = {**FAST, "patience": 100, "seed": 5}
    straight = SASRecGenerator(epochs=4, **options).fit(demo)

    demo.workdir = tmp_path
    try:
        SASRecGenerator(epochs=2, **options).fit(demo)
        resumed = SASRecGenerator(epochs=4, **options)
        assert resumed.checkpoint_dir(demo) is not None and (resumed.checkpoint_dir(demo) / "last.pt").is_file()
        resumed.fit(demo)
    finally:
        demo.workdir = None
    assert resumed.result is not None and straight.result is not None
    assert resumed.result.epochs_run == straight.result.epochs_run == 4
    for a, b in zip(resumed.result.history, straight.result.history, strict=True):
        for name, value in b["valid"].items():
            assert a["valid"][name] == pytest.approx(value, abs=1e-6)
    split = demo.split
    assert evaluate(resumed.recommend, split.test_histories, split.test_targets) == pytest.approx(
        evaluate(straight.recommend, split.test_histories, split.test_targets), abs=1e-6
    )


def test_rank_excluding_history_keeps_the_order_of_the_other_items(tiny_recdata: RecData) -> None:
    generator = SASRecGenerator(epochs=1, **FAST).fit(tiny_recdata)
    histories = tiny_recdata.split.test_histories[:8]
    everything, scores = generator.rank(histories, tiny_recdata.n_items)
    assert (np.diff(scores, axis=1) <= 0).all()
    ranked, _ = generator.rank(histories, 10, exclude_history=True)
    for row, history in enumerate(histories):
        expected = [item for item in everything[row] if item not in set(history.tolist())][:10]
        assert ranked[row].tolist() == expected
