"""The registered datasets: scikit-learn digits (offline), ``keras.datasets`` and GTSRB."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import DatasetUnavailableError
from .arrays import from_arrays
from .dataset import Dataset
from .readers import OFFLINE_HINT, download, read_gtsrb_zip
from .registry import DatasetInfo, register
from .validation import Modality

GTSRB_URL = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/GTSRB-Training_fixed.zip"
GTSRB_MD5 = "513f3c79a4c5141765e10e952eaa2478"



def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    ds = from_arrays(bunch.images, bunch.target, modality="image", name="digits", scale=1 / 16)  # values 0..16
    ds.description = "scikit-learn digits: 1,797 8x8 grey images, 10 classes (bundled, offline)"
    return ds


def _network_available(host: str = "storage.googleapis.com", timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _keras_loader(name: str, modality: Modality, cache_file: str, **kwargs: Any) -> Callable[[], Dataset]:
    def load() -> Dataset:
        cached = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / cache_file
        if not cached.exists() and not _network_available():
            raise DatasetUnavailableError(
                f"dataset {name!r} must be downloaded by keras.datasets, and there is no internet "
                f"connection. {OFFLINE_HINT}"
            )
        import keras

        try:
            (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data(**kwargs)
        except Exception as exc:
            raise DatasetUnavailableError(f"could not load {name!r}: {exc}. {OFFLINE_HINT}") from exc
        # The official test split stays apart: the search never sees it (Experiment.evaluate does).
        if modality == "text":
            x_train, x_test = _ragged(x_train), _ragged(x_test)
        return from_arrays(x_train, y_train.reshape(-1), modality=modality, name=name,
                           sequence_length=200 if modality == "text" else None,
                           test=(x_test, y_test.reshape(-1)))

    return load


def _ragged(a: np.ndarray) -> np.ndarray:
    out = np.empty(len(a), dtype=object)
    out[:] = [np.asarray(s, dtype="int32") for s in a]
    return out


def _load_gtsrb() -> Dataset:
    cache = Path(os.environ.get("HPO_NB_CACHE", Path.home() / ".cache" / "hpo-nb")) / "GTSRB-Training_fixed.zip"
    if not cache.exists() and not _network_available("sid.erda.dk"):
        raise DatasetUnavailableError(f"dataset 'gtsrb' must be downloaded and there is no internet connection. {OFFLINE_HINT}")
    return read_gtsrb_zip(download(GTSRB_URL, cache, GTSRB_MD5))


for _info in [
    DatasetInfo("digits", "image", 10, (8, 8, 1), "scikit-learn digits, 1,797 8x8 images (offline)", False, _load_digits),
    DatasetInfo("mnist", "image", 10, (28, 28, 1), "MNIST handwritten digits (keras.datasets)", True,
                _keras_loader("mnist", "image", "mnist.npz")),
    DatasetInfo("fashion_mnist", "image", 10, (28, 28, 1), "Fashion-MNIST (keras.datasets)", True,
                _keras_loader("fashion_mnist", "image", "fashion-mnist")),
    DatasetInfo("cifar10", "image", 10, (32, 32, 3), "CIFAR-10 (keras.datasets)", True,
                _keras_loader("cifar10", "image", "cifar-10-batches-py")),
    DatasetInfo("cifar100", "image", 100, (32, 32, 3), "CIFAR-100 (keras.datasets)", True,
                _keras_loader("cifar100", "image", "cifar-100-python")),
    DatasetInfo("imdb", "text", 2, (200,), "IMDB review sentiment, token ids (keras.datasets)", True,
                _keras_loader("imdb", "text", "imdb.npz", num_words=10_000)),
    DatasetInfo("reuters", "text", 46, (200,), "Reuters newswire topics, token ids (keras.datasets)", True,
                _keras_loader("reuters", "text", "reuters.npz", num_words=10_000)),
    DatasetInfo("gtsrb", "image", 43, (32, 32, 3), "German traffic signs, 43 classes (downloaded, md5-checked)", True,
                _load_gtsrb),
]:
    register(_info)
