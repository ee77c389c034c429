"""The validation pass: what user input means (labels, modality, image layout and scale), fixed
when it is unambiguous, refused with a ``ConfigError`` naming the fix when it is not."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from ..errors import ConfigError

Modality = Literal["image", "text"]



def encode_labels(y: Any) -> tuple[np.ndarray, list[str] | None]:
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


def as_sample_array(x: Any) -> np.ndarray:
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


def is_str_array(x: np.ndarray) -> bool:
    return x.dtype.kind in ("U", "S") or (x.dtype == object and len(x) > 0 and isinstance(x[0], str))


def infer_modality(x: np.ndarray) -> Modality:
    if is_str_array(x) or x.dtype == object:
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


def as_images(x: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, float]:
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


def default_sequence_length(x: np.ndarray) -> int:
    lengths = [len(str(s).split()) if isinstance(s, str) else len(s) for s in x[:5000]]
    return int(min(200, max(8, np.percentile(lengths, 95)))) if lengths else 50
