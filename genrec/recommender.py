"""A finished run as a product: ``genrec.load(run_dir)`` gives a :class:`Recommender`.

A run directory's ``results.json`` names the store outputs of its stages. The generator's output holds
its fitted weights, the codes it decodes over and the catalog (``items.jsonl``); the other stages keep
their components' fitted state, which places new items without retraining (:meth:`Recommender.add_items`).
Every file is checked against the sha256 its stage's manifest recorded, and weights load without pickle.

Items have two ids: the internal one (1..n, what every genrec array uses) and the dataset's own, its
*raw* id: an item's ``raw_id`` or ``asin`` field when the catalog has one, else the internal id as text.
Items added to a run are kept in ``<run dir>/added/``; they take the internal ids after the catalog's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from genrec.artifacts import atomic_directory, load_arrays, save_arrays
from genrec.contracts import ItemCodes
from genrec.errors import ConfigError, DataError
from genrec.results import upgrade_results
from genrec.saved import FITTED, ITEMS, load_fitted, verify_files, write_items

RAW_ID_FIELDS = ("raw_id", "asin")  # the dataset's own item id, the first of these the catalog carries
ADDED = "added"  # <run dir>/added/: items placed after training (items.jsonl, codes.npz)

IdKind = Literal["raw", "internal"]
NewItems = Literal["follow", "generated"]


class Scored(NamedTuple):
    item: str | int  # a raw id (str) or an internal id (int), as the histories were given
    score: float  # the generator's score: a code's total log-probability, or a dot-product logit


def raw_id_field(items: Sequence[Mapping[str, Any]]) -> str | None:
    """The field holding the dataset's own ids, when every item has it."""
    for name in RAW_ID_FIELDS:
        if items and all(item.get(name) not in (None, "") for item in items):
            return name
    return None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """A JSON-lines file of objects; a bad line is an error naming the file and line."""
    from genrec.data.format import json_object

    if not path.is_file():
        raise DataError(path, "no such file")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json_object(path, line, number) for number, line in enumerate(lines, start=1) if line.strip()]


class Recommender:
    """Next-item recommendations from a trained run; see :func:`load`."""

    def __init__(self, run_dir: Path, results: Mapping[str, Any], generator: Any, items: list[dict[str, Any]]):
        self.run_dir = run_dir
        self.results = dict(results)
        self.generator = generator
        self.trained_items = len(items)
        self._items = items
        self._field = raw_id_field(items)
        self._codes: ItemCodes | None = getattr(generator, "item_codes", lambda: None)()
        self._by_raw = {self.raw_id(i): i for i in range(1, len(items) + 1)}
        self._proxies = np.zeros(0, dtype=np.int64)  # each added item's nearest trained item
        added = run_dir / ADDED
        if (added / ITEMS).is_file():
            arrays = load_arrays(added / "codes.npz")
            self._extend(read_jsonl(added / ITEMS), arrays["codes"])
            self._proxies = arrays.get("proxy", self._proxies)

    # The catalog ---------------------------------------------------------------------------------

    @property
    def items(self) -> list[dict[str, Any]]:
        """Every item's metadata; entry ``i`` is internal id ``i + 1`` (added items last)."""
        return self._items

    @property
    def n_items(self) -> int:
        return len(self._items)

    def raw_id(self, item: int) -> str:
        record = self._items[item - 1]
        return str(record[self._field]) if self._field else str(record.get("raw_id", item))

    def internal_id(self, raw: str) -> int:
        found = self._by_raw.get(str(raw))
        if found is None:
            raise ConfigError(f"unknown item id {raw!r} (not in the catalog of run {self.run_dir})")
        return found

    def codes(self) -> ItemCodes:
        """Every item's code (row ``i`` for internal id ``i + 1``); only code generators have them."""
        if self._codes is None:
            name = self.results["config"]["stages"]["generator"]["name"]
            raise ConfigError(f"run {self.run_dir}: generator {name!r} ranks item ids and has no item codes")
        return self._codes

    # Recommending --------------------------------------------------------------------------------

    def recommend(
        self,
        histories: Sequence[Sequence[str | int]],
        k: int = 10,
        exclude_history: bool = False,
        ids: IdKind = "raw",
        new_items: NewItems = "follow",
    ) -> list[list[Scored]]:
        """The ``k`` best next items for each history (oldest item first), best first, with scores.

        ``ids="raw"`` reads and returns the dataset's own ids, ``"internal"`` genrec's 1..n.
        ``exclude_history`` never recommends an item of the user's own history.
        ``new_items``: an added item has codes the generator never learned to write, so by default
        (``"follow"``) it is also ranked right after its nearest trained item (its *proxy*, chosen when
        it was added), with that item's score, when that is higher than where the generator put it;
        ``"generated"`` leaves it to the generator alone.
        """
        if ids not in ("raw", "internal"):
            raise ConfigError(f"ids must be 'raw' or 'internal', got {ids!r}")
        if new_items not in ("follow", "generated"):
            raise ConfigError(f"new_items must be 'follow' or 'generated', got {new_items!r}")
        if not 1 <= k <= self.n_items:
            raise ConfigError(f"k must be in 1..{self.n_items} (the catalog size), got {k}")
        matrix = self._history_matrix(histories, ids)
        ranked, scores = _rank(self.generator, matrix, k, exclude_history)
        if new_items == "follow" and len(self._proxies):
            ranked, scores = _followed(ranked, scores, self._followers(), matrix if exclude_history else None)
        name = self.raw_id if ids == "raw" else int
        return [
            [Scored(name(int(i)), float(s)) for i, s in zip(row, row_scores, strict=True)]
            for row, row_scores in zip(ranked, scores, strict=True)
        ]

    def _history_matrix(self, histories: Sequence[Sequence[str | int]], ids: IdKind) -> np.ndarray:
        if isinstance(histories, str) or not isinstance(histories, Sequence):
            raise ConfigError("histories must be a list of histories, each a list of item ids")
        max_history = int(self.results["config"]["max_history"])
        matrix = np.zeros((len(histories), max_history), dtype=np.int64)
        for row, history in enumerate(histories):
            if isinstance(history, str) or len(history) == 0:
                raise ConfigError(f"history {row + 1} is empty" if len(history) == 0 else "a history must be a list")
            internal = [self._internal(item, ids) for item in history][-max_history:]
            matrix[row, max_history - len(internal) :] = internal
        return matrix

    def _internal(self, item: str | int, ids: IdKind) -> int:
        if ids == "raw":
            return self.internal_id(str(item))
        if isinstance(item, bool) or not isinstance(item, int | np.integer) or not 1 <= item <= self.n_items:
            raise ConfigError(f"unknown internal item id {item!r} (ids are 1..{self.n_items})")
        return int(item)

    # New items -----------------------------------------------------------------------------------

    def add_items(self, records: Sequence[Mapping[str, Any]], source: str = "new items") -> list[str]:
        """Place new items with the run's own embedder, fuser and quantizer; return their raw ids.

        Each record is an item in the dataset's format (its text fields), named by the catalog's raw-id
        field (or ``item_id`` when the catalog has none). Nothing is written unless every item is placed.
        """
        from genrec.codes import place_new

        named = self._new_names(records, source)
        embedder, fuser, quantizer, raw = self._placers()
        semantic = _call(embedder, "embed_new", "semantic embedder", "embed new items")(list(records))
        fused = _call(fuser, "fuse_new", "fuser", "place new items")({"semantic": semantic})
        new_raw = quantizer.encode(np.asarray(fused, dtype=np.float32))
        added_raw, codes = self._added_raw(), self.codes()
        catalog = self._fused_catalog()
        placed = place_new(np.concatenate([raw, added_raw]), codes, new_raw, _nearest(catalog, fused))
        proxies = _most_similar(catalog[: self.trained_items], fused) + 1  # ids of the nearest trained items
        # A catalog without raw ids names new items by the item_id given, kept as their raw_id.
        field = self._field or "raw_id"
        new_items = [
            {**dict(r), "item_id": self.n_items + 1 + i, field: n}
            for i, (r, n) in enumerate(zip(records, named, strict=True))
        ]
        grown = ItemCodes(np.concatenate([codes.codes, placed]), codes.codebook_sizes)
        _call(self.generator, "add_items", "generator", "place new items")(grown)  # before anything is written
        with atomic_directory(self.run_dir / ADDED) as tmp:
            write_items(tmp / ITEMS, self._items[self.trained_items :] + new_items, self.trained_items + 1)
            all_raw = np.concatenate([added_raw, placed[:, :-1]])  # the group each joined
            all_proxies = np.concatenate([self._proxies, proxies])
            save_arrays(tmp / "codes.npz", raw=all_raw, codes=grown.codes[self.trained_items :], proxy=all_proxies)
            vectors, previous = np.asarray(fused, dtype=np.float32), self.added_vectors()
            vectors = np.concatenate([previous, vectors]) if len(previous) else vectors
            save_arrays(tmp / "embeddings.npz", vectors=vectors)
        self._codes = grown
        self._proxies = all_proxies
        self._append(new_items)
        return named

    def _followers(self) -> dict[int, list[int]]:
        """Trained item -> the added items it is the proxy of, in the order they were added."""
        followers: dict[int, list[int]] = {}
        for offset, proxy in enumerate(self._proxies.tolist()):
            followers.setdefault(proxy, []).append(self.trained_items + 1 + offset)
        return followers

    def _new_names(self, records: Sequence[Mapping[str, Any]], source: str) -> list[str]:
        field = self._field or "item_id"
        names: list[str] = []
        for number, record in enumerate(records, start=1):
            if not isinstance(record, Mapping) or record.get(field) in (None, ""):
                raise DataError(Path(source), f"item {number} has no {field!r} (the catalog's item ids)", number)
            name = str(record[field])
            if name in self._by_raw or name in names:
                what = "an item of the catalog" if name in self._by_raw else "an earlier new item"
                raise DataError(Path(source), f"item id {name!r} clashes with {what}", number)
            names.append(name)
        if not names:
            raise DataError(Path(source), "no items to add")
        return names

    def _placers(self) -> tuple[Any, Any, Any, np.ndarray]:
        stages = self.results["stages"]
        missing = [s for s in ("semantic", "fuser", "quantizer") if s not in stages]
        if missing:
            raise ConfigError(f"run {self.run_dir} has no {' or '.join(missing)} stage: it cannot place new items")
        components = [load_component(self.run_dir, self.results, stage) for stage in ("semantic", "fuser", "quantizer")]
        raw = load_arrays(stage_dir(self.run_dir, self.results, "quantizer") / "codes.npz")["raw"]
        return components[0], components[1], components[2], raw

    def _fused_catalog(self) -> np.ndarray:
        """The quantized embeddings of every item, added ones included (row ``i``: item ``i + 1``)."""
        vectors = load_arrays(stage_dir(self.run_dir, self.results, "fuser") / "embeddings.npz")["vectors"]
        added = self.added_vectors()
        return np.concatenate([vectors, added]) if len(added) else vectors

    def added_vectors(self) -> np.ndarray:
        """The fused (quantized) embeddings of the items added so far, in their internal id order."""
        path = self.run_dir / ADDED / "embeddings.npz"
        return load_arrays(path)["vectors"] if path.is_file() else np.zeros((0, 0), np.float32)

    def _added_raw(self) -> np.ndarray:
        """Raw (quantizer) codes of the items added so far, (0, levels - 1) when none."""
        path = self.run_dir / ADDED / "codes.npz"
        return load_arrays(path)["raw"] if path.is_file() else np.zeros((0, self.codes().levels - 1), np.int64)

    def _extend(self, records: list[dict[str, Any]], codes: np.ndarray) -> None:
        current = self.codes()
        self._codes = ItemCodes(np.concatenate([current.codes, codes]).astype(np.int64), current.codebook_sizes)
        self.generator.add_items(self._codes)
        self._append(records)

    def _append(self, records: list[dict[str, Any]]) -> None:
        start = len(self._items)
        self._items = self._items + records
        for offset in range(len(records)):
            self._by_raw[self.raw_id(start + offset + 1)] = start + offset + 1


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def _most_similar(catalog: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Each new row's most similar catalog row (cosine), in one product."""
    return np.argmax(_unit(new) @ _unit(catalog).T, axis=1)


def _nearest(catalog: np.ndarray, new: np.ndarray):  # noqa: ANN202 - index -> catalog rows by cosine
    """For a new item whose code group is full: catalog rows by cosine similarity, nearest first."""
    unit = _unit(catalog)

    def nearest(index: int) -> np.ndarray:
        vector = new[index] / max(float(np.linalg.norm(new[index])), 1e-12)
        return np.argsort(-(unit @ vector), kind="stable")

    return nearest


def _followed(
    ranked: np.ndarray, scores: np.ndarray, followers: dict[int, list[int]], excluded: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Each ranked list with every item's followers right after it (same score), cut back to its length."""
    out_items, out_scores = np.zeros_like(ranked), np.zeros_like(scores)
    k = ranked.shape[1]
    for row, (items, row_scores) in enumerate(zip(ranked.tolist(), scores.tolist(), strict=True)):
        banned = set() if excluded is None else set(excluded[row].tolist())
        chosen: list[tuple[int, float]] = []
        seen: set[int] = set()
        for item, score in zip(items, row_scores, strict=True):
            for candidate in (item, *followers.get(item, ())):
                if candidate not in seen and candidate not in banned:
                    seen.add(candidate)
                    chosen.append((candidate, score))
        chosen = chosen[:k]
        out_items[row], out_scores[row] = [c[0] for c in chosen], [c[1] for c in chosen]
    return out_items, out_scores


def _call(component: Any, method: str, kind: str, purpose: str) -> Any:
    found = getattr(component, method, None)
    if not callable(found):
        raise ConfigError(f"{kind} {type(component).__name__!r} cannot {purpose} (it has no {method}())")
    return found


def _rank(generator: Any, histories: np.ndarray, k: int, exclude_history: bool) -> tuple[np.ndarray, np.ndarray]:
    if callable(getattr(generator, "rank", None)):
        return generator.rank(histories, k, exclude_history=exclude_history)
    if exclude_history:
        raise ConfigError(f"generator {type(generator).__name__!r} does not support exclude_history")
    ranked = generator.recommend(histories, k)
    return ranked, np.full(ranked.shape, np.nan, dtype=np.float32)


def _results(run_dir: Path) -> dict[str, Any]:
    if not run_dir.is_dir():
        raise DataError(run_dir, "no such run directory")
    path = run_dir / "results.json"
    if not path.is_file():
        raise DataError(run_dir, "not a finished run (no results.json): run its recipe to the end first")
    return upgrade_results(json.loads(path.read_text()))


def stage_dir(run_dir: Path, results: Mapping[str, Any], stage: str) -> Path:
    """Where the run's ``stage`` output lives: as recorded, or in the store beside the run directory."""
    from genrec.config import STAGE_ALIASES

    entry = results["stages"][stage]
    folders = [stage, *(old for old, new in STAGE_ALIASES.items() if new == stage)]  # a store of an earlier release
    roots = [run_dir.parent / "store", *([Path(results["store"])] if results.get("store") else [])]
    candidates = [Path(entry["path"]), *(root / folder / entry["key"] for root in roots for folder in folders)]
    for candidate in candidates:
        if (candidate / "manifest.json").is_file():
            return candidate
    raise DataError(Path(entry["path"]), f"run {run_dir}: its {stage} stage output is gone from the store")


def load_component(run_dir: Path, results: Mapping[str, Any], stage: str) -> Any:
    """The component a run's stage built, with its fitted state restored."""
    from genrec.config import KIND_OF_STAGE
    from genrec.discovery import get_registry

    directory = stage_dir(run_dir, results, stage)
    manifest = verify_files(directory)
    kind = KIND_OF_STAGE.get(stage, stage)
    component = get_registry().get(kind, manifest["component"])
    built = component.build(**component.validate(manifest["options"], where=f"{stage} {manifest['component']!r}"))
    return load_fitted(built, directory / FITTED, f"the {stage} stage of run {run_dir}")


def load(run_dir: str | Path) -> Recommender:
    """The trained generator of a finished run, ready to recommend (see :class:`Recommender`)."""
    run_dir = Path(run_dir)
    results = _results(run_dir)
    generator = load_component(run_dir, results, "generator")
    if not callable(getattr(generator, "load", None)):
        name = results["config"]["stages"]["generator"]["name"]
        raise ConfigError(f"generator {name!r} saves no fitted state (no save/load): run {run_dir} cannot be loaded")
    items = read_jsonl(stage_dir(run_dir, results, "generator") / ITEMS)
    return Recommender(run_dir, results, generator, items)
