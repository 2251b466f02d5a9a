"""``prorec-align``: PRORec's first stage, cross-modality knowledge alignment.

A sequential collaborative model (SASRec by default, a DIN-style target-attention model as the option)
learns item ID embeddings ``E_C`` on next-item prediction while an in-batch InfoNCE loss pulls each item's
``E_C[i]`` towards its adapted semantic embedding ``A(E_S[i])``:

    L1 = L_next_item + align_weight * L_infonce

The items aligned at each step are, by default, the distinct items of the training batch (its targets and
its history items), so every step contrasts a few thousand items that co-occur in real sequences; with
``align_items="uniform"`` the same number of items is drawn uniformly from the whole catalogue instead,
which also reaches items seen rarely in training. Model selection is by validation NDCG@10 of the
collaborative model's own full-catalogue next-item ranking.

The collaborative model's defaults (dimension 64, 2 layers, 2 heads, dropout 0.3, AdamW lr 2e-3, batch
64, patience 5) are those of the ``sasrec`` generator, chosen on Beauty validation: with
``align_weight=0`` it trains a model like the baselines' ``collaborative`` source, with the same settings.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genrec.contracts import ItemEmbeddings, RecData
from genrec.device import resolve_device
from genrec.errors import ConfigError
from genrec.evaluation import rank_metrics
from genrec.saved import load_json, load_module, save_json, save_module
from genrec.trained import TrainedComponent, shuffled_batches, top_items
from genrec.training import TrainResult, check_schedule, seed_everything, train
from genrec_plugins.prorec.adaptation import AdaptationLayer
from genrec_plugins.prorec.losses import info_nce

DIN_NEGATIVES = 1024  # uniformly sampled negatives per training batch of the DIN-style model
SCORE_CHUNK = 2048  # candidate items scored at once by the DIN-style model


class TargetAttention(nn.Module):
    """A DIN-style model: the user's interest is pooled from the history with attention to the target.

    For a candidate item ``v`` and history items ``h_1..h_L`` (with a recency position embedding),
    ``score(v) = sum_j softmax_j(q(v) . k(h_j) / sqrt(d)) * (o(h_j) . e_v) + b_v``: DIN's target
    attention with a dot-product attention unit instead of DIN's MLP unit, so that the whole catalogue can
    be ranked in one batched product. It trains with a sampled softmax over the batch's targets plus
    ``DIN_NEGATIVES`` uniform negatives, and ranks the full catalogue at validation.
    """

    def __init__(self, n_items: int, dim: int = 64, dropout: float = 0.3, max_len: int = 20):
        super().__init__()
        self.n_items = n_items
        self.item_embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.position = nn.Embedding(max_len, dim)
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.item_bias = nn.Embedding(n_items + 1, 1)
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.item_embedding.weight, std=dim**-0.5)
        nn.init.normal_(self.position.weight, std=dim**-0.5)
        nn.init.zeros_(self.item_bias.weight)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def score(self, histories: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """(B, L) histories, (C,) candidate ids -> (B, C) scores."""
        histories = histories[:, -len(self.position.weight) :]
        mask = histories > 0
        length = histories.shape[1]
        positions = self.position.weight[-length:]  # the most recent item gets the last position
        states = self.dropout(self.item_embedding(histories) + positions) * mask.unsqueeze(-1)
        targets = self.item_embedding(candidates)
        attention = torch.einsum("bld,cd->bcl", self.key(states), self.query(targets)) / math.sqrt(targets.shape[1])
        attention = attention.masked_fill(~mask.unsqueeze(1), -1e4).softmax(-1) * mask.unsqueeze(1)
        agreement = torch.einsum("bld,cd->bcl", self.value(states), targets)
        return (attention * agreement).sum(-1) + self.item_bias(candidates).squeeze(-1)

    def next_item_loss(self, histories: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        negatives = torch.randint(1, self.n_items + 1, (DIN_NEGATIVES,), device=targets.device)
        candidates, inverse = torch.unique(torch.cat([targets, negatives]), return_inverse=True)
        return F.cross_entropy(self.score(histories, candidates), inverse[: len(targets)])

    def full_scores(self, histories: torch.Tensor) -> torch.Tensor:
        """(B, n_items + 1) scores, column 0 (padding) included."""
        items = torch.arange(self.n_items + 1, device=histories.device)
        chunks = [items[start : start + SCORE_CHUNK] for start in range(0, len(items), SCORE_CHUNK)]
        return torch.cat([self.score(histories, chunk) for chunk in chunks], 1)


class AlignmentModel(nn.Module):
    """The collaborative model, the adaptation layer, and the (fixed) semantic embeddings."""

    def __init__(self, collaborative: nn.Module, semantic: np.ndarray, dim: int):
        super().__init__()
        self.collaborative = collaborative
        self.adapter = AdaptationLayer(semantic.shape[1], dim)
        padded = np.concatenate([np.zeros((1, semantic.shape[1]), np.float32), semantic.astype(np.float32)])
        # Not persistent: the inputs are rebuilt from the fuser's input, not stored in every checkpoint.
        self.register_buffer("semantic", torch.from_numpy(padded), persistent=False)

    def adapted(self, items: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.semantic[items])

    def full_scores(self, histories: torch.Tensor) -> torch.Tensor:
        model = self.collaborative
        if hasattr(model, "full_scores"):
            return model.full_scores(histories)
        return model.logits(model.encode(histories))


class ProrecAlign(TrainedComponent):
    """PRORec stage 1: jointly train a collaborative model and align it with adapted text embeddings.

    Parameters
    ----------
    dim : int
        Embedding size of the collaborative ``E_C`` and of the adapted semantic ``A(E_S)``.
    layers : int
        SASRec transformer blocks (the ``din`` model has none).
    heads : int
        SASRec attention heads (``dim`` must be divisible by it; unused by ``din``).
    dropout : float
        Dropout of the collaborative model.
    lr : float
        AdamW learning rate.
    weight_decay : float
        AdamW weight decay.
    batch_size : int
        Training windows (SASRec) or examples (DIN) per step.
    epochs : int
        Upper bound on epochs.
    patience : int
        Epochs without validation NDCG@10 improvement before stopping.
    warmup_steps, schedule, decay_fraction : int, str, float
        The shared loop's learning-rate schedule, as for ``tiger``: a linear warm-up over ``warmup_steps``,
        then ``constant``, ``cosine`` or ``wsd`` (``decay_fraction`` is ``wsd``'s share of the epochs).
    temperature : float
        InfoNCE temperature ``tau``.
    align_weight : float
        ``lambda``, the weight of the alignment loss; 0 = the "no alignment" ablation (plain collaborative
        training; the adaptation layer then stays untrained, so the ``semantic`` view is a fixed random
        projection of ``E_S`` followed by LN).
    align_items : str
        The items aligned at each step: ``batch``, the distinct items of the training batch (its targets
        and history items); ``uniform``, as many distinct items drawn uniformly from the whole catalogue.
    integrated : str
        The vectors to quantize: ``collaborative``, the aligned ``E_C``; ``normalized``, ``E_C/‖E_C‖``;
        ``concat``, ``[E_C/‖E_C‖, A(E_S)/‖A(E_S)‖] / sqrt(2)`` (unit rows).
    collaborative_model : str
        ``sasrec`` (trained like the ``sasrec`` generator) or ``din`` (a DIN-style target-attention model).
    unseen_items : str
        Items no training sequence has: ``adapted`` places them as new items are placed (the unit adapted
        text embedding ``A(E_S)`` times the trained collaborative rows' mean length), in the integrated
        vectors and the collaborative teacher; ``trained`` keeps their collaborative rows, which never
        trained on a target and so collapse together.
    seed : int or None
        Training seed; none = the run's seed.
    device : str
        ``auto`` follows the run's device (CUDA when available, else the CPU); or any torch device.
    """

    requires: ClassVar[tuple[str, ...]] = ("semantic",)
    name: ClassVar[str] = "prorec-align"
    # The options that shape the trained weights (not epochs, patience, schedule or device).
    weight_options: ClassVar[tuple[str, ...]] = (
        "dim", "layers", "heads", "dropout", "lr", "weight_decay", "batch_size", "warmup_steps",
        "temperature", "align_weight", "align_items", "collaborative_model",
    )  # fmt: skip
    # How the trained model becomes the vectors to quantize: runs that differ only here train once.
    readout_options: ClassVar[tuple[str, ...]] = ("integrated", "unseen_items")

    def __init__(
        self,
        dim: int = 64,
        layers: int = 2,
        heads: int = 2,
        dropout: float = 0.3,
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        epochs: int = 200,
        patience: int = 5,
        warmup_steps: int = 0,
        schedule: Literal["constant", "cosine", "wsd"] = "constant",
        decay_fraction: float = 0.2,
        temperature: float = 0.1,
        align_weight: float = 0.1,
        align_items: Literal["batch", "uniform"] = "batch",
        integrated: Literal["collaborative", "normalized", "concat"] = "collaborative",
        collaborative_model: Literal["sasrec", "din"] = "sasrec",
        unseen_items: Literal["adapted", "trained"] = "adapted",
        seed: int | None = None,
        device: str = "auto",
    ):
        checks = {
            "dim": dim > 0,
            "layers": layers > 0,
            "heads": heads > 0 and dim % heads == 0,
            "dropout": 0 <= dropout < 1,
            "lr": lr > 0,
            "weight_decay": weight_decay >= 0,
            "batch_size": batch_size > 0,
            "epochs": epochs > 0,
            "patience": patience > 0,
            "temperature": temperature > 0,
            "align_weight": align_weight >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                hint = f" (dim={dim} must be divisible by heads)" if name == "heads" else ""
                raise ConfigError(f"fuser 'prorec-align': bad value for option {name!r}: {locals()[name]!r}{hint}")
        for name, value, choices in (
            ("align_items", align_items, ("batch", "uniform")),
            ("integrated", integrated, ("collaborative", "normalized", "concat")),
            ("collaborative_model", collaborative_model, ("sasrec", "din")),
            ("unseen_items", unseen_items, ("adapted", "trained")),
        ):
            if value not in choices:
                raise ConfigError(f"fuser 'prorec-align': option {name!r} must be one of {choices}, got {value!r}")
        check_schedule("fuser 'prorec-align'", schedule, decay_fraction, warmup_steps)
        self.dim, self.layers, self.heads, self.dropout = dim, layers, heads, dropout
        self.lr, self.weight_decay, self.batch_size = lr, weight_decay, batch_size
        self.epochs, self.patience = epochs, patience
        self.warmup_steps, self.schedule, self.decay_fraction = warmup_steps, schedule, decay_fraction
        self.temperature, self.align_weight, self.align_items = temperature, align_weight, align_items
        self.integrated, self.collaborative_model, self.unseen_items = integrated, collaborative_model, unseen_items
        self.seed, self.device = seed, device
        self.model: AlignmentModel | None = None
        self.adapter: AdaptationLayer | None = None  # what places new items, after fuse() or load()
        self.collaborative_norm = 1.0
        self.result: TrainResult | None = None
        self.log: Callable[[str], None] | None = None  # progress lines; None = the run's console

    def _build_collaborative(self, n_items: int, max_len: int) -> nn.Module:
        if self.collaborative_model == "din":
            return TargetAttention(n_items, self.dim, self.dropout, max_len)
        from genrec_plugins.sasrec.model import SASRec  # the sasrec plugin's public model

        return SASRec(n_items, self.dim, self.layers, self.heads, self.dropout, max_len)

    def _training_data(self, data: RecData) -> tuple[np.ndarray, np.ndarray]:
        if self.collaborative_model == "din":
            return data.split.training_examples()  # one target per history

        return data.split.training_windows()  # every position predicts

    def _alignment_items(self, histories: torch.Tensor, targets: torch.Tensor, n_items: int) -> torch.Tensor:
        items = torch.unique(torch.cat([targets[targets > 0], histories[histories > 0]]))
        if self.align_items == "uniform":
            items = torch.randperm(n_items, device=targets.device)[: len(items)] + 1
        return items

    def fuse(self, data: RecData, embeddings: Mapping[str, ItemEmbeddings]) -> ItemEmbeddings:
        if "semantic" not in embeddings:
            raise ConfigError("fuser 'prorec-align' needs semantic embeddings (configure a semantic embedder)")
        semantic = np.asarray(embeddings["semantic"].vectors, dtype=np.float32)
        n_items = data.n_items
        if semantic.shape[0] != n_items:
            raise ConfigError(
                f"fuser 'prorec-align': the semantic embeddings have {semantic.shape[0]} rows for {n_items} items"
            )
        if not np.isfinite(semantic).all():
            raise ConfigError("fuser 'prorec-align': the semantic embeddings contain NaN or infinity")
        if len(data.split.valid_targets) == 0:
            raise ConfigError("fuser 'prorec-align': no validation users (sequences of 3+ items) to select on")
        device = resolve_device(self.device, "fuser 'prorec-align' option 'device'", auto=data.device)
        seed = self.seed_for(data)
        inputs, targets = self._training_data(data)
        if len(inputs) == 0:
            raise ConfigError("fuser 'prorec-align': no training sequence of two or more items to learn from")

        seed_everything(seed)
        model = AlignmentModel(self._build_collaborative(n_items, data.split.max_history), semantic, self.dim)
        model.to(device)
        self.model = model
        valid_histories = torch.from_numpy(data.split.valid_histories).to(device)

        def loss_fn(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            history, target = batch
            loss = model.collaborative.next_item_loss(history, target)
            if self.align_weight > 0:
                items = self._alignment_items(history, target, n_items)
                collaborative = model.collaborative.item_embedding(items)
                loss = loss + self.align_weight * info_nce(collaborative, model.adapted(items), self.temperature)
            return loss

        def validate() -> dict[str, float]:
            ranked = []
            for start in range(0, len(valid_histories), 1024):
                scores = model.full_scores(valid_histories[start : start + 1024])
                ranked.append(top_items(scores, min(20, n_items))[0])
            return rank_metrics(np.concatenate(ranked), data.split.valid_targets, ks=_ks(n_items))

        self.result = train(
            model,
            lambda epoch: shuffled_batches(inputs, targets, self.batch_size, seed, epoch, device),
            loss_fn,
            validate,
            self.train_config(device),
            checkpoint_dir=self._checkpoint_dir(data, semantic),
            log=self.log,  # None: the shared loop's console log, like every other training stage
        )
        seen = np.zeros(n_items + 1, dtype=bool)
        seen[np.concatenate(data.split.train)] = True
        return self._integrated(model, unseen=np.flatnonzero(~seen[1:]))

    def save(self, directory: Path) -> None:
        """The adaptation layer, and the collaborative vectors' mean length (new items are scaled to it)."""
        adapter = self._adapter()
        save_module(directory / "adapter.safetensors", adapter)
        save_json(
            directory / "adapter.json",
            {"in_dim": adapter.project.in_features, "collaborative_norm": self.collaborative_norm},
        )

    def load(self, directory: Path) -> ProrecAlign:
        saved = load_json(directory / "adapter.json")
        adapter = AdaptationLayer(saved["in_dim"], self.dim)
        self.adapter = load_module(directory / "adapter.safetensors", adapter).eval()
        self.collaborative_norm = float(saved["collaborative_norm"])
        return self

    @torch.no_grad()
    def fuse_new(self, embeddings: Mapping[str, np.ndarray]) -> np.ndarray:
        """New items have no interactions: their adapted text embedding stands in for the collaborative one."""
        adapter = self._adapter().eval()
        semantic = torch.from_numpy(np.asarray(embeddings["semantic"], dtype=np.float32))
        adapted = F.normalize(adapter(semantic.to(next(adapter.parameters()).device)).float().cpu(), dim=1)
        if self.integrated == "concat":
            vectors = torch.cat([adapted, adapted], 1) / math.sqrt(2)
        elif self.integrated == "normalized":
            vectors = adapted
        else:
            vectors = adapted * self.collaborative_norm
        return vectors.numpy().astype(np.float32)

    def _adapter(self) -> AdaptationLayer:
        if self.adapter is None:
            raise RuntimeError("ProrecAlign is not fitted: call fuse(data, embeddings) or load(directory) first")
        return self.adapter

    def _checkpoint_dir(self, data: RecData, semantic: np.ndarray) -> Path | None:
        # A run resumes only from a checkpoint of the same options, data and semantic input.
        return self.checkpoints(
            data, semantic=hashlib.sha256(np.ascontiguousarray(semantic).tobytes()).hexdigest()[:16]
        )

    def _integrated(self, model: AlignmentModel, unseen: np.ndarray) -> ItemEmbeddings:
        """The vectors to quantize and the teachers; ``unseen`` rows (items no training sequence has)
        are placed as new items are, when ``unseen_items="adapted"``: their collaborative vectors never
        trained, so the next-item loss alone has moved them, all alike."""
        model.eval()
        with torch.no_grad():
            collaborative = model.collaborative.item_embedding.weight[1:].detach().float()
            items = torch.arange(1, len(model.semantic), device=model.semantic.device)
            adapted = torch.cat([model.adapted(items[s : s + 4096]).float() for s in range(0, len(items), 4096)])
        seen = np.ones(len(collaborative), dtype=bool)
        seen[unseen] = False
        self.adapter = model.adapter
        self.collaborative_norm = float(
            collaborative[torch.from_numpy(seen).to(collaborative.device)].norm(dim=1).mean()
        )
        if self.unseen_items == "adapted" and len(unseen):
            rows = torch.from_numpy(unseen).to(collaborative.device)
            collaborative = collaborative.clone()
            collaborative[rows] = F.normalize(adapted[rows], dim=1) * self.collaborative_norm
        if self.integrated == "concat":
            vectors = torch.cat([F.normalize(collaborative, dim=1), F.normalize(adapted, dim=1)], 1) / math.sqrt(2)
        elif self.integrated == "normalized":  # directions only: what the cosine alignment shapes
            vectors = F.normalize(collaborative, dim=1)
        else:
            vectors = collaborative

        def as_numpy(tensor: torch.Tensor) -> np.ndarray:
            return tensor.detach().cpu().numpy().astype(np.float32)

        return ItemEmbeddings(
            vectors=as_numpy(vectors),
            modality="fused",
            views={"collaborative": as_numpy(collaborative), "semantic": as_numpy(adapted)},
        )


def _ks(n_items: int) -> tuple[int, ...]:
    """The protocol's cut-offs that a catalogue this small can fill (tiny test data has < 20 items)."""
    return tuple(k for k in (5, 10, 20) if k <= n_items) or (n_items,)
