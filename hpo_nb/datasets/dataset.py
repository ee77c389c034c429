"""``Dataset``: samples, labels and what a model needs to know about them; its seeded splits."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..errors import ConfigError
from ..values import check_fraction
from .split import stratified_split, vectorize
from .validation import (Modality, as_images, as_sample_array, default_sequence_length, is_str_array,
                         normalize_labels)

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

    ``label_values`` are the labels as the user gave them, in class-index order (None when they
    were the indices 0..K-1 already): a test split's labels are mapped through them.
    ``fingerprint`` identifies the data (shapes, classes, a hash of the arrays).
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
    label_values: list | None = None
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
            self.sequence_length = default_sequence_length(self.x)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, modality={self.modality!r}, samples={len(self.x)}, "
            f"input_shape={self.input_shape}, classes={self.num_classes})"
        )

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 (hex) of what makes scores comparable: modality, shapes, classes, scaling, text
        settings and the bytes of every array (the name is not part of it)."""
        h = hashlib.sha256()
        meta = (self.modality, self.num_classes, self.class_names, self.label_values, self.scale, self.max_tokens,
                self.sequence_length, self.x.shape, str(self.x.dtype), None if self.x_test is None else len(self.x_test))
        h.update(repr(meta).encode())
        for arr in (self.x, self.y, self.x_test, self.y_test):
            if arr is None:
                continue
            if arr.dtype == object:
                for item in arr:
                    h.update(item.encode("utf-8", "surrogatepass") if isinstance(item, str) else
                             np.ascontiguousarray(item).tobytes())
                    h.update(b"\x00")
            else:
                h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    @functools.cached_property
    def unscaled(self) -> dict[str, Any]:
        """The data apart from ``scale``: ``labels``, sha256 (hex) of what scaling leaves alone
        (modality, shapes, classes, labels), and ``raw_sums``, the sum of the raw pixel values
        (``x / scale``) and the same weighted by sample position (1..n), so the samples' order
        counts. A study records it beside ``scale`` so that a reopen with the same samples scaled
        otherwise is told by its scale, not as other data; None for integer (token id) data."""
        h = hashlib.sha256()
        meta = (self.modality, self.num_classes, self.class_names, self.label_values, self.x.shape,
                None if self.x_test is None else self.x_test.shape)
        h.update(repr(meta).encode())
        for arr in (self.y, self.y_test):
            if arr is not None:
                h.update(np.ascontiguousarray(arr).tobytes())
        sums = None
        if self.x.dtype.kind == "f":
            per_sample = self.x.reshape(len(self.x), -1).sum(axis=1, dtype="float64") / self.scale
            sums = [float(per_sample.sum()), float(per_sample @ np.arange(1, len(per_sample) + 1, dtype="float64"))]
        return {"labels": h.hexdigest(), "raw_sums": sums}

    @functools.cached_property
    def raw_max(self) -> float | None:
        """The largest raw pixel value a model of this dataset takes (1/scale, e.g. 255 or 16),
        when the scaled images lie in [0, 1]; None for text or images in other ranges."""
        if self.modality != "image" or not self.x.size:
            return None
        if float(self.x.min()) < 0 or float(self.x.max()) > 1 + 1e-6:
            return None
        return 1.0 / self.scale

    @property
    def is_raw_text(self) -> bool:
        return self.modality == "text" and self.x.dtype.kind in ("U", "S", "O") and is_str_array(self.x)

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
        check_fraction("test_fraction", test_fraction, high_open=True)
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
        """``network`` behind this dataset's preprocessing, as one Keras model taking raw inputs
        (see ``raw.with_preprocessing``; arguments: the split it trained on).

        Returns:
            keras.Model: not compiled.
        """
        from .raw import with_preprocessing

        return with_preprocessing(self, network, validation_fraction, seed, sample_fraction, test_fraction)

    def prepare_raw(self, inputs: Any) -> Any:
        """Raw user inputs as a batch a saved model takes (see ``raw.prepare_raw``).

        Raises:
            ConfigError: no inputs; NaN/inf pixels; pixel values above ``raw_max``; a shape that does not fit.
        """
        from .raw import prepare_raw

        return prepare_raw(self, inputs)

    def _test_part(self, test_idx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if test_idx is None:
            return self.x_test, self.y_test  # type: ignore[return-value]
        return self.x[test_idx], self.y[test_idx]

    def validation_labels(self, validation_fraction: float = 0.2, seed: int = 0,
                          test_fraction: float | None = None) -> np.ndarray:
        """The labels of the validation split ``splits`` draws (int32 class indices, shape (n_val,)),
        without vectorizing anything: what the majority-class rate and the validation-size check
        read. Arguments as for ``splits``."""
        return self.y[self._indices(validation_fraction, seed, self.resolve_test_fraction(test_fraction))[1]]

    def _indices(self, validation_fraction: float, seed: int,
                 test_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(train_idx, val_idx, test_idx or None for an official test split), before sample_fraction."""
        pool = np.arange(len(self.y))
        test_idx: np.ndarray | None = None
        if not self.has_test_split:
            test_idx = np.empty(0, dtype=int)
            if test_fraction > 0:
                pool, test_idx = stratified_split(self.y, test_fraction, _TEST_SEED)
                pool = np.sort(pool)
        keep, held = stratified_split(self.y[pool], validation_fraction, seed)
        return pool[keep], pool[held], test_idx

    def _make_split(self, validation_fraction: float, seed: int, sample_fraction: float,
                    test_fraction: float) -> tuple:
        """(train_idx, val_idx, test_idx or None for an official test split, Splits, vocabulary)."""
        train_idx, val_idx, test_idx = self._indices(validation_fraction, seed, test_fraction)
        if sample_fraction < 1.0:
            keep, _ = stratified_split(self.y[train_idx], 1.0 - sample_fraction, seed + 1)
            train_idx = train_idx[keep]
        x_test, y_test = self._test_part(test_idx)
        x_train, x_val = self.x[train_idx], self.x[val_idx]
        vocab: list[str] = []
        if self.modality == "text":
            x_train, x_val, x_test, vocab = vectorize(x_train, x_val, x_test, raw_text=self.is_raw_text,
                                                      length=int(self.sequence_length or 0),
                                                      max_tokens=self.max_tokens)
        splits = Splits(x_train, self.y[train_idx], x_val, self.y[val_idx], x_test, y_test)
        return train_idx, val_idx, test_idx, splits, vocab

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
        x_t = as_sample_array(x_test, "x_test")
        if self.modality == "image":
            x_t, _ = as_images(x_t, scale=self.scale, what="x_test")
            if x_t.shape[1:] != self.x.shape[1:]:
                raise ConfigError(f"test images have shape {x_t.shape[1:]}; the dataset's are {self.x.shape[1:]}.")
        labels = self._test_labels(y_test)
        if len(x_t) != len(labels):
            raise ConfigError(f"x_test has {len(x_t)} samples but y_test has {len(labels)}; "
                              "they must have the same length.")
        copy = dataclasses.replace(self, x_test=x_t, y_test=labels, _splits={}, _lock=threading.Lock())
        if self.name.endswith("-" + self.fingerprint[:10]):  # a default name follows the data
            copy.name = f"{self.name[:-10]}{copy.fingerprint[:10]}"
        return copy

    def _test_labels(self, y_test: Any) -> np.ndarray:
        """Test labels as this dataset's class indices, through ``label_values``."""
        values, names = normalize_labels(y_test, "y_test")
        given = self.label_values
        classes = ", ".join(map(str, (self.class_names or given or range(self.num_classes))[:10]))
        if given and isinstance(given[0], str) and not names:
            raise ConfigError(
                f"y_test holds numbers, but dataset {self.name!r} was built from label names ({classes}); pass "
                "the names (integers are not mapped to the sorted names silently)."
            )
        if names and not (given and isinstance(given[0], str)):
            raise ConfigError(f"y_test holds names, but dataset {self.name!r} was built from numeric labels "
                              f"({classes}); pass the same kind of labels.")
        lookup = {v: i for i, v in enumerate(given)} if given else {i: i for i in range(self.num_classes)}
        unknown = sorted({v for v in values.tolist() if v not in lookup}, key=str)
        if unknown:
            raise ConfigError(f"test labels {unknown[:5]} are not classes of dataset {self.name!r} ({classes}).")
        return np.array([lookup[v] for v in values.tolist()], dtype="int32")
