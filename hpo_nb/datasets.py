"""Datasets by name, and constructors for the user's own data.

A ``Dataset`` knows its modality (image or text), input shape and classes; ``splits`` gives the
seeded, stratified train / validation / test arrays (``split`` the train and validation part that a
trial trains on). The test part is kept out of the search: an official test split where the data
has one (``keras.datasets``, ``test=``), otherwise a stratified ``test_fraction`` carved off first.
Registered names resolve to loaders; ``digits`` (bundled with scikit-learn) is the offline default.
Network datasets fail fast offline with a message that says what to use instead.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import socket
import struct
import threading
import urllib.request
import zipfile
import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, NamedTuple, Sequence

import numpy as np

from .errors import ConfigError, DatasetUnavailableError

Modality = Literal["image", "text"]

_OFFLINE_HINT = (
    "Use the bundled dataset instead (dataset='digits'), or bring your own data with "
    "hpo_nb.datasets.from_arrays(x, y), from_idx(...) or from_text_lines(...)."
)


DEFAULT_TEST_FRACTION = 0.2
"""Held out for the final test when the data has no official test split. 20 % is the usual
80/20 hold-out: on the bundled digits (1,797 images) it leaves 359 test samples, so a test
accuracy near 0.95 has a standard error of about 0.011, while the search keeps 80 % to train and
validate on. Smaller sets get a noisier estimate; pass ``test_fraction`` or ``test=`` to choose."""

_TEST_SEED = 0  # the test split depends on the data only, never on an experiment's seed


class Splits(NamedTuple):
    """Train / validation / test arrays, exactly the samples a search used.

    ``x_train``/``y_train`` are what trials fit on, ``x_val``/``y_val`` what they are scored on
    (the search's objective), ``x_test``/``y_test`` what the search never sees (``Experiment.evaluate``).
    Labels are int32 class indices, shape (n,). With ``raw=False`` images are float32 in [0, 1],
    shape (n, h, w, c), and text is int32 token ids, shape (n, sequence_length); with ``raw=True``
    images are float32 in the data's own units (e.g. 0..255) and raw text is an object array of str.
    The test arrays have length 0 when there is no test split (``test_fraction=0``).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(eq=False)
class Dataset:
    """Samples and labels plus what a model needs to know about them.

    Images are float32 in [0, 1], shape (n, height, width, channels); ``scale`` is the factor the
    raw pixel values were multiplied by (1/255 for 8-bit images, 1/16 for scikit-learn digits, 1.0
    for data already in [0, 1]), so a saved model can take raw pixels. Text is either raw strings
    (vectorized per split with Keras ``TextVectorization``, vocabulary fitted on the training part
    only) or integer token sequences (padded to ``sequence_length``).

    ``x_test``/``y_test`` hold an official test split, kept apart from ``x``/``y`` (the search's
    pool). Without one, ``test_fraction`` of ``x`` is held out, stratified, with a fixed seed.
    """

    name: str
    modality: Modality
    x: np.ndarray
    y: np.ndarray
    num_classes: int
    class_names: list[str] | None = None
    max_tokens: int = 10_000
    sequence_length: int | None = None
    description: str = ""
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    scale: float = 1.0
    test_fraction: float = DEFAULT_TEST_FRACTION
    _splits: dict[tuple, tuple] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if len(self.x) == 0:
            raise ConfigError(f"dataset {self.name!r} is empty: pass at least one sample per class.")
        if len(self.x) != len(self.y):
            raise ConfigError(
                f"dataset {self.name!r}: x has {len(self.x)} samples but y has {len(self.y)}; "
                "they must have the same length."
            )
        if self.num_classes < 2:
            raise ConfigError(f"dataset {self.name!r} has {self.num_classes} class; a classifier needs 2 or more.")
        if isinstance(self.test_fraction, bool) or not isinstance(self.test_fraction, (int, float)) \
                or not 0 <= self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be a number in [0, 1), not {self.test_fraction!r}.")
        if (self.x_test is None) != (self.y_test is None):
            raise ConfigError(f"dataset {self.name!r}: pass both x_test and y_test, or neither.")
        if self.x_test is not None and len(self.x_test) != len(self.y_test):
            raise ConfigError(
                f"dataset {self.name!r}: x_test has {len(self.x_test)} samples but y_test has "
                f"{len(self.y_test)}; they must have the same length."
            )
        if self.modality == "text" and self.sequence_length is None:
            self.sequence_length = _default_sequence_length(self.x)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, modality={self.modality!r}, samples={len(self.x)}, "
            f"input_shape={self.input_shape}, classes={self.num_classes})"
        )

    @property
    def is_raw_text(self) -> bool:
        return self.modality == "text" and self.x.dtype.kind in ("U", "S", "O") and _is_str_array(self.x)

    @property
    def input_shape(self) -> tuple[int, ...]:
        if self.modality == "text":
            return (int(self.sequence_length or 0),)
        return tuple(int(d) for d in self.x.shape[1:])

    @property
    def vocabulary_size(self) -> int:
        """Token ids are below this (for the embedding layer)."""
        if self.is_raw_text:
            return self.max_tokens
        return int(max(int(np.max(s)) if len(s) else 0 for s in self.x)) + 1

    @property
    def has_test_split(self) -> bool:
        """True when the data brings its own test split (``keras.datasets``, ``test=``)."""
        return self.x_test is not None

    def resolve_test_fraction(self, test_fraction: float | None = None, strict: bool = False) -> float:
        """The test fraction a split uses: ``test_fraction``, or the default when None.

        Args:
            test_fraction: fraction of the samples held out for the final test, in [0, 1), or
                None for the default (``self.test_fraction``, 0.2 unless set). Data with its own
                test split holds nothing out (0.0) whatever the value.
            strict: refuse a non-zero ``test_fraction`` for data with its own test split (what a
                user asked for, as ``Experiment`` checks it) instead of ignoring it.

        Returns:
            float: the fraction (0.0 means no carved test split).

        Raises:
            ConfigError: the fraction is out of range, or (``strict``) the data has its own test
                split and a non-zero fraction was asked for.
        """
        if test_fraction is None:
            return 0.0 if self.has_test_split else float(self.test_fraction)
        if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) \
                or not 0 <= test_fraction < 1:
            raise ConfigError(f"test_fraction must be a number in [0, 1), not {test_fraction!r}.")
        if self.has_test_split:
            if not (strict and test_fraction):
                return 0.0
            raise ConfigError(
                f"dataset {self.name!r} has its own test split ({len(self.x_test)} samples); "
                "leave test_fraction=None (test_fraction carves a test split out of data that has none)."
            )
        return float(test_fraction)

    def split(
        self, validation_fraction: float = 0.2, seed: int = 0, sample_fraction: float = 1.0,
        test_fraction: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The part a trial trains on: ``(x_train, y_train, x_val, y_val)``, see ``splits``.

        The test split is held out first, so neither part ever holds a test sample.
        """
        return tuple(self.splits(validation_fraction, seed, sample_fraction, test_fraction)[:4])  # type: ignore[return-value]

    def splits(
        self, validation_fraction: float = 0.2, seed: int = 0, sample_fraction: float = 1.0,
        test_fraction: float | None = None, *, raw: bool = False,
    ) -> Splits:
        """Seeded, stratified train / validation / test split: the very samples a search uses.

        The test split comes first and depends on the data only: the official test split where
        there is one, else ``test_fraction`` of every class (fixed seed, so searches with different
        seeds are tested on the same samples). Validation is then ``validation_fraction`` of what
        is left, drawn with ``seed``; ``sample_fraction`` keeps a stratified part of the training
        split only, so trials trained on different fractions are scored on the same samples.
        Text is vectorized with a vocabulary fitted on the training split only. Cached (thread-safe).

        Args:
            validation_fraction: fraction of the non-test samples used for validation, in (0, 1).
            seed: the experiment's seed (``Experiment(seed=)``): fixes the validation split.
            sample_fraction: fraction of the training split kept, in (0, 1].
            test_fraction: fraction held out for the test, in [0, 1); None: the dataset's default
                (see ``resolve_test_fraction``); ignored when the data has its own test split.
            raw: False: arrays as trials see them (images scaled to [0, 1], text as token ids);
                True: as a saved model and ``Experiment.predict`` take them (pixels in the data's
                own units, text as strings).

        Returns:
            Splits: named tuple ``(x_train, y_train, x_val, y_val, x_test, y_test)``.

        Raises:
            ConfigError: a fraction is out of range (see ``resolve_test_fraction``).
        """
        test_fraction = self.resolve_test_fraction(test_fraction)
        key = (round(validation_fraction, 6), seed, round(sample_fraction, 6), round(test_fraction, 6))
        with self._lock:
            if key not in self._splits:
                self._splits[key] = self._make_split(validation_fraction, seed, sample_fraction, test_fraction)
            train_idx, val_idx, test_idx, vectorized, _vocab = self._splits[key]
        if not raw:
            return vectorized
        x_test, y_test = self._test_part(test_idx)
        y = self.y
        if self.modality == "image":
            return Splits(self.raw_pixels(self.x[train_idx]), y[train_idx], self.raw_pixels(self.x[val_idx]),
                          y[val_idx], self.raw_pixels(x_test), y_test)
        return Splits(self.x[train_idx], y[train_idx], self.x[val_idx], y[val_idx], x_test, y_test)

    def vocabulary(
        self, validation_fraction: float = 0.2, seed: int = 0, sample_fraction: float = 1.0,
        test_fraction: float | None = None,
    ) -> list[str] | None:
        """The ``TextVectorization`` vocabulary fitted on this split's training part (raw text
        only; None otherwise). Arguments as for ``splits``."""
        if not self.is_raw_text:
            return None
        self.splits(validation_fraction, seed, sample_fraction, test_fraction)
        key = (round(validation_fraction, 6), seed, round(sample_fraction, 6),
               round(self.resolve_test_fraction(test_fraction), 6))
        return list(self._splits[key][4])

    def raw_pixels(self, x: np.ndarray) -> np.ndarray:
        """Images back in the data's own units (e.g. 0..255): what a saved model takes."""
        return (np.asarray(x, dtype="float32") * np.float32(1.0 / self.scale)).astype("float32")

    def with_preprocessing(
        self, network: Any, validation_fraction: float = 0.2, seed: int = 0, sample_fraction: float = 1.0,
        test_fraction: float | None = None,
    ) -> Any:
        """``network`` behind this dataset's preprocessing, as one Keras model taking raw inputs.

        Images: a ``Rescaling(scale)`` layer, so the model takes raw pixel values (uint8 0..255,
        digits 0..16), shape (n, h, w, c). Raw text: a ``TextVectorization`` layer holding the
        training split's vocabulary, so the model takes a string tensor of shape (n,) (as Keras'
        end-to-end text examples export it). Token-id text: the network itself (padded int32 ids).
        Call where Keras may build layers (not concurrently with other model building).

        Args:
            network: the trained ``keras.Model`` (inputs as ``splits(raw=False)`` gives them).
            validation_fraction, seed, sample_fraction, test_fraction: the split it trained on.

        Returns:
            keras.Model: not compiled (``predict`` needs no compiling; compile it to ``evaluate``).
        """
        import keras

        if self.modality == "image":
            inputs = keras.Input(shape=self.input_shape, name="pixels")
            x = keras.layers.Rescaling(self.scale, name="rescale")(inputs)
        elif self.is_raw_text:
            inputs = keras.Input(shape=(), dtype="string", name="text")
            x = keras.layers.TextVectorization(
                max_tokens=self.max_tokens, output_mode="int", output_sequence_length=int(self.sequence_length or 0),
                vocabulary=self.vocabulary(validation_fraction, seed, sample_fraction, test_fraction),
                name="vectorize",
            )(inputs)
        else:
            return network
        return keras.Model(inputs, network(x), name=f"{network.name}_raw_inputs")

    def prepare_raw(self, inputs: Any) -> Any:
        """Raw user inputs as a batch a saved model takes: one sample or many; images (h, w),
        (h, w, c) or flat square vectors; a str or a list of str; ragged token-id sequences.

        Raises:
            ConfigError: the inputs do not fit this dataset's input shape.
        """
        if self.modality == "text":
            if isinstance(inputs, str):
                inputs = [inputs]
            if self.is_raw_text:
                arr = np.asarray([str(t) for t in inputs], dtype=object)
                return arr
            from keras.utils import pad_sequences

            seqs = list(inputs)
            if seqs and np.ndim(seqs[0]) == 0:
                seqs = [seqs]
            return pad_sequences(seqs, maxlen=int(self.sequence_length or 0), padding="post",
                                 truncating="post").astype("int32")
        x = np.asarray(inputs, dtype="float32")
        shape = self.input_shape
        one_channel = shape[-1] == 1
        sample_shapes = [shape, *([shape[:2]] if one_channel else []), (math.prod(shape),)]
        if x.shape in sample_shapes:
            return x.reshape((1, *shape))
        if x.ndim >= 2 and x.shape[1:] in sample_shapes:
            return x.reshape((-1, *shape))
        raise ConfigError(
            f"images for dataset {self.name!r} must have shape (n, {', '.join(map(str, shape))})"
            f"{' or (n, ' + ', '.join(map(str, shape[:2])) + ')' if one_channel else ''} (or one image); "
            f"got an array of shape {x.shape}."
        )

    def _test_part(self, test_idx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if test_idx is None:
            return self.x_test, self.y_test  # type: ignore[return-value]
        return self.x[test_idx], self.y[test_idx]

    def _make_split(self, validation_fraction: float, seed: int, sample_fraction: float,
                    test_fraction: float) -> tuple:
        """(train_idx, val_idx, test_idx or None for an official test split, Splits, vocabulary)."""
        pool = np.arange(len(self.y))
        test_idx: np.ndarray | None = None
        if not self.has_test_split:
            test_idx = np.empty(0, dtype=int)
            if test_fraction > 0:
                pool, test_idx = _stratified_split(self.y, test_fraction, _TEST_SEED)
                pool = np.sort(pool)
        keep, held = _stratified_split(self.y[pool], validation_fraction, seed)
        train_idx, val_idx = pool[keep], pool[held]
        if sample_fraction < 1.0:
            keep, _ = _stratified_split(self.y[train_idx], 1.0 - sample_fraction, seed + 1)
            train_idx = train_idx[keep]
        x_test, y_test = self._test_part(test_idx)
        x_train, x_val = self.x[train_idx], self.x[val_idx]
        vocab: list[str] = []
        if self.modality == "text":
            x_train, x_val, x_test, vocab = self._vectorize(x_train, x_val, x_test)
        splits = Splits(x_train, self.y[train_idx], x_val, self.y[val_idx], x_test, y_test)
        return train_idx, val_idx, test_idx, splits, vocab

    def _vectorize(self, x_train: np.ndarray, x_val: np.ndarray, x_test: np.ndarray) -> tuple:
        length = int(self.sequence_length or 0)
        if not self.is_raw_text:
            from keras.utils import pad_sequences

            def pad(seqs: np.ndarray) -> np.ndarray:
                if len(seqs) == 0:
                    return np.zeros((0, length), dtype="int32")
                return pad_sequences(list(seqs), maxlen=length, padding="post", truncating="post").astype("int32")

            return pad(x_train), pad(x_val), pad(x_test), []
        import keras

        vectorizer = keras.layers.TextVectorization(
            max_tokens=self.max_tokens, output_mode="int", output_sequence_length=length
        )
        vectorizer.adapt(x_train.astype(str), batch_size=1024)

        def vec(texts: np.ndarray) -> np.ndarray:
            if len(texts) == 0:
                return np.zeros((0, length), dtype="int32")
            return np.asarray(vectorizer(texts.astype(str)), dtype="int32")

        return vec(x_train), vec(x_val), vec(x_test), [str(t) for t in vectorizer.get_vocabulary()]

    def with_test(self, x_test: Any, y_test: Any) -> "Dataset":
        """A copy of this dataset with an explicit held-out test split (same classes, same scaling).

        Args:
            x_test: samples like ``x`` in its raw form (images as given to ``from_arrays``, e.g.
                uint8 (n, h, w); text as str or token-id sequences).
            y_test: labels like the ones given for ``x`` (class indices, or the same names).

        Returns:
            Dataset: the search pool unchanged, ``x_test``/``y_test`` set.

        Raises:
            ConfigError: shapes, lengths or labels do not match this dataset.
        """
        x_t = _as_sample_array(x_test)
        if self.modality == "image":
            x_t, _ = _as_images(x_t, scale=self.scale)
            if x_t.shape[1:] != self.x.shape[1:]:
                raise ConfigError(f"test images have shape {x_t.shape[1:]}; the dataset's are {self.x.shape[1:]}.")
        y_arr = np.asarray(y_test)
        if self.class_names and y_arr.dtype.kind not in ("i", "u"):
            lookup = {name: i for i, name in enumerate(self.class_names)}
            unknown = sorted({str(v) for v in y_arr.reshape(-1)} - set(lookup))
            if unknown:
                raise ConfigError(f"test labels {unknown[:5]} are not classes of dataset {self.name!r} "
                                  f"({', '.join(self.class_names[:10])}).")
            labels = np.array([lookup[str(v)] for v in y_arr.reshape(-1)], dtype="int32")
        else:
            labels, _ = _encode_labels(y_arr)
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ConfigError(f"test labels must be class indices in [0, {self.num_classes}).")
        return dataclasses.replace(self, x_test=x_t, y_test=labels, _splits={}, _lock=threading.Lock())


def network_of(model: Any) -> Any:
    """The trained network inside a model saved for raw inputs (``Dataset.with_preprocessing``);
    ``model`` itself when it has no preprocessing around it."""
    import keras

    if model.name.endswith("_raw_inputs"):
        inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        if len(inner) == 1:
            return inner[0]
    return model


# ------------------------------------------------------------------------ registry


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
    """Make a user Dataset resolvable by name in this process (local executors only)."""
    if dataset.name in _REGISTRY:
        raise ConfigError(
            f"your dataset is named {dataset.name!r}, which is a registered dataset; pick another name."
        )
    _USER[dataset.name] = dataset
    return dataset.name


def is_registered(name: str) -> bool:
    return name in _REGISTRY


# ------------------------------------------------------------------- constructors


def from_arrays(
    x: Any,
    y: Any,
    modality: Modality | None = None,
    *,
    name: str = "arrays",
    class_names: Sequence[str] | None = None,
    max_tokens: int = 10_000,
    sequence_length: int | None = None,
    test: tuple[Any, Any] | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> Dataset:
    """Wrap in-memory samples. Modality is inferred when not given: numeric arrays with 2D/3D
    samples (or flat square vectors) are images; strings or integer token sequences are text.

    Args:
        x: samples, length n: images (n, h, w), (n, h, w, c) or flat square vectors (n, h*w), any
            numeric dtype (uint8 0..255, 0..16, or floats in [0, 1]); text as str or token-id sequences.
        y: labels, length n: class indices, class names, or one-hot rows.
        modality: "image" or "text"; inferred when None.
        name: the dataset's name (names the run and the study).
        class_names: names of the classes, in index order (default: the sorted label names).
        max_tokens, sequence_length: text vectorization (vocabulary size, tokens per sample).
        test: ``(x_test, y_test)``, a held-out test split in the same form as ``x``/``y``; the
            search never sees it. Default: none, and ``test_fraction`` is held out instead.
        test_fraction: fraction of ``x`` held out (stratified, fixed seed) when ``test`` is not
            given; 0.2 by default (see ``DEFAULT_TEST_FRACTION``), 0 for no test split.

    Returns:
        Dataset: images scaled to float32 [0, 1] (the factor in ``Dataset.scale``).

    Raises:
        ConfigError: lengths differ, the data is empty, or the modality cannot be inferred.
    """
    if test is not None:
        if not isinstance(test, (tuple, list)) or len(test) != 2:
            raise ConfigError("test must be a pair (x_test, y_test).")
        y_all = np.concatenate([np.asarray(y), np.asarray(test[1])]) if len(test[1]) else np.asarray(y)
        all_labels, found_names = _encode_labels(y_all)
        labels, test_labels = all_labels[: len(np.asarray(y))], all_labels[len(np.asarray(y)):]
    else:
        labels, found_names = _encode_labels(y)
    x_arr = _as_sample_array(x)
    if len(x_arr) != len(labels):
        raise ConfigError(
            f"x has {len(x_arr)} samples but y has {len(labels)}; they must have the same length."
        )
    if len(x_arr) == 0:
        raise ConfigError("the dataset is empty: pass at least one sample per class.")
    modality = modality or _infer_modality(x_arr)
    if modality not in ("image", "text"):
        raise ConfigError(f"modality must be 'image' or 'text', not {modality!r}.")
    scale = 1.0
    x_test = None
    if modality == "image":
        x_arr, scale = _as_images(x_arr)
    if test is not None:
        x_test = _as_sample_array(test[0])
        if len(x_test) != len(test_labels):
            raise ConfigError(f"x_test has {len(x_test)} samples but y_test has {len(test_labels)}; "
                              "they must have the same length.")
        if modality == "image":
            x_test, _ = _as_images(x_test, scale=scale)
            if x_test.shape[1:] != x_arr.shape[1:]:
                raise ConfigError(f"test images have shape {x_test.shape[1:]}; the training images' are "
                                  f"{x_arr.shape[1:]}.")
    n_classes = int(max(labels.max(), test_labels.max() if test is not None and len(test_labels) else 0)) + 1 \
        if len(labels) else 0
    return Dataset(
        name=name, modality=modality, x=x_arr, y=labels, num_classes=n_classes,
        class_names=list(class_names) if class_names else found_names,
        max_tokens=max_tokens, sequence_length=sequence_length, x_test=x_test,
        y_test=test_labels if test is not None else None, scale=scale, test_fraction=test_fraction,
    )


def from_idx(images_path: str | os.PathLike, labels_path: str | os.PathLike, *, name: str = "idx") -> Dataset:
    """Read MNIST-style IDX files (gzip or not)."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim < 2:
        raise ConfigError(f"{images_path} holds a {images.ndim}-D array; expected images (n, rows, cols).")
    return from_arrays(images, labels, modality="image", name=name)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse one IDX file: magic (0, 0, dtype code, ndim), big-endian int32 dims, then data."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ConfigError(f"{path} is not an IDX file (bad magic number).")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    code, ndim = raw[2], raw[3]
    if code not in dtypes:
        raise ConfigError(f"{path}: unknown IDX data type 0x{code:02x}.")
    dims = struct.unpack(f">{ndim}i", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=dtypes[code], offset=4 + 4 * ndim)
    if data.size != math.prod(dims):
        raise ConfigError(f"{path}: header says {dims} but the file holds {data.size} values.")
    return data.reshape(dims).astype(dtypes[code][1:], copy=False)


def from_text_lines(
    sources: Mapping[str, Any] | str | os.PathLike | Any,
    *,
    sep: str | None = None,
    label_first: bool = True,
    name: str = "text",
    max_tokens: int = 10_000,
    sequence_length: int | None = None,
    encoding: str = "utf-8",
) -> Dataset:
    """Corpora of one sample a line.

    Either a mapping ``{label: file}`` (every line of a file is one sample of that label), or
    one file whose lines are ``label<sep>text`` (``label_first``) or ``text<sep>label``.
    A file is a path or anything with ``read_bytes()``/``open()`` (e.g. ``zipfile.Path``).
    """
    texts: list[str] = []
    labels: list[str] = []
    if isinstance(sources, Mapping):
        for label, source in sources.items():
            for line in _read_lines(source, encoding):
                texts.append(line)
                labels.append(str(label))
    else:
        if sep is None:
            raise ConfigError(
                "one file of 'label<sep>text' lines needs sep= (e.g. sep='\\t'); "
                "or pass a mapping {label: file} with one sample a line."
            )
        for number, line in enumerate(_read_lines(sources, encoding), 1):
            if sep not in line:
                raise ConfigError(f"line {number} of {sources} has no separator {sep!r}: {line[:60]!r}")
            a, b = line.split(sep, 1) if label_first else line.rsplit(sep, 1)
            label, text = (a, b) if label_first else (b, a)
            texts.append(text)
            labels.append(label.strip())
    if not texts:
        raise ConfigError("the text corpus is empty: no non-blank lines were found.")
    return from_arrays(
        np.array(texts, dtype=object), labels, modality="text", name=name,
        max_tokens=max_tokens, sequence_length=sequence_length,
    )


def _read_lines(source: Any, encoding: str) -> Iterable[str]:
    if hasattr(source, "read_bytes"):
        raw = source.read_bytes()
    elif isinstance(source, (str, os.PathLike)):
        raw = Path(source).read_bytes()
    elif hasattr(source, "open"):
        with source.open("rb") as fh:
            raw = fh.read()
    else:
        raise ConfigError(f"cannot read text from {type(source).__name__}; pass a path.")
    for line in raw.decode(encoding, errors="replace").splitlines():
        if line.strip():
            yield line.strip()


# ------------------------------------------------------------------------- helpers


def _encode_labels(y: Any) -> tuple[np.ndarray, list[str] | None]:
    y_arr = np.asarray(y)
    if y_arr.ndim == 2 and y_arr.shape[1] > 1:  # one-hot
        return y_arr.argmax(axis=1).astype("int32"), None
    y_arr = y_arr.reshape(-1) if y_arr.ndim == 2 else y_arr
    if y_arr.ndim != 1:
        raise ConfigError(f"y must be one label per sample; got shape {y_arr.shape}.")
    if y_arr.dtype.kind in ("i", "u") and (len(y_arr) == 0 or y_arr.min() >= 0):
        return y_arr.astype("int32"), None
    classes, encoded = np.unique(y_arr.astype(str), return_inverse=True)
    return encoded.astype("int32"), [str(c) for c in classes]


def _as_sample_array(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    items = list(x)
    if items and isinstance(items[0], str):
        return np.array(items, dtype=object)
    try:
        return np.asarray(items)
    except ValueError:  # ragged token sequences
        arr = np.empty(len(items), dtype=object)
        arr[:] = [np.asarray(s) for s in items]
        return arr


def _is_str_array(x: np.ndarray) -> bool:
    return x.dtype.kind in ("U", "S") or (x.dtype == object and len(x) > 0 and isinstance(x[0], str))


def _infer_modality(x: np.ndarray) -> Modality:
    if _is_str_array(x) or x.dtype == object:
        return "text"
    if x.dtype.kind not in ("i", "u", "f", "b"):
        raise ConfigError(f"cannot infer the modality of a {x.dtype} array; pass modality='image' or 'text'.")
    if x.ndim in (3, 4):
        return "image"
    if x.ndim == 2:
        if x.dtype.kind == "i":
            return "text"  # token id sequences
        if math.isqrt(x.shape[1]) ** 2 == x.shape[1]:
            return "image"  # flat square images, e.g. 8x8 digits as 64 values
    raise ConfigError(
        f"cannot infer the modality of x with shape {x.shape}; pass modality='image' "
        "(samples of shape (h, w) or (h, w, c)) or modality='text'."
    )


def _as_images(x: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, float]:
    """Images as float32 (n, h, w, c) in [0, 1], and the factor applied: 1/255 for 8-bit values,
    1/16 for scikit-learn digits (0..16), 1.0 for data already in [0, 1]; ``scale`` forces one
    (a test split is scaled like its training data)."""
    if x.dtype == object or x.dtype.kind not in ("i", "u", "f", "b"):
        raise ConfigError("image samples must be numeric arrays.")
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise ConfigError(f"flat image vectors of length {x.shape[1]} are not square; reshape x to (n, h, w).")
        x = x.reshape(len(x), side, side)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ConfigError(f"images must be (n, h, w) or (n, h, w, c); got shape {x.shape}.")
    x = x.astype("float32")
    if scale is None:
        top = float(x.max()) if x.size else 1.0
        scale = 1.0 if top <= 1.0 else 1.0 / 255.0 if top > 16.0 else 1.0 / 16.0  # uint8, or digits (0..16)
    if scale != 1.0:
        x /= np.float32(1.0 / scale)
    return x, float(scale)


def _default_sequence_length(x: np.ndarray) -> int:
    lengths = [len(str(s).split()) if isinstance(s, str) else len(s) for s in x[:5000]]
    return int(min(200, max(8, np.percentile(lengths, 95)))) if lengths else 50


def _stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out): ``fraction`` of every class held out, at least one sample each."""
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        n_held = int(round(len(idx) * fraction))
        if len(idx) > 1:
            n_held = min(max(n_held, 1), len(idx) - 1)
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    keep_idx, held_idx = np.concatenate(keep), np.concatenate(held)
    rng.shuffle(keep_idx)
    return keep_idx, np.sort(held_idx)


# ---------------------------------------------------------------- built-in loaders


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    ds = from_arrays(bunch.images, bunch.target, modality="image", name="digits")
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
                f"connection. {_OFFLINE_HINT}"
            )
        import keras

        try:
            (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data(**kwargs)
        except Exception as exc:
            raise DatasetUnavailableError(f"could not load {name!r}: {exc}. {_OFFLINE_HINT}") from exc
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


GTSRB_URL = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/GTSRB-Training_fixed.zip"
GTSRB_MD5 = "513f3c79a4c5141765e10e952eaa2478"


def download(url: str, dest: Path, md5: str) -> Path:
    """Download once into the cache and verify the checksum (a bad file is removed)."""
    if dest.exists() and _md5(dest) == md5:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as resp, open(tmp, "wb") as out:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DatasetUnavailableError(f"could not download {url}: {exc}. {_OFFLINE_HINT}") from exc
    got = _md5(tmp)
    if got != md5:
        tmp.unlink(missing_ok=True)
        raise DatasetUnavailableError(f"checksum mismatch for {url}: expected md5 {md5}, got {got}.")
    tmp.replace(dest)
    return dest


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def read_gtsrb_zip(path: Path, size: int = 32) -> Dataset:
    """GTSRB training archive: one folder per class of PPM images, resized to ``size``."""
    from PIL import Image

    images, labels = [], []
    with zipfile.ZipFile(path) as zf:
        for member in zf.namelist():
            if not member.lower().endswith(".ppm"):
                continue
            label = int(Path(member).parent.name)
            with zf.open(member) as fh:
                img = Image.open(io.BytesIO(fh.read())).convert("RGB").resize((size, size))
            images.append(np.asarray(img, dtype="uint8"))
            labels.append(label)
    if not images:
        raise DatasetUnavailableError(f"{path} holds no GTSRB images (.ppm).")
    return from_arrays(np.stack(images), np.array(labels), modality="image", name="gtsrb")


def _load_gtsrb() -> Dataset:
    cache = Path(os.environ.get("HPO_NB_CACHE", Path.home() / ".cache" / "hpo-nb")) / "GTSRB-Training_fixed.zip"
    if not (cache.exists() and _md5(cache) == GTSRB_MD5) and not _network_available("sid.erda.dk"):
        raise DatasetUnavailableError(f"dataset 'gtsrb' must be downloaded and there is no internet connection. {_OFFLINE_HINT}")
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
