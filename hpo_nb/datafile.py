"""``hpo-nb run --data PATH``: the options each kind of data needs, and the dataset they open
(``datasets.from_path``). Kept apart from ``cli.py`` so the command stays a thin layer."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import re
import sys
from fractions import Fraction
from typing import Any, Iterator

from .errors import ConfigError


def options(run: argparse.ArgumentParser) -> None:
    """Add ``--data`` and its options to the ``run`` subcommand."""
    g = run.add_argument_group("your own data (--data)")
    g.add_argument("--data", default=None, metavar="PATH",
                   help="a folder of one subfolder per class (images or .txt files), a .csv/.tsv file, an .npz "
                        "(x, y), an IDX pair IMAGES,LABELS, or a text file of label<TAB>text lines")
    g.add_argument("--label-column", default=None, metavar="COLUMN", help="CSV: the label column (default: one named label, class, "
                                                         "target, ...)")
    g.add_argument("--text-column", default=None, metavar="COLUMN", help="CSV: the text column (text data; else pixel columns)")
    g.add_argument("--image-shape", default=None, metavar="HxW[xC]",
                   help="CSV of pixel rows: one image's shape, e.g. 28x28 or 32x32x3 (default: square, 1 channel)")
    g.add_argument("--image-size", default=None, metavar="HxW",
                   help="folder of images: resize every image to this size, e.g. 32x32 or 32 (default: their own "
                        "size, or the most common one)")
    g.add_argument("--color-mode", default=None, choices=["grayscale", "rgb", "rgba"],
                   help="folder of images: channels (default: grayscale when every image is)")
    g.add_argument("--class-names", default=None, metavar="A,B,...",
                   help="folder: the class subfolders to use, in order (e.g. neg,pos for aclImdb/train)")
    g.add_argument("--sep", default=None, help="text file: the label/text separator (default: a tab); CSV: the "
                                              "field separator")
    g.add_argument("--label-last", action="store_true",
                   help="text file: lines are text<SEP>label (SEP: --sep, a tab by default)")
    g.add_argument("--scale", default=None, type=_scale, metavar="FACTOR",
                   help="images from an .npz or CSV: the factor raw pixel values are multiplied by, e.g. 0.0625 (or "
                        "1/16) for values 0..16 (default: by their type and range: 8-bit integers / 255)")
    g.add_argument("--encoding", default=None, help="text files: the encoding (default: UTF-8, or UTF-16/32 with a "
                                                    "byte-order mark)")


def dataset_from_args(args: argparse.Namespace) -> Any:
    """The registered name (``--dataset``; None: ``Experiment``'s default, "digits" or a resumed
    study's own) or the ``Dataset`` ``--data`` opens.

    Raises:
        ConfigError: both ``--dataset`` and ``--data``, a data option without ``--data``, a bad
            size, or whatever the constructor refuses.
    """
    given = {"--label-column": args.label_column, "--text-column": args.text_column,
             "--image-shape": args.image_shape, "--image-size": args.image_size, "--color-mode": args.color_mode,
             "--class-names": args.class_names, "--sep": args.sep, "--label-last": args.label_last or None,
             "--encoding": args.encoding, "--scale": args.scale}
    if args.data is None:
        stray = [k for k, v in given.items() if v is not None]
        if stray:
            raise ConfigError(f"{', '.join(stray)} {'goes' if len(stray) == 1 else 'go'} with --data PATH (your own data).")
        return args.dataset  # None: Experiment's default ("digits", or a resumed study's own)
    if args.dataset is not None:
        raise ConfigError("pass --dataset NAME (a registered dataset) or --data PATH (your own data), not both.")
    from . import datasets

    shape = _dims("--image-shape", args.image_shape, (2, 3))
    size = _dims("--image-size", args.image_size, (1, 2))
    try:
        with _notes_in_cli_words():
            return datasets.from_path(
                args.data, label=args.label_column, text=args.text_column, image_shape=shape, image_size=size,
                color_mode=args.color_mode, class_names=args.class_names.split(",") if args.class_names else None,
                sep=_unescape(args.sep), label_first=False if args.label_last else None, encoding=args.encoding,
                scale=args.scale,
            )
    except ConfigError as exc:
        raise ConfigError(cli_words(str(exc))) from None


@contextlib.contextmanager
def _notes_in_cli_words() -> Iterator[None]:
    """The readers' notes (``hpo-nb: dataset ...: ... pass scale=1/16 ...``, logged at WARNING) on
    stderr in the CLI's words (``--scale 0.0625``), while ``--data`` is read."""
    class CliWords(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            print(cli_words(record.getMessage()), file=sys.stderr, flush=True)

    logger, handler = logging.getLogger("hpo_nb"), CliWords(logging.WARNING)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False  # not also through a root handler
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _scale(text: str) -> float:
    """``--scale``: a positive number, or a fraction such as 1/16 (-> 0.0625, exactly as Python's 1/16)."""
    try:
        value = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"must be a positive number such as 0.0625 or 1/16, not {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number such as 0.0625 or 1/16, not {text!r}")
    return value


_FLAGS = {"label": "--label-column", "text": "--text-column", "image_shape": "--image-shape",
          "image_size": "--image-size", "color_mode": "--color-mode", "class_names": "--class-names",
          "sep": "--sep", "encoding": "--encoding", "validation_fraction": "--validation-fraction",
          "test_fraction": "--test-fraction", "scale": "--scale"}


def cli_words(message: str) -> str:
    """A constructor's message in the CLI's terms: ``sep=';'`` -> ``--sep ';'``, ``image_size=``
    -> ``--image-size``, ``label_first=False`` -> ``--label-last``; a Python option already
    followed by its flag (``label= (CLI: --label-column)``) becomes the flag alone. Options the CLI
    lacks (``columns=``, ...) stay as they are: they name the Python API. ``scale=1/16`` -> ``--scale 0.0625``."""
    # scale=1/16 -> --scale 0.0625: the factor as a number, exactly (repr), as the flag takes it
    message = re.sub(r"(?<![\w.-])scale=(\d+)/(\d+)\b", lambda m: f"--scale {int(m[1]) / int(m[2])!r}", message)
    message = re.sub(r"\blabel_first=False\b", "--label-last", message)
    message = re.sub(r"\blabel_first=True\b", "no --label-last", message)
    for key, flag in _FLAGS.items():
        message = re.sub(rf"(?<![\w-]){key}(?:=\S*)?\s*\(CLI: ([^)]*)\)", r"\1", message)
        message = re.sub(rf"(?<![\w.-]){key}=('[^']*'|\"[^\"]*\"|\d[\w.]*)", rf"{flag} \1", message)
        message = re.sub(rf"(?<![\w.-]){key}=(?=[\s,.;:)]|$)", flag, message)
        message = re.sub(rf"(?<![\w.-]){key}(?= must\b)", flag, message)
    return message


def _dims(flag: str, text: str | None, lengths: tuple[int, ...]) -> tuple[int, ...] | None:
    """'28x28' -> (28, 28); '32' -> (32, 32) for sizes."""
    if text is None:
        return None
    parts = text.lower().replace("×", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) in lengths and any(d < 1 for d in dims):
        raise ConfigError(f"{flag} sizes must be positive (pixels), not {text!r}.")
    if len(dims) not in lengths:
        raise ConfigError(f"{flag} must look like {'28x28 or 28x28x1' if 3 in lengths else '32x32 or 32'}, not {text!r}.")
    return dims * 2 if len(dims) == 1 else dims


def _unescape(sep: str | None) -> str | None:
    """'\\t' typed in a shell is a tab."""
    return None if sep is None else sep.replace("\\t", "\t")
