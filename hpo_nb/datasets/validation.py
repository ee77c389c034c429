"""The validation pass: what user input means, fixed when that is unambiguous, refused when not.

Every constructor's input goes through here before anything trains. A fix (labels remapped,
images moved to channels-last, 0..255 integers scaled) is announced once, in the log and as a
``UserWarning`` (``Notes``); anything ambiguous or unusable raises ``ConfigError`` naming the
problem and the fix.

Rules:

- **Labels** become class indices 0..K-1 whatever their values: integers (``y + 1`` with values
  1..3 gives 3 classes named "1", "2", "3"), whole-number floats, strings, or one-hot rows.
  Refused: NaN/None labels, continuous targets (more than ``MAX_FLOAT_CLASSES`` distinct
  non-integer values), multi-hot rows, one class, more classes than half the samples (usually a
  wrong column or separator), classes too small to appear in every split.
- **Samples**: a pandas DataFrame's rows are samples (``to_numpy()``); a Series, a list or any
  array-like (``__array__``: another framework's tensors) works too. A list of images of different sizes is refused (resize them first).
- **Modality** (when ``modality=`` is not given): strings or ragged sequences are text; samples
  of 2 or 3 dimensions are images; flat rows are images when their length is square and the values
  are pixels (floats, uint8, or integers in 0..255, e.g. ``pd.read_csv(...).values``), token ids
  when they are integers beyond 255 or of a non-square length; anything else asks for
  ``modality=``.
- **Layout**: (n, h, w), (n, h, w, c) and flat square rows; (n, c, h, w) with c in 1/3/4 is
  moved to channels-last; a shape that reads both ways is refused.
- **Intensity** follows the dtype: uint8 and integers in 0..255 are divided by 255 (said so, with
  the range found, unless they are uint8 reaching above 16), uint16 (and larger integers up to
  65535) by 65535, bool by 1; floats are left as they are, except floats
  holding only whole numbers in 0..255 (with a maximum above 1), which are divided by 255.
  ``scale=`` overrides (the digits loader passes 1/16 for its 0..16 values). NaN/inf are refused.
- **Text**: texts with no word at all (empty or punctuation only) would give an empty vocabulary:
  refused.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from typing import Any, Literal, NamedTuple

import numpy as np

from ..errors import ConfigError

Modality = Literal["image", "text"]
MAX_FLOAT_CLASSES = 10
"""More distinct non-integer label values than this is a continuous (regression) target."""

log = logging.getLogger("hpo_nb")
_WORD = re.compile(r"[^\W_]")  # what survives TextVectorization's lower_and_strip_punctuation


class Notes(list):
    """Fixes made to the input, announced once (log + ``UserWarning``) by ``emit``."""

    def emit(self, name: str) -> None:
        if self:
            message = f"hpo-nb: dataset {name!r}: " + "; ".join(self) + "."
            log.warning(message)
            warnings.warn(message, UserWarning, stacklevel=3)


class Labels(NamedTuple):
    codes: np.ndarray  # int32 class indices 0..K-1, shape (n,)
    values: list | None  # the original value of each class, in index order; None: they were 0..K-1 already
    names: bool  # the labels were names (str), not numbers


def _plain(a: Any) -> Any:
    """pandas objects and other array-likes (``__array__``: tensors of other frameworks, xarray,
    ...) as NumPy; lists and anything else untouched."""
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "to_numpy"):
        return a.to_numpy()
    if hasattr(a, "__array__") or hasattr(a, "__array_interface__"):
        return np.asarray(a)
    return a


def normalize_labels(y: Any, what: str = "y") -> tuple[np.ndarray, bool]:
    """Labels as a flat array of int, float or str values, and whether they are names.

    Raises:
        ConfigError: missing labels, multi-hot rows, continuous targets, a bad shape.
    """
    y_arr = np.asarray(_plain(y))
    if y_arr.ndim == 2 and y_arr.shape[1] == 1:
        y_arr = y_arr.reshape(-1)
    if y_arr.ndim == 2:
        return _from_rows(y_arr, what), False
    if y_arr.ndim != 1:
        raise ConfigError(f"{what} must be one label per sample (n,) or one-hot rows (n, k); got shape {y_arr.shape}.")
    if y_arr.dtype == object:
        missing = [i for i, v in enumerate(y_arr) if v is None or (isinstance(v, float) and math.isnan(v))]
        if missing:
            raise ConfigError(f"{what} has {len(missing)} missing labels (None/NaN), the first at sample {missing[0]}: "
                              "drop those samples or give them a label.")
        if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in y_arr):
            y_arr = y_arr.astype("float64")
        else:
            return y_arr.astype(str), True
    if y_arr.dtype.kind in ("U", "S"):
        return y_arr.astype(str), True
    if y_arr.dtype.kind == "b":
        return y_arr.astype("int64"), False
    if y_arr.dtype.kind in ("i", "u"):
        return y_arr.astype("int64"), False
    if y_arr.dtype.kind != "f":
        raise ConfigError(f"{what} must hold class labels (integers or names), not {y_arr.dtype} values.")
    bad = ~np.isfinite(y_arr)
    if bad.any():
        raise ConfigError(f"{what} has {int(bad.sum())} NaN/inf labels, the first at sample {int(np.argmax(bad))}: "
                          "drop those samples or give them a label.")
    if np.all(y_arr == np.round(y_arr)):
        return y_arr.astype("int64"), False
    distinct = np.unique(y_arr)
    if len(distinct) > MAX_FLOAT_CLASSES:
        raise ConfigError(
            f"{what} looks like a continuous target ({len(distinct)} distinct non-integer values such as "
            f"{distinct[0]:g}, {distinct[len(distinct) // 2]:g}, {distinct[-1]:g}); hpo-nb trains classifiers: "
            "pass class labels (e.g. bins from np.digitize) instead."
        )
    return y_arr, False


def _from_rows(y: np.ndarray, what: str) -> np.ndarray:
    if y.dtype.kind not in ("b", "i", "u", "f") or not np.all(np.isin(y, (0, 1))):
        raise ConfigError(f"{what} has shape {y.shape} but is not one-hot (0/1 rows with one 1): pass one label "
                          "per sample, shape (n,).")
    per_row = y.sum(axis=1)
    if np.any(per_row != 1):
        row = int(np.argmax(per_row != 1))
        raise ConfigError(
            f"{what} has multi-hot rows ({int((per_row != 1).sum())} rows without exactly one 1; row {row} has "
            f"{int(per_row[row])}): hpo-nb trains single-label classifiers; pass one label per sample."
        )
    return y.argmax(axis=1).astype("int64")


def encode_labels(y: Any, what: str = "y") -> Labels:
    """Labels as class indices 0..K-1 (see the module's rules)."""
    values, names = normalize_labels(y, what)
    uniq, codes = np.unique(values, return_inverse=True)
    plain = not names and uniq.dtype.kind == "i" and np.array_equal(uniq, np.arange(len(uniq)))
    return Labels(codes.astype("int32").reshape(-1), None if plain else [v.item() for v in uniq], names)


def check_classes(codes: np.ndarray, class_names: list[str] | None, min_count: int, hint: str = "") -> None:
    """One class, more classes than half the samples, or a class below ``min_count`` samples:
    ConfigError. ``hint`` is added to the "too many classes" message (what the reader suspects)."""
    n, counts = len(codes), np.bincount(codes)
    label = (lambda i: repr(class_names[i])) if class_names else str
    if len(counts) < 2:
        raise ConfigError(f"y has one class ({label(0) if n else 'none'}); a classifier needs 2 or more.")
    if 2 * len(counts) > n:
        raise ConfigError(
            f"more classes than make sense: {len(counts)} classes for {n} samples ({n / len(counts):.1f} per class); "
            f"usually the wrong label column or separator.{' ' + hint if hint else ''}"
        )
    small = np.flatnonzero(counts < min_count)
    if len(small):
        listed = ", ".join(f"{label(i)} ({counts[i]} sample{'s' if counts[i] != 1 else ''})" for i in small[:5])
        raise ConfigError(
            f"classes too small for a validation{' and test' if min_count > 2 else ''} split: {listed}"
            f"{' and more' if len(small) > 5 else ''}; each class needs at least {min_count} samples. Collect more, "
            "merge or drop these classes" + (", or pass test=(x_test, y_test) or test_fraction=0." if min_count > 2
                                              else ".")
        )


def as_sample_array(x: Any, what: str = "x") -> np.ndarray:
    """Samples as one array of length n: a DataFrame's rows, a Series, a list of images (same
    size), texts (object array of str) or ragged token sequences (object array of int arrays)."""
    if hasattr(x, "columns") and hasattr(x, "dtypes"):  # pandas DataFrame: rows are samples
        texty = [c for c, t in x.dtypes.items() if t.kind not in ("b", "i", "u", "f")]
        if texty and len(x.columns) > 1:
            raise ConfigError(f"{what} is a DataFrame with non-numeric columns {list(texty)[:5]}: pass the text column "
                              f"alone (e.g. df[{str(texty[0])!r}]) or numeric pixel columns only.")
        x = x.iloc[:, 0] if texty else x
    x = _plain(x)
    if isinstance(x, np.ndarray) and x.dtype != object:
        return x
    try:
        items = list(x)
    except TypeError:
        raise ConfigError(f"{what} must be an array, a list or a DataFrame of samples, not {type(x).__name__}.") \
            from None
    if items and all(isinstance(i, str) for i in items):
        return np.array(items, dtype=object)
    if any(isinstance(i, str) for i in items):
        missing = [n for n, i in enumerate(items) if not isinstance(i, str)]
        raise ConfigError(f"{what} mixes texts with {len(missing)} non-text samples (e.g. {items[missing[0]]!r} at "
                          f"sample {missing[0]}, a missing value?): drop them or pass them as str.")
    arrays = [np.asarray(i) for i in items]
    if arrays and all(a.ndim >= 2 for a in arrays):
        shapes = sorted({a.shape for a in arrays})
        if len(shapes) > 1:
            counts = {s: sum(a.shape == s for a in arrays) for s in shapes}
            listed = ", ".join(f"{s} x{c}" for s, c in list(counts.items())[:4])
            raise ConfigError(f"{what} is a list of images of different sizes ({listed}); resize them to one size "
                              "first (e.g. PIL's Image.resize or keras.utils.load_img(target_size=...)).")
        return np.stack(arrays)
    if any(a.dtype.kind in ("U", "S", "O") for a in arrays):
        return np.array([str(i) for i in items], dtype=object)
    if arrays and len({a.shape for a in arrays}) == 1:
        return np.stack(arrays)
    out = np.empty(len(arrays), dtype=object)
    out[:] = arrays
    return out


def is_str_array(x: np.ndarray) -> bool:
    return x.dtype.kind in ("U", "S") or (x.dtype == object and len(x) > 0 and isinstance(x[0], str))


def infer_modality(x: np.ndarray, notes: Notes | None = None) -> Modality:
    """"image" or "text" (see the module's rules), or ConfigError asking for ``modality=``."""
    if is_str_array(x) or x.dtype == object:
        return "text"
    if x.dtype.kind not in ("i", "u", "f", "b"):
        raise ConfigError(f"cannot infer the modality of a {x.dtype} array; pass modality='image' or 'text'.")
    if x.ndim in (3, 4):
        return "image"
    if x.ndim == 2:
        square = math.isqrt(x.shape[1]) ** 2 == x.shape[1]
        if x.dtype.kind in ("f", "b", "u") and x.dtype.itemsize == 1 or x.dtype.kind == "f":
            if square:
                return "image"
        elif x.dtype.kind in ("i", "u"):
            top = int(x.max()) if x.size else 0
            if int(x.min(initial=0)) >= 0 and (top > 255 or not square):
                return "text"  # token ids
            if square and top <= 255 and int(x.min(initial=0)) >= 0:
                if notes is not None:
                    notes.append(f"rows of {x.shape[1]} integers in 0..255 taken for {math.isqrt(x.shape[1])}x"
                                 f"{math.isqrt(x.shape[1])} images (pass modality='text' if they are token ids)")
                return "image"
    raise ConfigError(
        f"cannot tell whether x with shape {x.shape} and dtype {x.dtype} holds images or token ids; pass "
        "modality='image' (samples of shape (h, w), (h, w, c) or flat square rows) or modality='text'."
    )


def as_images(x: np.ndarray, scale: float | None = None, notes: Notes | None = None,
              what: str = "x") -> tuple[np.ndarray, float]:
    """Images as float32 (n, h, w, c), multiplied by ``scale`` (inferred from the dtype when None,
    see the module's rules); returns them and the factor."""
    if x.dtype == object or x.dtype.kind not in ("i", "u", "f", "b"):
        raise ConfigError(f"image samples in {what} must be numeric arrays, not {x.dtype}.")
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise ConfigError(f"flat image rows of length {x.shape[1]} are not square; reshape {what} to (n, h, w).")
        x = x.reshape(len(x), side, side)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ConfigError(f"images must be (n, h, w) or (n, h, w, c); got shape {x.shape}.")
    x = _channels_last(x, notes)
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            first = int(np.argmax(bad.reshape(len(x), -1).any(axis=1)))
            raise ConfigError(f"{what} has {int(bad.sum())} NaN/inf values, the first in sample {first}: drop or "
                              "impute those samples before training.")
    if scale is None:
        scale = _intensity_scale(x, notes)
    elif not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ConfigError(f"scale must be a positive number (raw values are multiplied by it), not {scale!r}.")
    out = x.astype("float32")
    if scale != 1.0:
        out *= np.float32(scale)
    return out, float(scale)


def _channels_last(x: np.ndarray, notes: Notes | None) -> np.ndarray:
    ch = (1, 3, 4)
    _, first, mid, last = x.shape
    if last in ch and (first not in ch or first == mid):
        return x
    if first in ch and (last not in ch or mid == last):
        if notes is not None:
            notes.append(f"images of shape {x.shape[1:]} read as channels-first and moved to channels-last "
                         f"{(mid, last, first)}")
        return np.moveaxis(x, 1, -1)
    if first not in ch and last not in ch and first == mid:
        return x  # more channels than RGBA, channels-last
    raise ConfigError(f"cannot tell where the channels are in images of shape {x.shape[1:]}; pass them "
                      "channels-last, (n, height, width, channels).")


def _intensity_scale(x: np.ndarray, notes: Notes | None) -> float:
    if x.size == 0 or x.dtype.kind == "b":
        return 1.0
    if x.dtype == np.uint16:
        return 1.0 / 65535.0
    lo, hi = float(x.min()), float(x.max())
    if x.dtype == np.uint8 and hi > 16:
        return 1.0 / 255.0
    if x.dtype.kind in ("i", "u"):
        if lo < 0:
            raise ConfigError("integer images with negative values: pass them as floats (left as they are) "
                              "or give scale= (raw values are multiplied by it).")
        if hi <= 255:
            if notes is not None:  # uint8 0..255 is the one case that goes without saying
                notes.append(f"{x.dtype} pixels {lo:g}..{hi:g} divided by 255 (integers in 0..255 are read as "
                             f"8-bit pixels); pass scale=1/{hi:g} if {hi:g} is their full range"
                             if hi > 0 else f"{x.dtype} pixels, all 0, divided by 255")
            return 1.0 / 255.0
        if hi <= 65535:
            if notes is not None:
                notes.append(f"{x.dtype} images with values up to {hi:g} scaled as 16-bit (divided by 65535)")
            return 1.0 / 65535.0
        raise ConfigError(f"integer images with values up to {hi:g} (beyond 16 bits): give scale=.")
    if hi > 1 and lo >= 0 and hi <= 255 and np.all(x == np.round(x)):
        if notes is not None:
            full = f"scale=1/{hi:g} if {hi:g} is their full range, or " if hi < 255 else ""
            notes.append(f"float images holding whole numbers {lo:g}..{hi:g} divided by 255 (whole numbers up to 255 "
                         f"are read as 8-bit pixels); pass {full}scale=1 to keep them as they are")
        return 1.0 / 255.0
    return 1.0


def check_texts(x: np.ndarray, what: str = "x") -> None:
    """Raw texts with no word at all, or token ids that are not non-negative integers: ConfigError."""
    if is_str_array(x):
        if not any(_WORD.search(str(t)) for t in x):
            raise ConfigError(f"{what} holds no words: all {len(x)} texts are empty or punctuation only, so the "
                              "vocabulary would be empty; check the text column or separator.")
        return
    for i, seq in enumerate(x):
        seq = np.asarray(seq)
        if seq.size and (seq.dtype.kind not in ("i", "u") or int(seq.min()) < 0):
            raise ConfigError(f"token-id text must be non-negative integers; sample {i} holds {seq.dtype} values "
                              f"down to {seq.min()}. Pass strings, or modality='image' for pixel data.")


def default_sequence_length(x: np.ndarray) -> int:
    lengths = [len(str(s).split()) if isinstance(s, str) else len(s) for s in x[:5000]]
    return int(min(200, max(8, np.percentile(lengths, 95)))) if lengths else 50
