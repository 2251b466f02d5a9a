"""Datasets: the documented on-disk format, the built-in datasets, and their resolution by name."""

from genrec.data.dataset import Dataset
from genrec.data.format import read_dataset
from genrec.data.resolve import load_dataset, resolve_dataset_dir

__all__ = ["Dataset", "load_dataset", "read_dataset", "resolve_dataset_dir"]
