"""The ``tiger`` generator: an encoder-decoder transformer that writes the next item's semantic ID.

Training is next-code cross-entropy (mean over the code levels) in the shared loop: early stopping on
validation NDCG@10 of this generator's own recommendations (constrained beam search), checkpoints
under ``data.workdir/tiger/<key>`` so a killed run resumes. Batches are length-bucketed (see
:mod:`genrec_plugins.tiger.batches`) so that no compute goes to padding. Auxiliary losses contributed
by other components receive the decoder state that predicts the first code level.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genrec.artifacts import digest
from genrec.contracts import AuxiliaryLoss, ItemCodes, RecData, auxiliary_keys
from genrec.decoding import CodeTrie, beam_search_scored
from genrec.device import resolve_device
from genrec.errors import ConfigError, require_at_least
from genrec.evaluation import evaluate, under_protocol
from genrec.saved import load_json, load_module, save_json, save_module
from genrec.trained import TrainedComponent
from genrec.training import TrainResult, check_schedule, seed_everything, train
from genrec_plugins.tiger.batches import bucketed_order, history_lengths, trimmed
from genrec_plugins.tiger.model import BEGIN, KV, PAD, TigerModel, level_cross_entropy

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # history tokens, target codes, target items
DECODE_USERS = 256  # users per beam-search call at most: bounds the per-beam cache memory
DECODE_ITEMS = 2048  # history items (padding included) per beam-search call at most


def decode_chunks(lengths: np.ndarray) -> list[slice]:
    """Consecutive runs of users (``lengths`` ascending) whose padded histories fit the decoding budget."""
    chunks, start, n = [], 0, len(lengths)
    while start < n:
        end = start + 1
        # Lengths ascend, so the newest user sets the padded width of the whole chunk.
        while end < n and end - start < DECODE_USERS and (end + 1 - start) * max(1, lengths[end]) <= DECODE_ITEMS:
            end += 1
        chunks.append(slice(start, end))
        start = end
    return chunks


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def item_token_table(model: TigerModel, codes: np.ndarray) -> torch.Tensor:
    """(n_items + 1, levels) vocabulary tokens of every item's code; row 0 (padding) is all PAD."""
    tokens = model.code_tokens(torch.as_tensor(codes, dtype=torch.long, device=model.offsets.device))
    return torch.cat([torch.full_like(tokens[:1], PAD), tokens])


class TigerDecoder:
    """The trained model seen through :class:`genrec.decoding.CodeDecoder`, with a key/value cache."""

    def __init__(self, model: TigerModel, item_tokens: torch.Tensor, bf16: bool = False, cache: bool = True):
        self.model, self.item_tokens, self.bf16, self.cache = model, item_tokens, bf16, cache
        self.device = item_tokens.device

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def history_tokens(self, histories: np.ndarray) -> torch.Tensor:
        histories = trimmed(np.asarray(histories, dtype=np.int64)[:, -self.model.max_history :])
        items = torch.as_tensor(histories, device=self.device)
        return self.item_tokens[items].reshape(len(histories), -1)

    def start(self, histories: np.ndarray) -> dict[str, Any]:
        with self._autocast():
            memory, mask = self.model.encode(self.history_tokens(histories))
            return {"memories": self.model.memories(memory), "mask": mask, "past": None}

    def inputs(self, state: dict[str, Any], prefixes: torch.Tensor) -> torch.Tensor:
        """Embedded decoder inputs (users, width, t + 1, d) for prefixes (users, width, t): begin, then codes."""
        users, width, _ = prefixes.shape
        begin = torch.full((users, width, 1), BEGIN, dtype=torch.long, device=self.device)
        return self.model.tokens(torch.cat([begin, self.model.code_tokens(prefixes)], dim=-1))

    def step(self, state: dict[str, Any], prefixes: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        model = self.model
        prefixes = prefixes.to(self.device)
        users, width, depth = prefixes.shape
        past: list[KV] | None = state["past"]
        with self._autocast():
            if past is not None and past[0][0].shape[0] == users * width and past[0][0].shape[2] == depth:
                # Only the newest code is new: positions 0..depth-1 are cached.
                newest = model.tokens(model.code_tokens(prefixes)[..., -1:])
                hidden, caches = model.decode_embedded(newest, depth, state["memories"], state["mask"], past)
            else:
                hidden, caches = model.decode_embedded(
                    self.inputs(state, prefixes), 0, state["memories"], state["mask"]
                )
            logits = model.heads[depth](hidden[:, :, -1])
        log_probs = F.log_softmax(logits.float(), dim=-1)
        return log_probs, {**state, "past": caches if self.cache else None}

    def select(self, state: dict[str, Any], parents: torch.Tensor) -> dict[str, Any]:
        past: list[KV] | None = state["past"]
        if past is None:
            return state
        users, width = parents.shape
        rows = torch.arange(users, device=parents.device).unsqueeze(1)

        def pick(x: torch.Tensor) -> torch.Tensor:
            grouped = x.view(users, -1, *x.shape[1:])[rows, parents]
            return grouped.reshape(users * width, *x.shape[1:])

        return {**state, "past": [(pick(k), pick(v)) for k, v in past]}


class Tiger(TrainedComponent):
    """TIGER: an encoder-decoder transformer generating semantic IDs, decoded by constrained beam search.

    Subclasses (the ``causal`` generator) keep this training, checkpointing and decoding and change
    the model (:meth:`build_model`), the training batches (:meth:`training_batches`) and the decoder.

    Parameters
    ----------
    layers_encoder, layers_decoder : int
        Encoder and decoder layers.
    d_model, heads, head_dim, ffn : int
        Model width, attention heads and the width of each (attention is ``heads x head_dim`` wide, not
        ``d_model`` wide), and the feed-forward's hidden width.
    dropout : float
        Dropout on the embeddings and the residual branches (not on attention weights or the
        feed-forward hidden layer).
    lr, weight_decay, warmup_steps : float, float, int
        AdamW's learning rate and weight decay, and the steps of the linear warm-up from 0.
    schedule, decay_fraction : str, float
        The learning rate after the warm-up: ``constant``, ``cosine`` (to zero at the last epoch) or
        ``wsd`` (stable, then linear to zero over the last ``decay_fraction`` of the epochs).
    batch_size : int
        Training examples (one target each) per step.
    epochs, patience, eval_every : int
        At most ``epochs`` epochs, validating every ``eval_every`` of them; training stops after
        ``patience`` evaluations without a gain in validation NDCG@10.
    valid_users : int or None
        Evaluate per-epoch model selection on a fixed random subset of this many validation users (drawn
        once from the seed), for speed; none = all of them.
    beam : int
        Width of the constrained beam search: ``max(k, beam)`` for ``k`` recommendations.
    seed : int or None
        Training seed; none = the run's seed.
    device : str
        ``auto`` follows the run's device (CUDA when available, else the CPU); or a torch device.
    bf16 : bool
        bfloat16 autocast in training and decoding where the device supports it (ignored elsewhere).
    """

    uses_codes: ClassVar[bool] = True
    name: ClassVar[str] = "tiger"
    # What shapes the weights, apart from how long training runs (epochs, patience, schedule).
    weight_options: ClassVar[tuple[str, ...]] = (
        "layers_encoder", "layers_decoder", "d_model", "heads", "head_dim", "ffn", "dropout", "lr",
        "weight_decay", "warmup_steps", "batch_size", "eval_every", "valid_users", "beam",
    )  # fmt: skip

    def __init__(
        self,
        layers_encoder: int = 4,
        layers_decoder: int = 4,
        d_model: int = 128,
        heads: int = 6,
        head_dim: int = 64,
        ffn: int = 1024,
        dropout: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 200,
        schedule: Literal["constant", "cosine", "wsd"] = "constant",
        decay_fraction: float = 0.2,
        batch_size: int = 256,
        epochs: int = 100,
        patience: int = 5,
        eval_every: int = 1,
        valid_users: int | None = None,
        beam: int = 20,
        seed: int | None = None,
        device: str = "auto",
        bf16: bool = True,
    ):
        name = self.name
        require_at_least(
            name,
            1,
            layers_encoder=layers_encoder,
            layers_decoder=layers_decoder,
            d_model=d_model,
            heads=heads,
            head_dim=head_dim,
            ffn=ffn,
            batch_size=batch_size,
            epochs=epochs,
            patience=patience,
            eval_every=eval_every,
            beam=beam,
        )
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"{name} option 'dropout' must be in [0, 1), got {dropout}")
        if lr <= 0:
            raise ConfigError(f"{name} option 'lr' must be positive, got {lr}")
        if weight_decay < 0:
            raise ConfigError(f"{name} option 'weight_decay' must be non-negative, got {weight_decay}")
        check_schedule(name, schedule, decay_fraction, warmup_steps)
        if valid_users is not None and valid_users < 1:
            raise ConfigError(f"{name} option 'valid_users' must be at least 1 or None, got {valid_users}")
        self.layers_encoder, self.layers_decoder, self.d_model = layers_encoder, layers_decoder, d_model
        self.heads, self.head_dim, self.ffn, self.dropout = heads, head_dim, ffn, dropout
        self.lr, self.weight_decay, self.warmup_steps = lr, weight_decay, warmup_steps
        self.schedule, self.decay_fraction = schedule, decay_fraction
        self.batch_size, self.epochs, self.patience, self.eval_every = batch_size, epochs, patience, eval_every
        self.valid_users, self.beam, self.seed, self.device, self.bf16 = valid_users, beam, seed, device, bf16
        self.model: TigerModel | None = None
        self.trie: CodeTrie | None = None
        self.item_tokens: torch.Tensor | None = None
        self.result: TrainResult | None = None
        self.trained_items = 0  # the catalog size the model was built for (items added later come after)
        self._bf16 = False  # bf16 as resolved for the fitted device
        self.log: Callable[[str], None] | None = None  # progress lines; None = genrec's console

    def checkpoint_dir(self, data: RecData, codes: ItemCodes, aux_losses: Sequence[AuxiliaryLoss] = ()) -> Path | None:
        """Checkpoints are keyed by what shapes the weights; epochs, patience and schedule may change on resume."""
        codes_key = {"codes": digest(codes.codes.tolist()), "sizes": list(codes.codebook_sizes)}
        return self.checkpoints(data, **codes_key, aux=auxiliary_keys(aux_losses))

    def fit(self, data: RecData, codes: ItemCodes | None = None, aux_losses: Sequence[AuxiliaryLoss] = ()) -> Tiger:
        batches, loss_fn = self.prepare(data, codes, aux_losses)
        assert codes is not None and self.item_tokens is not None  # prepare checked and built them
        model, seed = self.fitted_model(), self.seed_for(data)
        valid_h, valid_t = data.split.valid_histories, data.split.valid_targets
        if self.valid_users is not None and self.valid_users < len(valid_t):
            chosen = np.sort(np.random.default_rng(seed).choice(len(valid_t), self.valid_users, replace=False))
            valid_h, valid_t = valid_h[chosen], valid_t[chosen]

        def validate() -> dict[str, float]:
            recommend = under_protocol(self.recommend, data.split.exclude_history)
            return evaluate(recommend, valid_h, valid_t, errors=True)

        config = self.train_config(self.item_tokens.device, self._bf16)
        self.result = train(
            model, batches, loss_fn, validate, config, self.checkpoint_dir(data, codes, aux_losses), log=self.log
        )
        return self

    def prepare(
        self, data: RecData, codes: ItemCodes | None, aux_losses: Sequence[AuxiliaryLoss] = ()
    ) -> tuple[Callable[[int], Iterator[Any]], Callable[[Any], torch.Tensor]]:
        """Build the (seeded) model; return ``batches(epoch)`` and ``loss_fn(batch)`` for a training loop."""
        name = self.name
        if codes is None:
            raise ConfigError(f"{name} needs item codes: run a quantizer first (the generator uses_codes)")
        if len(codes.codes) != data.n_items:
            raise ConfigError(f"{name}: {len(codes.codes)} item codes for a catalog of {data.n_items} items")
        if not any(len(sequence) > 1 for sequence in data.split.train):  # no item follows another
            raise ConfigError(f"{name}: the training split has no sequence of two or more items to learn from")
        device = self._place(data.device)
        self.trie = CodeTrie(codes.codes, codes.codebook_sizes)
        seed_everything(self.seed_for(data))
        self.trained_items = data.n_items
        model = self.build_model(codes.codebook_sizes, data.split.max_history, data.n_items)
        # The auxiliary modules live on the model so the loop trains and checkpoints them with it.
        names = [f"{index}_{re.sub(r'[^0-9A-Za-z_]', '_', aux.name)}" for index, aux in enumerate(aux_losses)]
        model.aux = nn.ModuleDict({name: aux.build(self.d_model) for name, aux in zip(names, aux_losses, strict=True)})
        model.to(device)
        self.model = model
        self.item_tokens = item_token_table(model, codes.codes)
        return self.training_batches(data, codes, model, device)

    def _place(self, run_device: str | None = None) -> torch.device:
        """The device to train or load on (``auto`` follows the run's), and whether bf16 runs there."""
        device = resolve_device(self.device, f"{self.name} option 'device'", auto=run_device)
        self._bf16 = self.bf16 and bf16_supported(device)
        return device

    def build_model(self, sizes: Sequence[int], max_history: int, n_items: int) -> TigerModel:
        return TigerModel(
            tuple(sizes), max_history, self.layers_encoder, self.layers_decoder, self.d_model, self.heads,
            self.head_dim, self.ffn, self.dropout,
        )  # fmt: skip

    def training_batches(
        self, data: RecData, codes: ItemCodes, model: TigerModel, device: torch.device
    ) -> tuple[Callable[[int], Iterator[Batch]], Callable[[Batch], torch.Tensor]]:
        """One target per sliding window: length-bucketed (history tokens, target codes, target items)."""
        assert self.item_tokens is not None
        seed = self.seed_for(data)
        histories, targets = data.split.training_examples()
        target_codes = torch.as_tensor(codes.codes, dtype=torch.long)
        lengths = history_lengths(histories)
        item_tokens_cpu = self.item_tokens.cpu()

        def batches(epoch: int) -> Iterator[Batch]:
            for index in bucketed_order(lengths, self.batch_size, seed, epoch):
                items = torch.from_numpy(trimmed(histories[index]))
                tokens = item_tokens_cpu[items].reshape(len(index), -1)
                target = torch.from_numpy(targets[index])
                yield tokens.to(device), target_codes[target - 1].to(device), target.to(device)

        def loss_fn(batch: Batch) -> torch.Tensor:
            tokens, target_code, target_items = batch
            logits, summary = model(tokens, target_code)
            return level_cross_entropy(logits, target_code) + auxiliary_loss(model, summary, target_items)

        return batches, loss_fn

    def decoder(self, cache: bool = True) -> TigerDecoder:
        """The fitted model as a :class:`genrec.decoding.CodeDecoder`."""
        model = self.fitted_model()
        assert self.item_tokens is not None
        return TigerDecoder(model, self.item_tokens, self._bf16, cache)

    def recommend(self, histories: np.ndarray, k: int, exclude_history: bool = False) -> np.ndarray:
        return self.rank(histories, k, exclude_history)[0]

    @torch.no_grad()
    def rank(self, histories: np.ndarray, k: int, exclude_history: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(users, k) item ids and their codes' log-probabilities; ``exclude_history`` never returns a history item."""
        model, trie = self.fitted_model(), self.trie
        assert trie is not None
        if not 1 <= k <= trie.n_items:
            raise ConfigError(f"{self.name}: k must be in 1..{trie.n_items} (the catalog size), got {k}")
        histories = np.asarray(histories, dtype=np.int64)
        was_training = model.training
        model.eval()
        decoder = self.decoder()
        # Users of similar history length decode together, so little padding is encoded.
        lengths = np.minimum(history_lengths(histories), model.max_history)
        order = np.argsort(lengths, kind="stable")
        ranked = np.zeros((len(histories), k), dtype=np.int64)
        scores = np.zeros((len(histories), k), dtype=np.float32)
        try:
            for chunk in decode_chunks(lengths[order]):
                rows = order[chunk]
                exclude = histories[rows] if exclude_history else None
                ranked[rows], scores[rows] = beam_search_scored(
                    decoder, histories[rows], trie, max(k, self.beam), k, exclude
                )
        finally:
            model.train(was_training)
        return ranked, scores

    def save(self, directory: Path) -> None:
        """The fitted weights (auxiliary heads left out: decoding never uses them) and the codes decoded over."""
        model, trie = self.fitted_model(), self.trie
        assert trie is not None
        directory.mkdir(parents=True, exist_ok=True)
        save_module(directory / "weights.safetensors", model, skip=("aux.",))
        save_json(
            directory / "model.json",
            {
                "codes": trie.codes.tolist(),
                "sizes": list(trie.sizes),
                "max_history": model.max_history,
                "trained_items": self.trained_items,  # the catalog the model was built for
            },
        )

    def load(self, directory: Path) -> Tiger:
        """Restore :meth:`save`'s state into this generator, built with the stage's options."""
        saved = load_json(directory / "model.json")
        codes = ItemCodes(np.asarray(saved["codes"], dtype=np.int64), tuple(saved["sizes"]))
        device = self._place()
        self.trained_items = int(saved["trained_items"])
        model = self.build_model(codes.codebook_sizes, saved["max_history"], self.trained_items)
        model.aux = nn.ModuleDict()
        self.model = load_module(directory / "weights.safetensors", model.to(device)).eval()
        self.add_items(codes)
        return self

    def item_codes(self) -> ItemCodes:
        """The codes decoded over (row ``i`` for item ``i + 1``)."""
        if self.trie is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(data, codes) first")
        return ItemCodes(self.trie.codes, self.trie.sizes)

    def add_items(self, codes: ItemCodes) -> None:
        """Decode over ``codes`` (the fitted catalog's, new items appended); new items' codes use known tokens."""
        model = self.fitted_model()
        if tuple(codes.codebook_sizes) != tuple(model.codebook_sizes):
            raise ConfigError(
                f"{self.name}: codebook sizes {codes.codebook_sizes} differ from the trained {model.codebook_sizes}"
            )
        self.trie = CodeTrie(codes.codes, codes.codebook_sizes)
        self.item_tokens = item_token_table(model, codes.codes)


def auxiliary_loss(model: nn.Module, summary: torch.Tensor, target_items: torch.Tensor) -> torch.Tensor | float:
    """The sum of the auxiliary losses (``model.aux``) for these summary states and target items."""
    return sum((module(summary, target_items) for module in model.aux.values()), 0.0)
