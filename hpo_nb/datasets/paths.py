"""``from_path``: any file or folder the ``hpo-nb run --data`` option takes, by what it is."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .arrays import from_arrays, name_prefix
from .dataset import Dataset

_CLI_FLAGS = {"label": "--label-column", "text": "--text-column", "image_shape": "--image-shape",
              "image_size": "--image-size", "color_mode": "--color-mode", "class_names": "--class-names",
              "sep": "--sep", "label_first": "--label-last", "encoding": "--encoding", "scale": "--scale"}
_NPZ_KEYS = (("x", "y"), ("x_train", "y_train"), ("images", "labels"), ("data", "labels"))


def from_path(path: str | os.PathLike, **options: Any) -> Dataset:
    """Open a dataset by what the path is.

    - a folder: ``from_directory`` (one subfolder per class, of images or ``.txt`` files);
    - ``.csv``/``.tsv`` (``.gz`` too): ``from_csv``;
    - ``.npz``: arrays ``x``/``y`` (or ``x_train``/``y_train``, with ``x_test``/``y_test`` as the
      test split; or ``images``/``labels``) through ``from_arrays``;
    - an IDX pair ``"images-idx3-ubyte,labels-idx1-ubyte"`` (comma-separated), or an images IDX
      file whose labels file is named the MNIST way (``...-images-idx3-...`` next to
      ``...-labels-idx1-...``): ``from_idx``;
    - any other file: ``from_text_lines`` (``label<TAB>text`` lines unless ``sep=`` says otherwise).

    Args:
        path: the file, folder or IDX pair.
        **options: passed to the constructor chosen; options it does not take are refused (e.g.
            ``text=`` for a folder of images), so a misplaced option never goes unnoticed.

    Returns:
        Dataset: the validated dataset.

    Raises:
        ConfigError: the path does not exist, an ``.npz`` without known keys, an IDX images file
            without its labels file, an option the chosen constructor does not take, or anything
            that constructor refuses.
    """
    from . import directory, readers, tables

    text = str(path)
    if "," in text and not Path(text).exists():
        images, labels = (Path(p.strip()) for p in text.split(",", 1))
        _exists(images), _exists(labels)
        return _call(readers.from_idx, "an IDX pair", images, labels, **options)
    p = _exists(Path(text))
    suffixes = [s.lower() for s in p.suffixes]
    if p.is_dir():
        return _call(directory.from_directory, "a folder", p, **options)
    if ".csv" in suffixes or ".tsv" in suffixes:
        return _call(tables.from_csv, "a CSV file", p, **options)
    if suffixes[-1:] == [".npz"]:
        return _call(_from_npz, "an .npz file", p, **options)
    if "idx3" in p.name or "idx1" in p.name:
        partner = p.with_name(p.name.replace("images-idx3", "labels-idx1"))
        if partner == p or not partner.exists():
            raise ConfigError(f"{p} looks like an IDX file; pass the images and labels files as a pair: "
                              f"--data IMAGES,LABELS (no labels file {partner.name} next to it).")
        return _call(readers.from_idx, "an IDX pair", p, partner, **options)
    if options.get("sep") is None:  # the CLI passes sep=None when --sep is not given
        options["sep"] = "\t"
    return _call(readers.from_text_lines, "a text file", p, **options)


def _exists(p: Path) -> Path:
    if not p.exists():
        raise ConfigError(f"{p} does not exist.")
    return p


def _call(fn: Any, what: str, *args: Any, **options: Any) -> Dataset:
    import inspect

    from .tables import from_csv, from_dataframe

    accepted = set(inspect.signature(fn).parameters)
    accepted |= set(inspect.signature({from_csv: from_dataframe, _from_npz: from_arrays}.get(fn, fn)).parameters)
    wrong = sorted(k for k, v in options.items() if v is not None and (k not in accepted or k.startswith("_")))
    if wrong:
        named = ", ".join(f"{k}= (CLI: {_CLI_FLAGS[k]})" if k in _CLI_FLAGS else f"{k}=" for k in wrong)
        raise ConfigError(f"{named} {'does' if len(wrong) == 1 else 'do'} not apply to {what} ({args[0]}).")
    return fn(*args, **{k: v for k, v in options.items() if v is not None})


def _from_npz(path: Path, name: str | None = None, **options: Any) -> Dataset:
    """Arrays saved with ``np.savez`` (see ``from_path``); no pickled objects are loaded."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except ValueError as exc:
        raise ConfigError(f"{path} cannot be read without unpickling objects ({exc}); save plain arrays.") from None
    except OSError as exc:
        raise ConfigError(f"{path} is not an .npz file: {exc}") from None
    for xk, yk in _NPZ_KEYS:
        if xk in arrays and yk in arrays:
            test = (arrays["x_test"], arrays["y_test"]) if xk == "x_train" and "x_test" in arrays else None
            return from_arrays(arrays[xk], arrays[yk], name=name, test=test, _prefix=name_prefix(path.stem, "npz"),
                               **options)
    raise ConfigError(f"{path} holds arrays {sorted(arrays)}; expected x and y (or x_train, y_train[, x_test, "
                      "y_test], or images and labels).")
