"""``from_arrays``: in-memory samples and labels, through the validation pass."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from .dataset import DEFAULT_TEST_FRACTION, Dataset
from .validation import Modality, as_images, as_sample_array, encode_labels, infer_modality


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
        all_labels, found_names = encode_labels(y_all)
        labels, test_labels = all_labels[: len(np.asarray(y))], all_labels[len(np.asarray(y)):]
    else:
        labels, found_names = encode_labels(y)
    x_arr = as_sample_array(x)
    if len(x_arr) != len(labels):
        raise ConfigError(
            f"x has {len(x_arr)} samples but y has {len(labels)}; they must have the same length."
        )
    if len(x_arr) == 0:
        raise ConfigError("the dataset is empty: pass at least one sample per class.")
    modality = modality or infer_modality(x_arr)
    if modality not in ("image", "text"):
        raise ConfigError(f"modality must be 'image' or 'text', not {modality!r}.")
    scale = 1.0
    x_test = None
    if modality == "image":
        x_arr, scale = as_images(x_arr)
    if test is not None:
        x_test = as_sample_array(test[0])
        if len(x_test) != len(test_labels):
            raise ConfigError(f"x_test has {len(x_test)} samples but y_test has {len(test_labels)}; "
                              "they must have the same length.")
        if modality == "image":
            x_test, _ = as_images(x_test, scale=scale)
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
