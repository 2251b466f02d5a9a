"""RQ-VAE: an MLP autoencoder whose latent is quantized by residual codebooks (TIGER's quantizer).

The encoder maps an embedding to a latent; level l picks the codebook entry nearest to what levels
1..l-1 left unexplained; the decoder reconstructs the embedding from the sum of the picked entries.
Training: reconstruction loss, plus per level the codebook loss and the commitment loss (weight beta),
with gradients passed straight through the quantization. Codebooks start from residual k-means on the
initial latents; after every epoch, codes no item uses are moved onto random current residuals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from genrec.console import log
from genrec.device import resolve_device
from genrec.errors import ConfigError, require_at_least
from genrec.saved import load_json, load_module, save_json, save_module
from genrec.training import TrainConfig, TrainResult, train
from genrec_plugins.quantizers._kmeans import as_matrix, kmeans


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class RQVAEModel(nn.Module):
    def __init__(self, dim: int, hidden_dims: tuple[int, ...], latent_dim: int, levels: int, codebook_size: int):
        super().__init__()
        self.encoder = _mlp([dim, *hidden_dims, latent_dim])
        self.decoder = _mlp([latent_dim, *reversed(hidden_dims), dim])
        self.codebooks = nn.Parameter(torch.zeros(levels, codebook_size, latent_dim))

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Codes (n, levels), the summed codebook entries (n, latent), and each level's input residual."""
        residual, total = z, torch.zeros_like(z)
        codes, residuals = [], []
        for book in self.codebooks:
            residuals.append(residual)
            code = torch.cdist(residual, book).argmin(1)
            chosen = book[code]
            codes.append(code)
            total = total + chosen
            residual = residual - chosen
        return torch.stack(codes, 1), total, residuals

    def losses(self, x: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction loss and the summed codebook + commitment losses.

        Squared errors are summed over features and averaged over items, so that the loss does not
        shrink with the embedding's dimension (unit-norm text embeddings have tiny per-feature errors).
        """
        z = self.encoder(x)
        codes, _, residuals = self.quantize(z.detach())
        quant_loss = z.new_zeros(())
        # Recompute the residuals with gradients: level l's input depends on the encoder and on the
        # entries picked at earlier levels.
        residual, total = z, torch.zeros_like(z)
        for level, book in enumerate(self.codebooks):
            chosen = book[codes[:, level]]
            quant_loss = quant_loss + ((residual.detach() - chosen) ** 2).sum(1).mean()
            quant_loss = quant_loss + beta * ((residual - chosen.detach()) ** 2).sum(1).mean()
            total = total + chosen
            residual = residual - chosen.detach()
        # Straight-through: the decoder sees the quantized latent, the encoder gets the decoder's gradient.
        z_q = z + (total - z).detach()
        recon = ((self.decoder(z_q) - x) ** 2).sum(1).mean()
        return recon, quant_loss


class RQVAE:
    """Residual-quantized variational autoencoder over item embeddings (deterministic for a seed on CPU).

    Parameters
    ----------
    levels, codebook_size : int
        Residual codebooks of the latent, and the codes in each.
    latent_dim : int
        Width of the quantized latent.
    hidden_dims : tuple of int
        Encoder widths between the embedding and the latent (the decoder mirrors them).
    epochs : int
        Training epochs; the epoch with the lowest full-data loss is kept.
    lr, weight_decay : float
        AdamW.
    batch_size : int
        Items per step.
    beta : float
        Weight of the commitment loss.
    seed : int
        Seed of the initialisation and the shuffling.
    device : str
        ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    verbose : bool
        Log every epoch's loss.
    """

    def __init__(
        self,
        levels: int = 3,
        codebook_size: int = 256,
        latent_dim: int = 32,
        hidden_dims: tuple[int, ...] = (256, 128),
        epochs: int = 40,
        lr: float = 3e-3,
        batch_size: int = 256,
        beta: float = 0.25,
        weight_decay: float = 0.0,
        seed: int = 0,
        device: Literal["auto", "cpu", "cuda"] = "auto",
        verbose: bool = False,
    ):
        require_at_least(
            "rqvae",
            1,
            levels=levels,
            codebook_size=codebook_size,
            latent_dim=latent_dim,
            epochs=epochs,
            batch_size=batch_size,
        )
        if any(h < 1 for h in hidden_dims):
            raise ConfigError(f"rqvae option 'hidden_dims' must be positive sizes, got {hidden_dims}")
        if lr <= 0 or beta < 0 or seed < 0:
            raise ConfigError(f"rqvae options need lr > 0, beta >= 0, seed >= 0 (got {lr}, {beta}, {seed})")
        self.levels = levels
        self.codebook_size = codebook_size
        self.latent_dim = latent_dim
        self.hidden_dims = tuple(hidden_dims)
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.beta = beta
        self.weight_decay = weight_decay
        self.seed = seed
        self.device = device
        self.verbose = verbose
        self.model: RQVAEModel | None = None
        self.result: TrainResult | None = None

    def _device(self, run_device: str | None = None) -> torch.device:
        return resolve_device(self.device, "rqvae option 'device'", auto=run_device)

    def fit(self, embeddings: np.ndarray, *, device: str | None = None) -> RQVAE:
        """Train on ``embeddings``; ``device`` is the run's, which the option ``device="auto"`` follows."""
        device = self._device(device)
        x = torch.tensor(as_matrix(embeddings)).to(device)
        n = len(x)
        size = min(self.codebook_size, n)
        # Build under a private seed so that fitting neither depends on nor disturbs the global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = RQVAEModel(x.shape[1], self.hidden_dims, self.latent_dim, self.levels, size).to(device)
        rng = np.random.default_rng([self.seed, 1])
        self._init_codebooks(model, x, rng)

        def batches(epoch: int):
            order = torch.from_numpy(np.random.default_rng([self.seed, 2, epoch]).permutation(n)).to(device)
            for start in range(0, n, self.batch_size):
                yield x[order[start : start + self.batch_size]]

        def loss_fn(batch: torch.Tensor) -> torch.Tensor:
            recon, quant = model.losses(batch, self.beta)
            return recon + quant

        def validate() -> dict[str, float]:
            dead = self._reset_dead_codes(model, x, rng)
            recon, quant = model.losses(x, self.beta)
            return {"score": -float(recon + quant), "recon": float(recon), "dead_codes": dead}

        config = TrainConfig(
            epochs=self.epochs,
            lr=self.lr,
            weight_decay=self.weight_decay,
            patience=self.epochs,
            monitor="score",
            device=str(device),
        )
        self.result = train(model, batches, loss_fn, validate, config, log=log if self.verbose else _quiet)
        self.model = model
        best = self.result.best_metrics
        log(
            f"rqvae: {self.result.epochs_run} epochs in {self.result.seconds:.1f}s, best epoch "
            f"{self.result.best_epoch + 1}, reconstruction {best.get('recon', float('nan')):.4f}"
        )
        return self

    @torch.no_grad()
    def _init_codebooks(self, model: RQVAEModel, x: torch.Tensor, rng: np.random.Generator) -> None:
        """Residual k-means on the initial latents; a level short of distinct residuals repeats some."""
        residual = model.encoder(x).cpu().numpy()
        size = model.codebooks.shape[1]
        for level in range(self.levels):
            centroids, labels = kmeans(residual, size, seed=[self.seed, 3, level], max_iter=20)
            if len(centroids) < size:
                extra = residual[rng.choice(len(residual), size - len(centroids))]
                centroids = np.concatenate([centroids, extra])
            model.codebooks[level] = torch.from_numpy(centroids).to(model.codebooks)
            residual = residual - centroids[labels]

    @torch.no_grad()
    def _reset_dead_codes(self, model: RQVAEModel, x: torch.Tensor, rng: np.random.Generator) -> int:
        """Move every code no item uses onto a random current residual of its level; return how many."""
        residual = model.encoder(x)
        dead_total = 0
        for book in model.codebooks:
            code = torch.cdist(residual, book).argmin(1)
            dead = torch.nonzero(torch.bincount(code, minlength=len(book)) == 0).flatten()
            if len(dead):
                rows = rng.choice(len(residual), len(dead), replace=len(dead) > len(residual))
                book[dead] = residual[torch.from_numpy(rows).to(residual.device)]
                code = torch.cdist(residual, book).argmin(1)
                dead_total += len(dead)
            residual = residual - book[code]
        return dead_total

    @torch.no_grad()
    def encode(self, embeddings: np.ndarray) -> np.ndarray:
        model = self._fitted()
        x = torch.tensor(as_matrix(embeddings)).to(model.codebooks.device)
        codes = [model.quantize(model.encoder(chunk))[0] for chunk in x.split(8192)]
        return torch.cat(codes).cpu().numpy().astype(np.int64)

    @torch.no_grad()
    def reconstruct(self, embeddings: np.ndarray) -> np.ndarray:
        """Embeddings decoded from their quantized latents."""
        model = self._fitted()
        x = torch.tensor(as_matrix(embeddings)).to(model.codebooks.device)
        return model.decoder(model.quantize(model.encoder(x))[1]).cpu().numpy()

    def save(self, directory: Path) -> None:
        model = self._fitted()
        save_module(directory / "weights.safetensors", model)
        save_json(directory / "model.json", {"dim": model.encoder[0].in_features, "size": model.codebooks.shape[1]})

    def load(self, directory: Path) -> RQVAE:
        saved = load_json(directory / "model.json")
        model = RQVAEModel(saved["dim"], self.hidden_dims, self.latent_dim, self.levels, saved["size"])
        self.model = load_module(directory / "weights.safetensors", model.to(self._device())).eval()
        return self

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        if self.model is None:
            return (self.codebook_size,) * self.levels
        return (int(self.model.codebooks.shape[1]),) * self.levels

    def _fitted(self) -> RQVAEModel:
        if self.model is None:
            raise RuntimeError("call fit before encode")
        return self.model


def _quiet(message: str) -> None:
    """Per-epoch lines are dropped unless verbose; fit logs one summary line."""
