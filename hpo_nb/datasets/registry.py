"""Named datasets: the registry ``Experiment(dataset=name)`` and workers resolve, and user
datasets attached to this process."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

from ..errors import ConfigError
from .dataset import Dataset, Modality



@dataclass(frozen=True)
class DatasetInfo:
    name: str
    modality: Modality
    num_classes: int
    input_shape: tuple[int, ...]
    description: str
    needs_network: bool
    loader: Callable[[], Dataset] = field(repr=False, compare=False)


_REGISTRY: dict[str, DatasetInfo] = {}
_USER: dict[str, Dataset] = {}
_LOAD_LOCK = threading.Lock()


def register(info: DatasetInfo) -> None:
    """Register a named dataset loader (what ``Experiment(dataset=name)`` and workers resolve)."""
    _REGISTRY[info.name] = info


def names() -> list[str]:
    """Registered dataset names."""
    return sorted(_REGISTRY)


def info(name: str) -> DatasetInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown dataset {name!r}. Registered: {', '.join(names())}. "
            "For your own data use hpo_nb.datasets.from_arrays(x, y)."
        ) from None


def load(name_or_dataset: str | Dataset) -> Dataset:
    """Resolve a name (registered, or a Dataset object registered in this process) to data."""
    if isinstance(name_or_dataset, Dataset):
        return name_or_dataset
    if not isinstance(name_or_dataset, str):
        raise ConfigError(
            f"dataset must be a registered name or a Dataset, not {type(name_or_dataset).__name__}. "
            "Wrap arrays with hpo_nb.datasets.from_arrays(x, y)."
        )
    if name_or_dataset in _USER:
        return _USER[name_or_dataset]
    meta = info(name_or_dataset)
    with _LOAD_LOCK:
        return _load_cached(meta.name)


@lru_cache(maxsize=8)
def _load_cached(name: str) -> Dataset:
    return _REGISTRY[name].loader()


def attach(dataset: Dataset) -> str:
    """Make a user Dataset resolvable by name in this process (local executors only).

    Raises:
        ConfigError: the name is a registered dataset's, or another dataset with different data
            (another ``fingerprint``) is attached under it: an experiment on that one would
            otherwise train on this one.
    """
    if dataset.name in _REGISTRY:
        raise ConfigError(
            f"your dataset is named {dataset.name!r}, which is a registered dataset; pick another name."
        )
    other = _USER.get(dataset.name)
    if other is not None and other is not dataset and other.fingerprint != dataset.fingerprint:
        raise ConfigError(
            f"another dataset named {dataset.name!r}, with different data, is in use in this process "
            f"({other!r}); give this one another name= (or leave name= out: the default name comes "
            "from the data)."
        )
    _USER[dataset.name] = dataset
    return dataset.name


def attached(fingerprint: str | None) -> Dataset | None:
    """The Dataset attached in this process (``attach``) with this ``fingerprint`` (the same
    data, whatever its name), or None."""
    return next((d for d in _USER.values() if fingerprint and d.fingerprint == fingerprint), None)


def is_registered(name: str) -> bool:
    return name in _REGISTRY

