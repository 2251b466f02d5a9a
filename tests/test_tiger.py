"""The ``tiger`` generator: model, beam search against the exact ranking, aux losses, resume, quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genrec.contracts import ItemCodes, RecData
from genrec.data.demo import generate_demo
from genrec.decoding import CodeTrie, beam_search, exact_topk
from genrec.errors import ConfigError
from genrec.evaluation import evaluate, most_popular
from genrec.protocol import leave_one_out
from genrec.testing.checks import check_generator, tiny_recdata
from genrec_plugins.tiger.batches import bucketed_order, trimmed
from genrec_plugins.tiger.generator import DECODE_ITEMS, DECODE_USERS, Tiger, decode_chunks
from genrec_plugins.tiger.model import TigerModel

SMALL = {
    "layers_encoder": 1,
    "layers_decoder": 1,
    "d_model": 32,
    "heads": 2,
    "head_dim": 16,
    "ffn": 64,
    "warmup_steps": 0,
    "batch_size": 64,
    "device": "cpu",
}


def unique_codes(n_items: int, sizes: tuple[int, ...], seed: int = 0) -> ItemCodes:
    rng = np.random.default_rng(seed)
    flat = rng.choice(int(np.prod(sizes)), size=n_items, replace=False)
    return ItemCodes(np.stack(np.unravel_index(flat, sizes), axis=1).astype(np.int64), sizes)


@pytest.fixture(scope="module")
def fitted() -> tuple[Tiger, RecData, ItemCodes]:
    data = tiny_recdata()
    codes = unique_codes(data.n_items, (3, 4, 5))
    generator = Tiger(**SMALL, epochs=2, bf16=False)
    generator.log = lambda line: None
    return generator.fit(data, codes), data, codes


def test_beam_as_wide_as_the_catalog_equals_the_exact_ranking(fitted: tuple[Tiger, RecData, ItemCodes]) -> None:
    generator, data, codes = fitted
    histories = data.split.test_histories[:10]
    exact = exact_topk(generator.decoder(), histories, codes.codes, k=20)
    trie = CodeTrie(codes.codes, codes.codebook_sizes)
    cached = beam_search(generator.decoder(), histories, trie, beam=data.n_items, k=20)
    uncached = beam_search(generator.decoder(cache=False), histories, trie, beam=data.n_items, k=20)
    assert np.array_equal(cached, exact)
    assert np.array_equal(uncached, exact)


def test_recommend_gives_distinct_valid_items_and_checks_k(fitted: tuple[Tiger, RecData, ItemCodes]) -> None:
    generator, data, _ = fitted
    histories = data.split.test_histories.copy()
    histories[0] = 0  # a user with no history must not produce NaN
    ranked = generator.recommend(histories, 20)
    assert ranked.shape == (len(histories), 20)
    assert ((ranked >= 1) & (ranked <= data.n_items)).all()
    assert all(len(set(row.tolist())) == 20 for row in ranked)
    with pytest.raises(ConfigError, match="k must be"):
        generator.recommend(histories, data.n_items + 1)


def test_conformance() -> None:
    generator = Tiger(**SMALL, epochs=1, beam=20)
    generator.log = lambda line: None
    check_generator(generator)


def test_padding_does_not_change_the_encoding() -> None:
    torch.manual_seed(0)
    model = TigerModel((4, 3), max_history=5, layers_encoder=2, d_model=16, heads=2, head_dim=8, ffn=32).eval()
    tokens = torch.tensor([[0, 0, 3, 7], [2, 6, 4, 8]])
    memory, mask = model.encode(tokens)
    alone, _ = model.encode(tokens[:1, 2:])
    assert mask is not None and torch.isfinite(memory).all()
    assert torch.allclose(memory[0, 2:], alone[0], atol=1e-5)
    empty, _ = model.encode(torch.zeros(1, 4, dtype=torch.long))
    assert torch.isfinite(empty).all()


def test_length_bucketed_batches_cover_every_example_once_with_little_padding() -> None:
    lengths = np.random.default_rng(0).integers(1, 21, size=1000)
    batches = bucketed_order(lengths, 64, seed=3, epoch=0)
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(1000))
    assert sum(int(lengths[b].max() - lengths[b].min()) for b in batches) <= 20  # sorted runs
    assert [b.tolist() for b in bucketed_order(lengths, 64, 3, 0)] == [b.tolist() for b in batches]
    assert [b.tolist() for b in bucketed_order(lengths, 64, 3, 1)] != [b.tolist() for b in batches]
    assert trimmed(np.array([[0, 0, 1, 2], [0, 3, 4, 5]])).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_decode_chunks_partition_users_within_the_budget() -> None:
    lengths = np.sort(np.random.default_rng(1).integers(0, 21, size=3000))
    chunks = decode_chunks(lengths)
    assert np.array_equal(np.concatenate([np.arange(3000)[c] for c in chunks]), np.arange(3000))
    for chunk in chunks:
        users = chunk.stop - chunk.start
        assert users <= DECODE_USERS
        assert users == 1 or users * max(1, lengths[chunk].max()) <= DECODE_ITEMS


class RecordingLoss:
    """A dummy auxiliary loss: (summary ** 2).mean() * weight, recording what it is called with."""

    name = "recording.loss"

    def __init__(self, key: str = "recording.loss") -> None:
        self.key = key
        self.calls: list[tuple[tuple[int, ...], torch.Tensor]] = []
        self.module: nn.Module | None = None

    def build(self, dim: int) -> nn.Module:
        owner = self

        class Module(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.weight = nn.Parameter(torch.tensor(0.5))
                self.dim = dim

            def forward(self, summary: torch.Tensor, target_items: torch.Tensor) -> torch.Tensor:
                owner.calls.append((tuple(summary.shape), target_items.detach().clone()))
                return (summary.float() ** 2).mean() * self.weight

        self.module = Module()
        return self.module


def test_checkpoint_key_follows_the_auxiliary_losses_keys(tmp_path) -> None:  # noqa: ANN001
    data = tiny_recdata()
    data.workdir = tmp_path
    codes = unique_codes(data.n_items, (4, 10))
    generator = Tiger(**SMALL)
    plain, first = generator.checkpoint_dir(data, codes), generator.checkpoint_dir(data, codes, [RecordingLoss("a")])
    assert len({plain, first, generator.checkpoint_dir(data, codes, [RecordingLoss("b")])}) == 3
    assert generator.checkpoint_dir(data, codes, [RecordingLoss("a")]) == first
    keyless = RecordingLoss()
    del keyless.key
    with pytest.raises(ConfigError, match="'recording.loss' has no string `key`"):
        generator.checkpoint_dir(data, codes, [keyless])


def test_auxiliary_losses_get_the_summary_and_targets_and_train() -> None:
    data = tiny_recdata()
    codes = unique_codes(data.n_items, (4, 10))
    aux = RecordingLoss()
    generator = Tiger(**SMALL, epochs=1, bf16=False)
    generator.log = lambda line: None
    batches, loss_fn = generator.prepare(data, codes, [aux])
    assert aux.module is not None and aux.module.dim == 32
    assert any(module is aux.module for module in generator._fitted().aux.values())
    batch = next(iter(batches(0)))
    loss = loss_fn(batch)
    loss.backward()
    shape, targets = aux.calls[-1]
    assert shape == (len(batch[2]), 32)
    assert torch.equal(targets, batch[2])
    assert aux.module.weight.grad is not None and aux.module.weight.grad.abs() > 0
    # The targets are the items whose codes the batch teaches.
    assert torch.equal(torch.as_tensor(codes.codes)[batch[2] - 1], batch[1])
    before = aux.module.weight.detach().clone()
    generator.fit(data, codes, [aux])
    assert not torch.equal(generator._fitted().aux["0_recording_loss"].weight.detach(), before)


def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path) -> None:  # noqa: ANN001
    def run(workdir, epochs: int) -> Tiger:  # noqa: ANN001
        data = tiny_recdata()
        data.workdir = workdir
        generator = Tiger(**SMALL, epochs=epochs, patience=10, dropout=0.2, bf16=False)
        generator.log = lambda line: None
        return generator.fit(data, unique_codes(data.n_items, (4, 10)))

    straight = run(tmp_path / "a", epochs=3)
    run(tmp_path / "b", epochs=1)  # "killed" after its first epoch
    resumed = run(tmp_path / "b", epochs=3)
    assert resumed.result is not None and resumed.result.epochs_run == 3
    assert list((tmp_path / "b" / "tiger").iterdir())
    for (name, a), (_, b) in zip(
        straight._fitted().state_dict().items(), resumed._fitted().state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="beam"):
        Tiger(beam=0)
    with pytest.raises(ConfigError, match="valid_users"):
        Tiger(valid_users=0)
    with pytest.raises(ConfigError, match="needs item codes"):
        Tiger(**SMALL).fit(tiny_recdata(), None)


def test_registered_lazily(register, registry) -> None:  # noqa: ANN001
    import genrec_plugins.tiger as plugin

    register(plugin)
    component = registry.get("generator", "tiger")
    assert isinstance(component.factory, str) and component.load() is Tiger


def test_beats_most_popular_on_demo() -> None:
    dataset = generate_demo()
    data = RecData(dataset, leave_one_out(dataset), seed=0)
    # Codes from the demo's titles: the first level is each item's category, then a unique index.
    topics = sorted({item["categories"][0] for item in dataset.items})
    first = np.array([topics.index(item["categories"][0]) for item in dataset.items])
    second = np.zeros(len(first), dtype=np.int64)
    for topic in range(len(topics)):
        members = np.flatnonzero(first == topic)
        second[members] = np.arange(len(members))
    codes = ItemCodes(np.stack([first, second], axis=1), (len(topics), int(second.max()) + 1))
    generator = Tiger(**{**SMALL, "d_model": 48, "head_dim": 24, "ffn": 96}, epochs=6, lr=3e-3, valid_users=200)
    generator.log = lambda line: None
    generator.fit(data, codes)
    split = data.split
    tiger = evaluate(generator.recommend, split.test_histories, split.test_targets)
    popular = evaluate(most_popular(split.train, dataset.n_items), split.test_histories, split.test_targets)
    assert tiger["ndcg@10"] > 1.5 * popular["ndcg@10"]
    assert tiger["recall@20"] > popular["recall@20"]
