"""The ``causal`` generator: semantic IDs learned from every position of a sequence in one pass.

``tiger`` trains one target per sliding window and re-encodes the window's ``levels`` tokens per
history item each time, so a user with n items costs O(n^2) encoder tokens an epoch. Here a user's
training sequence is cut into windows (``Split.training_windows``, as SASRec trains) and one causal
pass over a window's items gives the state for every target in it; a short code decoder then writes
each target's code (see :mod:`genrec_plugins.tiger.causal_model`). The targets are the ones ``tiger``
learns, each once an epoch, at about a twentieth of the encoder work.

Everything else is ``tiger``'s: the shared training loop (checkpoints, resume, DDP, bf16, schedules),
the core's trie-constrained beam search, and auxiliary losses, which receive, for every target, the
decoder state that predicts its first code.

``item_loss`` adds SASRec's objective on the encoder state: a full-catalog cross-entropy over dense
item scores (:meth:`CausalModel.item_logits`). With ``rerank`` the generator becomes a hybrid: it
re-scores a ``rerank_beam``-wide beam by ``log p(code) + w * log p_dense(item)``, with ``w`` chosen on
the validation users once training ends (model selection during training stays purely generative).
Such a run is its own configuration, never the generative model's figure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genrec.contracts import AuxiliaryLoss, ItemCodes, RecData
from genrec.errors import ConfigError
from genrec.evaluation import rank_metrics
from genrec.saved import load_json, save_json
from genrec_plugins.tiger.batches import bucketed_order, history_lengths, trimmed
from genrec_plugins.tiger.causal_model import CausalModel
from genrec_plugins.tiger.generator import Tiger, TigerDecoder, auxiliary_loss
from genrec_plugins.tiger.model import TigerModel, level_cross_entropy

RERANK_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # the dense score's weights tried on validation
DENSE_USERS = 1024  # users per dense-scoring pass

# (history items (B, T), their code tokens (B, T, levels), target codes (B, T, levels), has target (B, T),
# target items (N,))
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class CausalDecoder(TigerDecoder):
    """TIGER's decoding (key/value cache per beam) over the causal encoder: each user's last state begins its code."""

    def start(self, histories: np.ndarray) -> dict[str, Any]:
        histories = trimmed(np.asarray(histories, dtype=np.int64)[:, -self.model.max_history :])
        ids = torch.as_tensor(histories, device=self.device)
        assert isinstance(self.model, CausalModel)
        with self._autocast():
            states, memory, sees = self.model.encode_items(self.item_tokens[ids], ids)
            memories = self.model.memories(memory)
        mask = self.model.newest_memory_mask(sees)
        return {"state": states[:, -1], "memories": memories, "mask": mask, "past": None}

    def inputs(self, state: dict[str, Any], prefixes: torch.Tensor) -> torch.Tensor:
        users, width, _ = prefixes.shape
        first = state["state"][:, None, None].expand(users, width, 1, -1)
        return torch.cat([first, self.model.tokens(self.model.code_tokens(prefixes))], dim=2)


class Causal(Tiger):
    """A causal item-level encoder over semantic-ID codes with TIGER's code decoder; trains every position.

    The options are ``tiger``'s (with other defaults) and six of its own. With ``item_ids`` the generated
    codes stay the only output; an item never seen in training keeps its small random initial id vector,
    so its codes carry it.

    Parameters
    ----------
    batch_size : int
        Training windows per step, each with up to the split's ``max_history`` (20) targets.
    item_ids : bool
        Add each history item's id embedding to its code embeddings (false: codes only, as ``tiger``);
        items added after training (``genrec items add``) get a zero id vector.
    encoder : str
        ``items``: one encoder token per history item; ``codes``: one token per code, as TIGER's encoder
        reads them, with attention causal between items and full within one (the decoder then
        cross-attends to every code token of items 0..t, and a position's state is the mean of its
        item's tokens).
    id_dropout : float
        In training, drop each history item's id vector with this probability (the item then reads as its
        codes alone): a regulariser against memorising items by id.
    item_loss : float
        Weight of a dense item objective on the encoder state, as SASRec trains: a full-catalog
        cross-entropy over ``state · v_item``, where ``v_item`` is the item's input vector (its code
        embeddings' sum plus its id vector), so the output side adds no parameters; 0 turns it off.
    rerank : bool
        A hybrid ranking (needs ``item_loss`` > 0): the beam keeps ``rerank_beam`` items, each re-scored
        by ``log p(code) + w · log p_dense(item)``, with ``w`` chosen among 0, 0.25, 0.5, 1, 2, 4, 8 on
        the validation users once training ends and saved with the model.
    rerank_beam : int
        The beam width the hybrid re-scores (at least 20).
    """

    name: ClassVar[str] = "causal"
    readout_options: ClassVar[tuple[str, ...]] = ("rerank", "rerank_beam")  # chosen and applied after training

    def __init__(
        self,
        layers_encoder: int = 2,
        layers_decoder: int = 2,
        d_model: int = 128,
        heads: int = 4,
        head_dim: int = 32,
        ffn: int = 512,
        dropout: float = 0.2,
        lr: float = 2e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 100,
        schedule: Literal["constant", "cosine", "wsd"] = "cosine",
        decay_fraction: float = 0.2,
        batch_size: int = 128,
        epochs: int = 30,
        patience: int = 30,
        eval_every: int = 1,
        valid_users: int | None = None,
        beam: int = 20,
        seed: int | None = None,
        device: str = "auto",
        bf16: bool = False,
        item_ids: bool = True,
        encoder: Literal["items", "codes"] = "items",
        id_dropout: float = 0.5,
        item_loss: float = 1.0,
        rerank: bool = False,
        rerank_beam: int = 50,
    ):
        super().__init__(
            layers_encoder, layers_decoder, d_model, heads, head_dim, ffn, dropout, lr, weight_decay,
            warmup_steps, schedule, decay_fraction, batch_size, epochs, patience, eval_every, valid_users,
            beam, seed, device, bf16,
        )  # fmt: skip
        if encoder not in ("items", "codes"):
            raise ConfigError(f"causal option 'encoder' must be 'items' or 'codes', got {encoder!r}")
        if not 0.0 <= id_dropout < 1.0:
            raise ConfigError(f"causal option 'id_dropout' must be in [0, 1), got {id_dropout}")
        if item_loss < 0:
            raise ConfigError(f"causal option 'item_loss' must be non-negative, got {item_loss}")
        if rerank and item_loss == 0:
            raise ConfigError("causal option 'rerank' needs dense scores: set 'item_loss' above 0")
        if rerank_beam < 20:
            raise ConfigError(f"causal option 'rerank_beam' must be at least 20, got {rerank_beam}")
        self.item_ids, self.encoder, self.id_dropout = item_ids, encoder, id_dropout
        self.item_loss, self.rerank, self.rerank_beam = item_loss, rerank, rerank_beam
        self.rerank_weight: float | None = None  # chosen on validation after training

    def options(self) -> dict[str, Any]:
        """Reranking is left out: it reuses the weights that the same training made."""
        shaping = {"item_ids": self.item_ids, "encoder": self.encoder, "id_dropout": self.id_dropout}
        return {**super().options(), **shaping, **({"item_loss": self.item_loss} if self.item_loss else {})}

    def build_model(self, sizes: Sequence[int], max_history: int, n_items: int) -> CausalModel:
        return CausalModel(
            tuple(sizes), max_history, self.layers_encoder, self.layers_decoder, self.d_model, self.heads,
            self.head_dim, self.ffn, self.dropout, n_items=n_items if self.item_ids else 0, encoder=self.encoder,
            id_dropout=self.id_dropout,
        )  # fmt: skip

    def fit(self, data: RecData, codes: ItemCodes | None = None, aux_losses: Sequence[AuxiliaryLoss] = ()) -> Causal:
        self.rerank_weight = None  # training validates the generative ranking
        super().fit(data, codes, aux_losses)
        if self.rerank:
            split = data.split
            self.rerank_weight = self.choose_rerank_weight(
                split.valid_histories, split.valid_targets, split.exclude_history
            )
        return self

    def choose_rerank_weight(self, histories: np.ndarray, targets: np.ndarray, exclude_history: bool) -> float:
        """The dense weight of :data:`RERANK_WEIGHTS` with the best NDCG@10 on these (validation) users."""
        found = self.rerank_ndcg(histories, targets, exclude_history)
        choice = rerank_choice(found)
        best = choice["weight"]
        if self.result is not None:
            self.result.selected["rerank"] = choice
        from genrec.console import log

        (self.log or log)(f"rerank weight {best} (valid ndcg@10 {found[best]:.4f}; generative alone {found[0.0]:.4f})")
        return best

    def rerank_ndcg(self, histories: np.ndarray, targets: np.ndarray, exclude_history: bool) -> dict[float, float]:
        """NDCG@10 of the ``rerank_beam``-wide beam re-scored with each weight of :data:`RERANK_WEIGHTS`."""
        items, scores = super().rank(histories, self.rerank_beam, exclude_history)
        dense = self.dense_scores(histories, items)

        def ndcg(weight: float) -> float:
            return rank_metrics(reranked(items, scores + weight * dense), targets, (10,))["ndcg@10"]

        return {weight: ndcg(weight) for weight in RERANK_WEIGHTS}

    @torch.no_grad()
    def dense_scores(self, histories: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(users, n) dense log-probabilities (a softmax over the catalog) of ``items`` for these histories."""
        model = self.fitted_model()
        assert isinstance(model, CausalModel) and self.item_tokens is not None
        was_training = model.training
        model.eval()
        histories = np.asarray(histories, dtype=np.int64)[:, -model.max_history :]
        out = np.zeros(items.shape, dtype=np.float32)
        try:
            vectors = model.item_vectors(self.item_tokens)
            for start in range(0, len(histories), DENSE_USERS):
                rows = slice(start, start + DENSE_USERS)
                ids = torch.as_tensor(trimmed(histories[rows]), device=self.item_tokens.device)
                states = model.encode_items(self.item_tokens[ids], ids)[0][:, -1]
                log_probs = F.log_softmax((states @ vectors.T).float(), dim=-1)
                wanted = torch.as_tensor(items[rows] - 1, device=log_probs.device)
                out[rows] = log_probs.gather(1, wanted).cpu().numpy()
        finally:
            model.train(was_training)
        return out

    def rank(self, histories: np.ndarray, k: int, exclude_history: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The generative ranking, or with ``rerank`` (once its weight is chosen) the hybrid one."""
        if self.rerank_weight is None:
            return super().rank(histories, k, exclude_history)
        items, scores = super().rank(histories, max(k, self.rerank_beam), exclude_history)
        combined = scores + self.rerank_weight * self.dense_scores(histories, items)
        order = np.argsort(-combined, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(items, order, 1), np.take_along_axis(combined, order, 1)

    def save(self, directory: Path) -> None:
        super().save(directory)
        if self.rerank_weight is not None:
            save_json(directory / "rerank.json", {"weight": self.rerank_weight})

    def load(self, directory: Path) -> Causal:
        super().load(directory)
        chosen = directory / "rerank.json"
        self.rerank_weight = float(load_json(chosen)["weight"]) if self.rerank and chosen.is_file() else None
        return self

    def add_items(self, codes: ItemCodes) -> None:
        """Also grow the item-id table: a new item's id vector is zero, so its codes alone describe it."""
        super().add_items(codes)
        model = self.fitted_model()
        assert isinstance(model, CausalModel)
        table = model.item_embedding
        if table is not None and table.num_embeddings < len(codes.codes) + 1:
            grown = nn.Embedding(len(codes.codes) + 1, table.embedding_dim, padding_idx=table.padding_idx)
            grown.to(table.weight.device)
            with torch.no_grad():
                grown.weight.zero_()
                grown.weight[: table.num_embeddings] = table.weight
            model.item_embedding = grown

    def training_batches(
        self, data: RecData, codes: ItemCodes, model: TigerModel, device: torch.device
    ) -> tuple[Callable[[int], Iterator[Batch]], Callable[[Batch], torch.Tensor]]:
        """Length-bucketed windows of every training sequence, each target position a training example."""
        assert self.item_tokens is not None
        seed = self.seed_for(data)
        inputs, targets = data.split.training_windows()
        lengths = history_lengths(inputs)
        item_tokens = self.item_tokens.cpu()
        code_table = torch.cat([torch.zeros_like(item_tokens[:1]), torch.as_tensor(codes.codes, dtype=torch.long)])

        def batches(epoch: int) -> Iterator[Batch]:
            for index in bucketed_order(lengths, self.batch_size, seed, epoch):
                window = torch.from_numpy(trimmed(inputs[index]))
                target = torch.from_numpy(targets[index][:, inputs.shape[1] - window.shape[1] :])
                has_target = target != 0
                yield (
                    window.to(device),
                    item_tokens[window].to(device),
                    code_table[target].to(device),
                    has_target.to(device),
                    target[has_target].to(device),
                )

        def loss_fn(batch: Batch) -> torch.Tensor:
            ids, items, target_codes, has_target, target_items = batch
            logits, summary, states = model(ids, items, target_codes, has_target)
            loss = level_cross_entropy(logits, target_codes[has_target]) + auxiliary_loss(model, summary, target_items)
            if self.item_loss:
                assert self.item_tokens is not None
                dense = model.item_logits(states, self.item_tokens)
                loss = loss + self.item_loss * F.cross_entropy(dense.float(), target_items - 1)
            return loss

        return batches, loss_fn

    def decoder(self, cache: bool = True) -> CausalDecoder:
        """The fitted model as a :class:`genrec.decoding.CodeDecoder`."""
        assert self.item_tokens is not None
        return CausalDecoder(self.fitted_model(), self.item_tokens, self._bf16, cache)


def rerank_choice(found: dict[float, float]) -> dict[str, Any]:
    """The weight with the best validation NDCG@10 in ``found``, and every weight's, as results record them."""
    best = max(found, key=lambda weight: found[weight])
    return {"weight": best, "valid_ndcg@10": {str(weight): round(value, 5) for weight, value in found.items()}}


def reranked(items: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``items`` (users, n) sorted by ``scores``, best first."""
    return np.take_along_axis(items, np.argsort(-scores, axis=1, kind="stable"), 1)
