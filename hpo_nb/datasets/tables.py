"""``from_dataframe`` and ``from_csv``: a table whose rows are samples, one column of labels and
either one column of text or numeric pixel columns; read with pandas, then the validation pass."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ConfigError
from .arrays import from_arrays, name_prefix
from .dataset import DEFAULT_TEST_FRACTION, Dataset
from .encoding import decode
from .validation import Modality

LABEL_COLUMNS = ("label", "labels", "class", "target", "y", "category", "sentiment")
"""Column names taken for the label when ``label=`` is not given (case-insensitive; exactly one
must be present)."""


def from_dataframe(
    df: Any,
    label: str | None = None,
    *,
    text: str | None = None,
    columns: Sequence[str] | None = None,
    image_shape: Sequence[int] | None = None,
    modality: Modality | None = None,
    name: str | None = None,
    class_names: Sequence[str] | None = None,
    max_tokens: int = 10_000,
    sequence_length: int | None = None,
    scale: float | None = None,
    test: Any = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    _prefix: str = "frame",
) -> Dataset:
    """A pandas DataFrame whose rows are samples.

    Either ``text=`` names the column of texts (str; one sample a row), or the samples are
    numeric columns (``columns=``, default every column but the label): pixel rows such as
    ``label, pixel0 ... pixel783`` (Fashion-MNIST's CSV), reshaped to ``image_shape`` or, without
    it, to square single-channel images.

    Args:
        df: the DataFrame (any object with ``columns`` and ``__getitem__`` as pandas has).
        label: the label column (integers of any values or names); default: the one column named
            as in ``LABEL_COLUMNS`` ("label", "class", "target", ...).
        text: the text column, for text data.
        columns: the sample columns in order (pixel or token-id columns); default: every column
            but ``label``. Ignored with ``text``.
        image_shape: (height, width) or (height, width, channels) of one image; the row's values
            are read in C order (channels last). Default: square images from the column count.
        modality: "image" or "text" for numeric columns ("text" for token-id columns); default:
            "image" (pixel values).
        name: the dataset's name; default ``frame-<fingerprint>``.
        class_names, max_tokens, sequence_length, scale, test_fraction: as for ``from_arrays``.
        test: a held-out DataFrame with the same columns, or ``(x_test, y_test)``.

    Returns:
        Dataset: as ``from_arrays`` builds it (images float32 in [0, 1], raw text as str).

    Raises:
        ConfigError: no such column (the message lists the columns), no label column found, missing
            texts or labels, non-numeric sample columns, a column count that does not fit
            ``image_shape`` or a square, or anything ``from_arrays`` refuses.
    """
    if not hasattr(df, "columns"):
        raise ConfigError(f"from_dataframe() takes a pandas DataFrame, not {type(df).__name__}; use from_arrays(x, y).")
    if any(not isinstance(c, str) for c in df.columns):
        df = df.rename(columns=str)  # e.g. read with header=None: columns 0, 1, ... are named "0", "1", ...
    all_columns = list(df.columns)
    label = _label_column(all_columns, label)
    x = _samples(df, label, text, columns, image_shape, all_columns)
    if modality is None and text is None:
        if image_shape is not None or math.isqrt(x.shape[1]) ** 2 == x.shape[1]:
            modality = "image"  # numeric sample columns are pixels unless modality='text' says token ids
        else:
            raise ConfigError(f"{x.shape[1]} sample columns do not make a square image; pass image_shape=(height, "
                              "width) or (height, width, channels) (CLI: --image-shape 28x28), modality='text' for "
                              "token ids, or text= for a text column.")
    test_pair = test
    if test is not None and hasattr(test, "columns"):
        test = test.rename(columns=str)
        test_cols = list(test.columns)
        missing = [c for c in [label, *([text] if text else columns or [c for c in all_columns if c != label])]
                   if c not in test_cols]
        if missing:
            raise ConfigError(f"the test DataFrame lacks the columns {missing[:5]}.")
        test_pair = (_samples(test, label, text, columns, image_shape, all_columns), test[label])
    return from_arrays(x, df[label], modality="text" if text else modality, name=name, class_names=class_names,
                       max_tokens=max_tokens, sequence_length=sequence_length, scale=scale, test=test_pair,
                       test_fraction=test_fraction, _prefix=_prefix)


def from_csv(
    path: str | os.PathLike,
    label: str | None = None,
    *,
    text: str | None = None,
    image_shape: Sequence[int] | None = None,
    sep: str | None = None,
    encoding: str | None = None,
    read_csv: Mapping[str, Any] | None = None,
    name: str | None = None,
    **options: Any,
) -> Dataset:
    """A CSV (or TSV) file with a header row, read by ``pandas.read_csv``, then ``from_dataframe``.

    Args:
        path: the file (``.csv``, ``.tsv``; gzip-compressed too).
        label: the label column; default: the one column named "label", "class", "target", ...
        text: the text column, for text data; without it the other columns are pixel values.
        image_shape: (height, width) or (height, width, channels) of one image (pixel rows).
        sep: the field separator; default "\\t" for ``.tsv``/``.tab`` files, else ",".
        encoding: the file's encoding; None: UTF-8 (UTF-16/32 with a byte-order mark). A UTF-8
            byte-order mark never reaches the first column's name.
        read_csv: more ``pandas.read_csv`` options (e.g. ``{"quotechar": "'"}``).
        name: the dataset's name; default ``<file stem>-<fingerprint>``.
        **options: ``from_dataframe``'s other options (``columns``, ``modality``, ``class_names``,
            ``test``, ``test_fraction``, ...).

    Returns:
        Dataset: as ``from_dataframe`` builds it.

    Raises:
        ConfigError: the file cannot be read, decoded (the message names ``encoding=``) or parsed as
            CSV (the message names the line), it has no rows, or anything ``from_dataframe`` refuses.
    """
    import pandas as pd

    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror or exc}.") from None
    content = decode(raw, encoding, str(p))
    suffixes = [s.lower() for s in p.suffixes]
    sep = sep or ("\t" if ".tsv" in suffixes or ".tab" in suffixes else ",")
    try:
        df = pd.read_csv(io.StringIO(content), sep=sep, **dict(read_csv or {}))
    except pd.errors.EmptyDataError:
        raise ConfigError(f"{p} is empty.") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise ConfigError(f"{p} cannot be parsed as CSV with sep={sep!r}: {str(exc).strip()}") from None
    if len(df) == 0:
        raise ConfigError(f"{p} has a header ({', '.join(map(str, df.columns[:5]))}) but no rows.")
    return from_dataframe(df, label, text=text, image_shape=image_shape, name=name, _prefix=_stem(p), **options)


def _stem(p: Path) -> str:
    return name_prefix(p.name.split(".")[0], "csv")


def _label_column(columns: list[str], label: str | None) -> str:
    if label is not None:
        if label not in columns:
            raise ConfigError(f"no column {label!r}; the columns are {_listed(columns)}.")
        return label
    found = [c for c in columns if c.strip().lower() in LABEL_COLUMNS]
    if len(found) != 1:
        why = "none is" if not found else f"{found} are"
        raise ConfigError(f"which column holds the labels? {why} named like one ({', '.join(LABEL_COLUMNS)}); pass "
                          f"label= (CLI: --label-column) with one of {_listed(columns)}.")
    return found[0]


def _samples(df: Any, label: str, text: str | None, columns: Sequence[str] | None,
             image_shape: Sequence[int] | None, all_columns: list[str]) -> Any:
    """The sample array of a DataFrame: its text column, or its numeric columns as rows/images."""
    if text is not None:
        if text not in all_columns:
            raise ConfigError(f"no text column {text!r}; the columns are {_listed(all_columns)}.")
        if text == label:
            raise ConfigError(f"the text column and the label column are both {text!r}.")
        col = df[text]
        missing = col.isna().to_numpy() if hasattr(col, "isna") else None
        if missing is not None and missing.any():
            first = int(missing.argmax())
            raise ConfigError(f"column {text!r} has {int(missing.sum())} empty cells (the first in row {first}); "
                              f"drop those rows (df.dropna(subset=[{text!r}])) or fill them.")
        return col.astype(str).to_numpy(dtype=object)
    cols = [str(c) for c in columns] if columns is not None else [c for c in all_columns if c != label]
    unknown = [c for c in cols if c not in all_columns]
    if unknown:
        raise ConfigError(f"no columns {unknown[:5]}; the columns are {_listed(all_columns)}.")
    frame = df[cols]
    texty = [c for c, t in frame.dtypes.items() if t.kind not in ("b", "i", "u", "f")]
    if texty:
        raise ConfigError(f"columns {texty[:5]} are not numeric; for text pass text= (CLI: --text-column) with the "
                          f"text column, or pick the numeric sample columns with columns=.")
    values = frame.to_numpy()
    if image_shape is None:
        return values
    shape = tuple(int(d) for d in image_shape)
    if len(shape) not in (2, 3) or math.prod(shape) != values.shape[1]:
        raise ConfigError(f"image_shape {shape} holds {math.prod(shape)} values but rows have {values.shape[1]} "
                          "sample columns; pass (height, width) or (height, width, channels) that fit.")
    return values.reshape((len(values), *shape))


def _listed(columns: list[str]) -> str:
    return ", ".join(repr(c) for c in columns[:8]) + (f", ... ({len(columns)} columns)" if len(columns) > 8 else "")
