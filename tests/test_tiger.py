"""The ``tiger`` and ``causal`` generators: models, beam search against exact ranking, aux losses, resume, quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genrec.contracts import ItemCodes, RecData
from genrec.data.demo import generate_demo
from genrec.decoding import CodeTrie, beam_search, exact_topk
from genrec.errors import ConfigError
from genrec.evaluation import evaluate, most_popular, rank_metrics
from genrec.protocol import leave_one_out
from genrec.testing.checks import RecordingLoss, check_generator, tiny_recdata
from genrec_plugins.tiger.batches import bucketed_order, trimmed
from genrec_plugins.tiger.causal import RERANK_WEIGHTS, Causal
from genrec_plugins.tiger.causal_model import CausalModel
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


class CausalCodeTokens(Causal):
    """``causal`` with one encoder token per code (``encoder="codes"``)."""

    def __init__(self, **options: object) -> None:
        super().__init__(**{"encoder": "codes", **options})  # type: ignore[arg-type]


GENERATORS = [Tiger, Causal, CausalCodeTokens]


def unique_codes(n_items: int, sizes: tuple[int, ...], seed: int = 0) -> ItemCodes:
    rng = np.random.default_rng(seed)
    flat = rng.choice(int(np.prod(sizes)), size=n_items, replace=False)
    return ItemCodes(np.stack(np.unravel_index(flat, sizes), axis=1).astype(np.int64), sizes)


@pytest.fixture(scope="module", params=GENERATORS, ids=lambda cls: cls.__name__)
def fitted(request) -> tuple[Tiger, RecData, ItemCodes]:  # noqa: ANN001
    data = tiny_recdata()
    codes = unique_codes(data.n_items, (3, 4, 5))
    generator = request.param(**SMALL, epochs=2, bf16=False)
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


@pytest.mark.parametrize("cls", GENERATORS, ids=lambda cls: cls.__name__)
def test_conformance(cls: type[Tiger]) -> None:
    generator = cls(**SMALL, epochs=1, beam=20)
    generator.log = lambda line: None
    check_generator(generator)


@pytest.mark.parametrize("encoder", ["items", "codes"])
def test_causal_states_see_only_the_past_and_padding_changes_nothing(encoder: str) -> None:
    torch.manual_seed(0)
    model = CausalModel(
        (4, 3), max_history=6, layers_encoder=2, d_model=16, heads=2, head_dim=8, ffn=32, encoder=encoder
    ).eval()
    items = model.code_tokens(torch.tensor([[[1, 2], [3, 0], [2, 2], [0, 1]]]))
    ids = torch.tensor([[1, 2, 3, 4]])
    states, memory, _ = model.encode_items(items, ids)
    assert memory.shape == (1, 4 * (2 if encoder == "codes" else 1), 16)
    changed = items.clone()
    changed[0, 3] = model.code_tokens(torch.tensor([2, 1]))
    later, _, _ = model.encode_items(changed, ids)
    assert torch.allclose(states[0, :3], later[0, :3], atol=1e-6)  # position t never sees t + 1
    assert not torch.allclose(states[0, 3], later[0, 3])
    pad = torch.zeros_like(ids[:, :2])
    padded, _, _ = model.encode_items(
        torch.cat([torch.zeros_like(items[:, :2]), items], dim=1), torch.cat([pad, ids], 1)
    )
    assert torch.allclose(padded[0, 2:], states[0], atol=1e-5)
    assert torch.isfinite(padded).all()


def test_causal_trains_every_target_position_once() -> None:
    data = tiny_recdata()
    codes = unique_codes(data.n_items, (4, 10))
    generator = Causal(**SMALL, epochs=1)
    batches, _ = generator.prepare(data, codes)
    targets = np.concatenate([batch[-1].numpy() for batch in batches(0)])
    _, examples = data.split.training_examples()
    assert np.array_equal(np.sort(targets), np.sort(examples))
    for ids, items, target_codes, has_target, target_items in batches(1):
        assert torch.equal(target_codes[has_target], torch.as_tensor(codes.codes)[target_items - 1])
        assert torch.equal(items, generator.item_tokens[ids])
        # Every target follows a real history item at the same position.
        assert bool((ids[has_target] != 0).all())


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
    with pytest.raises(ConfigError, match="'recording' has no string `key`"):
        generator.checkpoint_dir(data, codes, [keyless])


@pytest.mark.parametrize("cls", GENERATORS, ids=lambda cls: cls.__name__)
def test_auxiliary_losses_get_the_summary_and_targets_and_train(cls: type[Tiger]) -> None:
    data = tiny_recdata()
    codes = unique_codes(data.n_items, (4, 10))
    aux = RecordingLoss()
    generator = cls(**SMALL, epochs=1, bf16=False)
    generator.log = lambda line: None
    batches, loss_fn = generator.prepare(data, codes, [aux])
    assert aux.module is not None and aux.dim == 32
    assert any(module is aux.module for module in generator.fitted_model().aux.values())
    batch = next(iter(batches(0)))
    loss = loss_fn(batch)
    loss.backward()
    shape, targets = aux.calls[-1]
    target_items = batch[-1]  # both generators' batches end with the target items
    assert shape == (len(target_items), 32)
    assert np.array_equal(targets, target_items.numpy())
    assert aux.module.weight.grad is not None and aux.module.weight.grad.abs() > 0
    if cls is Tiger:  # the targets are the items whose codes the batch teaches (causal: its own test)
        assert torch.equal(torch.as_tensor(codes.codes)[target_items - 1], batch[1])
    before = aux.module.weight.detach().clone()
    generator.fit(data, codes, [aux])
    assert not torch.equal(generator.fitted_model().aux["0_recording"].weight.detach(), before)


@pytest.mark.parametrize("cls", GENERATORS, ids=lambda cls: cls.__name__)
def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path, cls: type[Tiger]) -> None:  # noqa: ANN001
    def run(workdir, epochs: int) -> Tiger:  # noqa: ANN001
        data = tiny_recdata()
        data.workdir = workdir
        generator = cls(**SMALL, epochs=epochs, patience=10, dropout=0.2, bf16=False, schedule="constant")
        generator.log = lambda line: None
        return generator.fit(data, unique_codes(data.n_items, (4, 10)))

    straight = run(tmp_path / "a", epochs=3)
    run(tmp_path / "b", epochs=1)  # "killed" after its first epoch
    resumed = run(tmp_path / "b", epochs=3)
    assert resumed.result is not None and resumed.result.epochs_run == 3
    assert list((tmp_path / "b" / cls.name).iterdir())
    for (name, a), (_, b) in zip(
        straight.fitted_model().state_dict().items(), resumed.fitted_model().state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("cls", GENERATORS, ids=lambda cls: cls.__name__)
def test_bad_options_are_config_errors(cls: type[Tiger]) -> None:
    with pytest.raises(ConfigError, match=f"{cls.name} option 'beam'"):
        cls(beam=0)
    with pytest.raises(ConfigError, match="valid_users"):
        cls(valid_users=0)
    with pytest.raises(ConfigError, match="'schedule' must be one of"):
        cls(schedule="step")
    with pytest.raises(ConfigError, match=f"{cls.name} needs item codes"):
        cls(**SMALL).fit(tiny_recdata(), None)


def test_registered_lazily(register, registry) -> None:  # noqa: ANN001
    import genrec_plugins.tiger as plugin

    register(plugin)
    for name, cls in (("tiger", Tiger), ("causal", Causal)):
        component = registry.get("generator", name)
        assert isinstance(component.factory, str) and component.load() is cls


def demo_with_codes() -> tuple[RecData, ItemCodes]:
    """The demo data, coded by its titles: the first level is each item's category, then a unique index."""
    dataset = generate_demo()
    data = RecData(dataset, leave_one_out(dataset), seed=0)
    topics = sorted({item["categories"][0] for item in dataset.items})
    first = np.array([topics.index(item["categories"][0]) for item in dataset.items])
    second = np.zeros(len(first), dtype=np.int64)
    for topic in range(len(topics)):
        members = np.flatnonzero(first == topic)
        second[members] = np.arange(len(members))
    return data, ItemCodes(np.stack([first, second], axis=1), (len(topics), int(second.max()) + 1))


@pytest.mark.parametrize("cls", GENERATORS, ids=lambda cls: cls.__name__)
def test_beats_most_popular_on_demo(cls: type[Tiger]) -> None:
    data, codes = demo_with_codes()
    dataset = data.dataset
    options = {**SMALL, "d_model": 48, "head_dim": 24, "ffn": 96, "lr": 3e-3, "valid_users": 200}
    if cls is Causal:  # 600 windows: more, smaller steps for the same budget
        options.update(batch_size=32, dropout=0.1)
    generator = cls(**options, epochs=6)
    generator.log = lambda line: None
    generator.fit(data, codes)
    split = data.split
    tiger = evaluate(generator.recommend, split.test_histories, split.test_targets)
    popular = evaluate(most_popular(split.train, dataset.n_items), split.test_histories, split.test_targets)
    assert tiger["ndcg@10"] > 1.5 * popular["ndcg@10"]
    assert tiger["recall@20"] > popular["recall@20"]


def test_id_dropout_drops_id_vectors_in_training_only() -> None:
    torch.manual_seed(0)
    options = {"layers_encoder": 1, "d_model": 16, "heads": 2, "head_dim": 8, "ffn": 32, "dropout": 0.0}
    model = CausalModel((4, 3), max_history=6, n_items=10, id_dropout=0.5, **options)
    items = model.code_tokens(torch.tensor([[[1, 2], [3, 0], [2, 2], [0, 1]]]))
    ids = torch.tensor([[1, 2, 3, 4]])
    model.eval()
    plain = model.encode_items(items, ids)[0]
    assert torch.allclose(plain, model.encode_items(items, ids)[0])  # evaluation: nothing dropped
    model.train()
    draws = {tuple(model.encode_items(items, ids)[0].flatten()[:4].tolist()) for _ in range(8)}
    assert len(draws) > 1  # training: the dropped ids change from pass to pass
    with pytest.raises(ConfigError, match="id_dropout"):
        Causal(id_dropout=1.0)


def test_item_loss_trains_dense_scores_and_rerank_picks_its_weight_on_validation(tmp_path) -> None:  # noqa: ANN001
    data, codes = demo_with_codes()
    split = data.split
    options = {**SMALL, "d_model": 48, "head_dim": 24, "ffn": 96, "lr": 3e-3, "batch_size": 32, "dropout": 0.1}
    generator = Causal(**options, epochs=6, item_loss=1.0, rerank=True, rerank_beam=30)
    generator.log = lambda line: None
    generator.fit(data, codes)
    # The dense head alone ranks the catalog better than popularity: the item loss trained it.
    catalog = np.arange(1, data.n_items + 1)

    def by_dense(histories: np.ndarray, k: int) -> np.ndarray:
        scores = generator.dense_scores(histories, np.tile(catalog, (len(histories), 1)))
        return catalog[np.argsort(-scores, axis=1)[:, :k]]

    dense = generator.dense_scores(split.test_histories, np.tile(catalog, (len(split.test_targets), 1)))
    popular = evaluate(most_popular(split.train, data.n_items), split.test_histories, split.test_targets)
    assert evaluate(by_dense, split.test_histories, split.test_targets)["ndcg@10"] > 1.5 * popular["ndcg@10"]
    assert np.allclose(np.exp(dense).sum(axis=1), 1.0, atol=1e-3)  # log-probabilities over the catalog
    # The weight was chosen on validation among the grid, and recorded with the training summary.
    chosen = generator.result.selected["rerank"]
    assert generator.rerank_weight == chosen["weight"] in RERANK_WEIGHTS
    assert chosen["valid_ndcg@10"][str(chosen["weight"])] == max(chosen["valid_ndcg@10"].values())
    # A wider beam re-scored on validation (as benchmarks/rerank.py --rerank-beam tries it): weight 0 is
    # the generative ranking of that beam.
    generator.rerank_beam = 60
    wider = generator.rerank_ndcg(split.valid_histories, split.valid_targets, False)
    beam_items, _ = super(Causal, generator).rank(split.valid_histories, 60)
    assert set(wider) == set(RERANK_WEIGHTS)
    assert wider[0.0] == pytest.approx(rank_metrics(beam_items, split.valid_targets, (10,))["ndcg@10"])
    generator.rerank_beam = 30
    # The hybrid ranking: k distinct items, sorted by its combined score, history left out when asked.
    items, scores = generator.rank(split.test_histories, 10, exclude_history=True)
    assert all(len(set(row)) == 10 for row in items.tolist())
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    pairs = zip(items.tolist(), split.test_histories.tolist(), strict=True)
    assert not any(set(row) & set(history) for row, history in pairs)
    # Saved and loaded, the run keeps its weight and its recommendations.
    generator.save(tmp_path)
    loaded = Causal(**options, item_loss=1.0, rerank=True, rerank_beam=30).load(tmp_path)
    assert loaded.rerank_weight == generator.rerank_weight
    assert np.array_equal(loaded.recommend(split.test_histories, 10), generator.recommend(split.test_histories, 10))
    with pytest.raises(ConfigError, match="item_loss"):
        Causal(rerank=True, item_loss=0.0)
