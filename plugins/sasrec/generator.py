"""The ``sasrec`` generator: the tuned item-id baseline, ranking the full catalog by SASRec scores.

It trains per position (every prefix of a training sequence predicts its next item, one causal pass
per window) with the shared training loop: early stopping on validation NDCG@10, and checkpoints under
``data.workdir/sasrec/<key>`` so a killed run resumes. The key hashes everything that shapes the
trained weights except ``epochs`` and ``patience`` (raising them continues a finished run) and the
device and precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import nn

from genrec.contracts import AuxiliaryLoss, ItemCodes, RecData, auxiliary_keys
from genrec.device import resolve_device
from genrec.errors import ConfigError, require_at_least
from genrec.evaluation import evaluate, under_protocol
from genrec.saved import load_json, load_module, save_json, save_module
from genrec.trained import TrainedComponent, shuffled_batches, top_items
from genrec.training import TrainResult, check_schedule, seed_everything, train
from genrec_plugins.sasrec.model import SASRec, full_softmax_loss, sampled_bce_loss


class SASRecGenerator(TrainedComponent):
    """SASRec over item ids (no codes): full-softmax next-item training, full-catalog top-k.

    The defaults are the configuration validated on Amazon Beauty (validation NDCG@10 0.0524 at the
    best epoch, 11; see docs/components/sasrec.md).

    Parameters
    ----------
    dim, layers, heads : int
        Width of the item embeddings and states, transformer blocks, attention heads (``dim`` must be
        divisible by ``heads``).
    dropout : float
        Dropout on the embeddings, the attention and the feed-forward layers.
    max_len : int or None
        The most recent items of a history the model reads; none = the split's ``max_history`` (20).
    loss : str
        ``ce``: full softmax over the catalogue; ``bce``: the original SASRec objective, with one
        uniformly sampled negative per target.
    lr, weight_decay : float
        AdamW.
    batch_size : int
        Training windows per step (each up to ``max_len`` inputs, every position a target).
    epochs, patience : int
        At most ``epochs`` epochs, with early stopping after ``patience`` epochs without a gain in
        validation NDCG@10 (the best epoch is restored).
    warmup_steps, schedule, decay_fraction : int, str, float
        The shared loop's learning-rate schedule, as for ``tiger``: a linear warm-up over ``warmup_steps``,
        then ``constant``, ``cosine`` or ``wsd`` (``decay_fraction`` is ``wsd``'s share of the epochs).
    seed : int or None
        Training seed; none = the run's seed.
    device : str
        ``auto`` follows the run's device (CUDA when available, else the CPU); or a torch device.
    bf16 : bool
        bfloat16 autocast (also fast on CPUs with AVX512-BF16).
    """

    uses_codes: ClassVar[bool] = False
    name: ClassVar[str] = "sasrec"
    weight_options: ClassVar[tuple[str, ...]] = (
        "dim", "layers", "heads", "dropout", "max_len", "loss", "lr", "weight_decay", "batch_size", "warmup_steps",
    )  # fmt: skip

    def __init__(
        self,
        dim: int = 64,
        layers: int = 2,
        heads: int = 2,
        dropout: float = 0.3,
        max_len: int | None = None,
        loss: Literal["ce", "bce"] = "ce",
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        epochs: int = 200,
        patience: int = 5,
        warmup_steps: int = 0,
        schedule: Literal["constant", "cosine", "wsd"] = "constant",
        decay_fraction: float = 0.2,
        seed: int | None = None,
        device: str = "auto",
        bf16: bool = False,
    ):
        require_at_least(
            "sasrec", 1, dim=dim, layers=layers, heads=heads, batch_size=batch_size, epochs=epochs, patience=patience
        )
        if dim % heads:
            raise ConfigError(f"sasrec option 'dim' ({dim}) must be divisible by 'heads' ({heads})")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"sasrec option 'dropout' must be in [0, 1), got {dropout}")
        if max_len is not None and max_len < 1:
            raise ConfigError(f"sasrec option 'max_len' must be at least 1, got {max_len}")
        if loss not in ("ce", "bce"):
            raise ConfigError(f"sasrec option 'loss' must be 'ce' or 'bce', got {loss!r}")
        self.dim, self.layers, self.heads, self.dropout, self.max_len = dim, layers, heads, dropout, max_len
        check_schedule("sasrec", schedule, decay_fraction, warmup_steps)
        self.loss, self.lr, self.weight_decay, self.batch_size = loss, lr, weight_decay, batch_size
        self.warmup_steps, self.schedule, self.decay_fraction = warmup_steps, schedule, decay_fraction
        self.epochs, self.patience, self.seed, self.device, self.bf16 = epochs, patience, seed, device, bf16
        self.model: SASRec | None = None
        self.result: TrainResult | None = None

    def checkpoint_dir(self, data: RecData, aux_losses: Sequence[AuxiliaryLoss] = ()) -> Path | None:
        return self.checkpoints(data, n_items=data.n_items, aux=auxiliary_keys(aux_losses))

    def fit(
        self, data: RecData, codes: ItemCodes | None = None, aux_losses: Sequence[AuxiliaryLoss] = ()
    ) -> SASRecGenerator:
        seed = self.seed_for(data)
        device = resolve_device(self.device, "sasrec option 'device'", auto=data.device)
        max_len = self.max_len or data.split.max_history
        inputs, targets = data.split.training_windows(max_len)
        if len(inputs) == 0:
            raise ConfigError("sasrec: the training split has no sequence of two or more items to learn from")
        seed_everything(seed)
        model = SASRec(data.n_items, self.dim, self.layers, self.heads, self.dropout, max_len)
        aux_modules = nn.ModuleList(aux.build(self.dim) for aux in aux_losses)
        # One module holds both so the loop trains and checkpoints the auxiliary parameters too.
        trained = nn.ModuleDict({"model": model, "aux": aux_modules}).to(device)
        self.model = model
        main_loss = full_softmax_loss if self.loss == "ce" else sampled_bce_loss

        def loss_fn(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            states, items = model.target_states(*batch)
            loss = main_loss(model, states, items)
            for module in aux_modules:
                loss = loss + module(states, items)
            return loss

        def validate() -> dict[str, float]:
            recommend = under_protocol(self.recommend, data.split.exclude_history)
            return evaluate(recommend, data.split.valid_histories, data.split.valid_targets)

        self.result = train(
            trained,
            lambda epoch: shuffled_batches(inputs, targets, self.batch_size, seed, epoch, device),
            loss_fn,
            validate,
            self.train_config(device, self.bf16),
            checkpoint_dir=self.checkpoint_dir(data, aux_losses),
            log=self.log,
        )
        return self

    @torch.no_grad()
    def scores(self, histories: np.ndarray) -> torch.Tensor:
        """(users, L) histories -> (users, n_items + 1) scores, padding column at -inf."""
        model = self.fitted_model()
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        try:
            tensor = torch.as_tensor(np.asarray(histories, dtype=np.int64), device=device)
            logits = model.logits(model.encode(tensor)).float()
        finally:
            model.train(was_training)
        logits[:, 0] = float("-inf")
        return logits

    def recommend(self, histories: np.ndarray, k: int, exclude_history: bool = False) -> np.ndarray:
        return self.rank(histories, k, exclude_history)[0]

    def rank(self, histories: np.ndarray, k: int, exclude_history: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(users, k) item ids and their scores; ``exclude_history`` masks each user's history items."""
        model = self.fitted_model()
        histories = np.asarray(histories, dtype=np.int64)
        if not 1 <= k <= model.n_items:
            raise ConfigError(f"sasrec: k must be in 1..{model.n_items} (the catalog size), got {k}")
        items, scores = [], []
        for start in range(0, len(histories), 1024):
            chunk = histories[start : start + 1024]
            top, values = top_items(self.scores(chunk), k, chunk if exclude_history else None)
            items.append(top)
            scores.append(values)
        if not items:
            return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
        return np.concatenate(items), np.concatenate(scores)

    def save(self, directory: Path) -> None:
        model = self.fitted_model()
        directory.mkdir(parents=True, exist_ok=True)
        save_module(directory / "weights.safetensors", model)
        save_json(directory / "model.json", {"n_items": model.n_items, "max_len": model.max_len})

    def load(self, directory: Path) -> SASRecGenerator:
        saved = load_json(directory / "model.json")
        device = resolve_device(self.device, "sasrec option 'device'")
        model = SASRec(saved["n_items"], self.dim, self.layers, self.heads, self.dropout, saved["max_len"])
        self.model = load_module(directory / "weights.safetensors", model.to(device)).eval()
        return self

    def add_items(self, codes: ItemCodes) -> None:
        raise ConfigError("generator 'sasrec' ranks the item ids it was trained on: it cannot place new items")
