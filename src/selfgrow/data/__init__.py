"""Datasets: registry and loading, download with checksums, splits, and per-batch transforms."""

from selfgrow.data.arrays import DatasetArrays
from selfgrow.data.download import SOURCES, download
from selfgrow.data.files import cache_root, data_root
from selfgrow.data.registry import DATASETS, DatasetSpec, available, dataset_info, get_spec, load
from selfgrow.data.split import split_dataset, stratified_split
from selfgrow.data import transforms

__all__ = [
    "DATASETS",
    "SOURCES",
    "DatasetArrays",
    "DatasetSpec",
    "available",
    "cache_root",
    "data_root",
    "dataset_info",
    "download",
    "get_spec",
    "load",
    "split_dataset",
    "stratified_split",
    "transforms",
]
