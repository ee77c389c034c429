"""``from_arrays``: in-memory samples and labels, through the validation pass."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from .dataset import DEFAULT_TEST_FRACTION, Dataset
from .validation import (Modality, Notes, as_images, as_sample_array, check_classes, check_texts, encode_labels,
                         infer_modality)


def from_arrays(
    x: Any,
    y: Any,
    modality: Modality | None = None,
    *,
    name: str | None = None,
    class_names: Sequence[str] | None = None,
    max_tokens: int = 10_000,
    sequence_length: int | None = None,
    test: tuple[Any, Any] | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    scale: float | None = None,
    _prefix: str = "arrays",
) -> Dataset:
    """Wrap in-memory samples, through the validation pass (``hpo_nb.datasets.validation``: its
    docstring lists every rule). Fixes it makes are announced once (log and ``UserWarning``).

    Args:
        x: samples, length n: images (n, h, w), (n, h, w, c), (n, c, h, w) or flat square rows
            (n, h*w), any numeric dtype; text as str or token-id sequences; a NumPy array, a list, a
            pandas DataFrame (rows are samples) or Series.
        y: labels, length n: integers of any values, class names, or one-hot rows; a list, array or
            pandas Series. They become classes 0..K-1 (sorted values); the values are kept as names.
        modality: "image" or "text"; inferred when None (image data is never taken for token ids:
            an input that reads both ways asks for ``modality=``).
        name: the dataset's name (names the run and the study); default ``arrays-<fingerprint>``,
            so different data never shares a name.
        class_names: names of the classes, in index order (default: the sorted label values; None
            when the labels were 0..K-1 already).
        max_tokens, sequence_length: text vectorization (vocabulary size, tokens per sample).
        test: ``(x_test, y_test)``, a held-out test split in the same form as ``x``/``y`` (labels of
            the same kind and classes); the search never sees it. Default: none, and
            ``test_fraction`` is held out instead.
        test_fraction: fraction of ``x`` held out (stratified, fixed seed) when ``test`` is not
            given; 0.2 by default (see ``DEFAULT_TEST_FRACTION``), 0 for no test split.
        scale: the factor raw pixel values are multiplied by (e.g. 1/16 for 0..16 digits); default
            from the dtype: uint8 and integers in 0..255 1/255, uint16 1/65535, whole-number floats in
            0..255 1/255, other floats 1 (left as they are).

    Returns:
        Dataset: images as float32 (the factor in ``Dataset.scale``), labels int32 0..K-1.

    Raises:
        ConfigError: lengths differ; the data is empty; the modality or image layout cannot be told;
            NaN/inf values; one class, continuous or multi-hot labels, too many or too small classes;
            texts without words; test labels that are not the dataset's classes.
    """
    notes = Notes()
    labels = encode_labels(y)
    x_arr = as_sample_array(x)
    if len(x_arr) != len(labels.codes):
        raise ConfigError(f"x has {len(x_arr)} samples but y has {len(labels.codes)}; they must have the same length.")
    if len(x_arr) == 0:
        raise ConfigError("the dataset is empty: pass at least one sample per class.")
    modality = modality or infer_modality(x_arr, notes)
    if modality not in ("image", "text"):
        raise ConfigError(f"modality must be 'image' or 'text', not {modality!r}.")
    if modality == "image":
        x_arr, scale = as_images(x_arr, scale, notes)
    else:
        check_texts(x_arr)
        scale = 1.0
    found = [str(v) for v in labels.values] if labels.values is not None else None
    if class_names is not None and len(class_names) != len(np.unique(labels.codes)):
        raise ConfigError(f"class_names has {len(class_names)} names but y has {len(np.unique(labels.codes))} classes "
                          f"({', '.join((found or [])[:10])}).")
    if labels.values is not None and not labels.names:
        notes.append(f"labels {_listed(found)} mapped to classes 0..{len(found) - 1} (the values kept as class names)")
    carved = test is None and isinstance(test_fraction, (int, float)) and test_fraction > 0
    check_classes(labels.codes, list(class_names) if class_names else found, 3 if carved else 2)
    ds = Dataset(
        name=name or _prefix, modality=modality, x=x_arr, y=labels.codes, num_classes=int(labels.codes.max()) + 1,
        class_names=list(class_names) if class_names else found, max_tokens=max_tokens,
        sequence_length=sequence_length, scale=float(scale), test_fraction=test_fraction, label_values=labels.values,
    )
    if test is not None:
        ds = ds.with_test(*as_test_pair(test))
    if name is None:
        ds.name = f"{_prefix}-{ds.fingerprint[:10]}"
    notes.emit(ds.name)
    return ds


def name_prefix(text: str, fallback: str) -> str:
    """A default-name prefix from a file or folder name: letters, digits, '_' and '-' (up to 40),
    starting with a letter or digit (run folders and study names take it); ``fallback`` if none."""
    cleaned = "".join(c if c.isalnum() or c in "_-" else "-" for c in text)[:40].lstrip("_-")
    return cleaned or fallback


def as_test_pair(test: Any) -> tuple[Any, Any]:
    """``test=`` as ``(x_test, y_test)``, or ConfigError (e.g. for the samples alone)."""
    if isinstance(test, (tuple, list)) and len(test) == 2:
        return test[0], test[1]
    what = f"an array of shape {np.shape(test)}" if hasattr(test, "shape") else type(test).__name__
    raise ConfigError(f"test must be a pair (x_test, y_test) of samples and their labels; got {what}. "
                      "The test split is scored, so it needs labels.")


def _listed(values: list[str]) -> str:
    return ", ".join(values[:5]) + (f", ... ({len(values)} values)" if len(values) > 5 else "")
