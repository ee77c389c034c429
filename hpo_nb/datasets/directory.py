"""``from_directory``: one folder per class, of images or of ``.txt`` files (one sample a file),
read with Keras' own directory readers and then through the validation pass."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from .arrays import from_arrays, name_prefix
from .dataset import DEFAULT_TEST_FRACTION, Dataset
from .encoding import decode
from .validation import Notes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
"""What ``keras.utils.image_dataset_from_directory`` decodes."""
TEXT_SUFFIXES = (".txt",)
UNLABELED = ("unsup", "unlabeled", "unlabelled")
"""Subfolders left out unless ``class_names`` names them: they hold samples without a label."""
_GRAY_MODES = {"1", "L", "I", "I;16", "I;16B", "I;16L", "F"}


def from_directory(
    path: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    image_size: int | tuple[int, int] | None = None,
    color_mode: str | None = None,
    interpolation: str = "bilinear",
    crop_to_aspect_ratio: bool = False,
    encoding: str | None = None,
    name: str | None = None,
    max_tokens: int = 10_000,
    sequence_length: int | None = None,
    test: str | os.PathLike | tuple[Any, Any] | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> Dataset:
    """A folder of one subfolder per class (``path/cat/*.png``, ``path/dog/*.png``, or
    ``aclImdb/train/pos/*.txt``, ``.../neg/*.txt`` as the IMDB reviews archive ships).

    Images (png, jpg/jpeg, bmp, gif; the first frame of an animation) are read by
    ``keras.utils.image_dataset_from_directory`` and resized to one size; ``.txt`` files are one
    sample each (decoded with ``encoding``, the same files and order as
    ``keras.utils.text_dataset_from_directory`` takes). Subfolders of a class folder
    belong to it; files of other types are ignored; a folder holding both images and ``.txt`` files
    is refused. Classes are the subfolder names, sorted (index order), unless ``class_names`` picks
    and orders them; a folder of unlabeled samples (``unsup``, as in IMDB's ``train/``, or
    ``unlabeled``) is left out, and said so.

    Args:
        path: the folder.
        class_names: the subfolders to use, in class-index order; default: every subfolder.
        image_size: the (height, width) every image is resized to, in pixels, or one int for a
            square; default: the images' own size when they all share it, else the most common
            size (announced). Ignored for text.
        color_mode: "grayscale" (1 channel), "rgb" (3) or "rgba" (4); default: "grayscale" when
            every image is grayscale, else "rgb".
        interpolation: the resize method ("bilinear", "nearest", "bicubic", "area", ...).
        crop_to_aspect_ratio: crop to the target aspect ratio instead of distorting.
        encoding: of the ``.txt`` files; None: UTF-8 (UTF-16/32 with a byte-order mark).
        name: the dataset's name; default ``<folder>-<fingerprint>``.
        max_tokens, sequence_length: text vectorization (vocabulary size, tokens per sample).
        test: a folder laid out the same way (read with the same classes and image size), or
            ``(x_test, y_test)``; held out from the search. Default: ``test_fraction`` is held out.
        test_fraction: fraction held out for the test split when ``test`` is None, in [0, 1).

    Returns:
        Dataset: images as float32 in [0, 1] (``scale`` 1/255: 8-bit pixels), shape (n, height,
        width, channels); or raw text (str), labels int32 0..K-1 with the folder names as
        ``class_names``.

    Raises:
        ConfigError: the path is not a folder, has no class subfolders, a class folder holds no
            images or ``.txt`` files, images and texts are mixed, a file is not a readable image, a
            text cannot be decoded (the message names the file and ``encoding=``), a bad
            ``image_size``/``color_mode``, or anything ``from_arrays`` refuses.
    """
    root = Path(path)
    notes = Notes()
    classes, files = _scan(root, class_names, notes)
    kinds = {f.suffix.lower() in IMAGE_SUFFIXES for fs in files.values() for f in fs}
    prefix = _prefix(root)
    if kinds == {True, False}:
        raise ConfigError(f"{root} holds both images and .txt files; keep one kind per dataset.")
    if kinds == {True}:
        size, mode = _image_settings(files, image_size, color_mode, notes)
        x, y = _read_images(root, classes, size, mode, interpolation, crop_to_aspect_ratio)
        test_pair = _read_images(Path(test), classes, size, mode, interpolation, crop_to_aspect_ratio) \
            if isinstance(test, (str, os.PathLike)) else test
        ds = from_arrays(x, y, modality="image", scale=1 / 255, class_names=classes, name=name, test=test_pair,
                         test_fraction=test_fraction, _prefix=prefix)
    else:
        x, y = _read_texts(root, classes, encoding)
        test_pair = _read_texts(Path(test), classes, encoding) if isinstance(test, (str, os.PathLike)) else test
        ds = from_arrays(x, y, modality="text", class_names=classes, name=name, test=test_pair,
                         test_fraction=test_fraction, max_tokens=max_tokens, sequence_length=sequence_length,
                         _prefix=prefix)
    notes.emit(ds.name)
    return ds


def _prefix(root: Path) -> str:
    return name_prefix(root.resolve().name, "folder")


def _scan(root: Path, class_names: Sequence[str] | None,
          notes: Notes | None = None) -> tuple[list[str], dict[str, list[Path]]]:
    """The classes and each one's image or text files (checked: every class has some)."""
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder; from_directory() takes a folder of one subfolder per class.")
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if class_names is None:
        classes = [c for c in found if c.lower() not in UNLABELED]
        if notes is not None and len(classes) < len(found):
            notes.append(f"folder {', '.join(c for c in found if c not in classes)} left out (unlabeled samples, "
                         "as in the IMDB archive's unsup/; pass class_names= to choose the classes)")
    else:
        classes = [str(c) for c in class_names]
        missing = [c for c in classes if c not in found]
        if missing:
            raise ConfigError(f"class folders {missing} are not in {root} (it has {found[:10]}).")
    if len(classes) < 2:
        loose = sum(1 for f in root.iterdir() if f.is_file())
        raise ConfigError(
            f"{root} has {len(classes)} class folder(s){f' and {loose} loose files' if loose else ''}; put the "
            "samples of each class in a subfolder named after it (path/cat/1.png, path/dog/2.png)."
        )
    files: dict[str, list[Path]] = {}
    for c in classes:
        everything = [f for f in sorted((root / c).rglob("*")) if f.is_file() and not f.name.startswith(".")]
        files[c] = [f for f in everything if f.suffix.lower() in IMAGE_SUFFIXES + TEXT_SUFFIXES]
        if not files[c]:
            kinds = sorted({f.suffix.lower() or f.name for f in everything})[:5]
            raise ConfigError(
                f"class folder {root / c} holds no images ({', '.join(IMAGE_SUFFIXES)}) or .txt files"
                f"{f' (only {kinds})' if kinds else ' (it is empty)'}; add samples or leave it out with class_names=."
            )
    return classes, files


def _image_settings(files: dict[str, list[Path]], image_size: Any, color_mode: str | None,
                    notes: Notes) -> tuple[tuple[int, int], str]:
    """(height, width) and color mode: given, or read from the images' headers (PIL, lazily)."""
    from PIL import Image, UnidentifiedImageError

    sizes: Counter[tuple[int, int]] = Counter()
    gray = True
    for f in (f for fs in files.values() for f in fs):
        try:
            with Image.open(f) as img:
                sizes[(img.height, img.width)] += 1
                gray = gray and _is_gray(img)
        except (UnidentifiedImageError, OSError) as exc:
            raise ConfigError(f"{f} is not a readable image ({type(exc).__name__}: {exc}); remove or replace it.") \
                from None
    if image_size is None:
        size, count = sizes.most_common(1)[0]
        if len(sizes) > 1:
            notes.append(f"{sum(sizes.values()) - count} images of other sizes resized to {size[0]}x{size[1]}, the "
                         "most common size (pass image_size= to choose)")
    else:
        size = (image_size, image_size) if isinstance(image_size, int) and not isinstance(image_size, bool) \
            else tuple(image_size) if isinstance(image_size, (tuple, list)) else None
        if size is None or len(size) != 2 or not all(isinstance(d, int) and 1 <= d <= 4096 for d in size):
            raise ConfigError(f"image_size must be (height, width) in pixels, or one int for a square; not "
                              f"{image_size!r}.")
    mode = color_mode or ("grayscale" if gray else "rgb")
    if mode not in ("grayscale", "rgb", "rgba"):
        raise ConfigError(f"color_mode must be 'grayscale', 'rgb' or 'rgba', not {color_mode!r}.")
    return (int(size[0]), int(size[1])), mode


def _is_gray(img: Any) -> bool:
    """Grayscale by mode, or a palette (GIF) whose colours are all grays."""
    if img.mode in _GRAY_MODES:
        return True
    palette = img.getpalette() if img.mode == "P" else None
    return bool(palette) and all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette), 3))


def _read_images(root: Path, classes: list[str], size: tuple[int, int], mode: str, interpolation: str,
                 crop: bool) -> tuple[np.ndarray, np.ndarray]:
    import keras

    _, files = _scan(root, classes)
    # TensorFlow decodes GIFs as RGB only: read those folders as RGB and take the luminance after
    gif = mode == "grayscale" and any(f.suffix.lower() == ".gif" for fs in files.values() for f in fs)
    try:
        data = keras.utils.image_dataset_from_directory(
            str(root), labels="inferred", label_mode="int", class_names=classes, color_mode="rgb" if gif else mode,
            batch_size=256,
            image_size=size, shuffle=False, interpolation=interpolation, crop_to_aspect_ratio=crop, verbose=False,
        )
        batches = [(np.asarray(x), np.asarray(y)) for x, y in data]
    except ValueError as exc:  # Keras' own checks (e.g. an unknown interpolation)
        raise ConfigError(f"cannot read images from {root}: {exc}") from None
    except Exception as exc:  # tf.errors.InvalidArgumentError: a file whose content does not decode
        raise ConfigError(f"an image under {root} cannot be decoded ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200]}); remove or replace it.") from None
    x = np.concatenate([b[0] for b in batches]) if batches else np.zeros((0, *size, 1), "float32")
    if gif:
        x = x @ np.array([[0.2989], [0.587], [0.114]], dtype="float32")  # tf.image.rgb_to_grayscale's weights
    # Keras returns float32 0..255 after resizing: round back to whole pixel values, as read
    x = np.clip(np.round(x), 0, 255).astype("uint8")
    y = np.concatenate([b[1] for b in batches]) if batches else np.zeros(0, "int32")
    return x, y.astype("int32")  # class indices in the order of ``classes``


def _read_texts(root: Path, classes: list[str], encoding: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Every ``.txt`` file of each class folder, decoded here rather than by
    ``keras.utils.text_dataset_from_directory`` (which yields undecoded bytes, without file
    names), so a decode error names the file and the encoding to pass."""
    _, files = _scan(root, classes)
    texts, labels = [], []
    for index, c in enumerate(classes):
        for f in files[c]:
            if f.suffix.lower() not in TEXT_SUFFIXES:
                raise ConfigError(f"{f} is not a .txt file; a folder of texts holds .txt files only.")
            texts.append(decode(f.read_bytes(), encoding, str(f)))
            labels.append(index)
    return np.array(texts, dtype=object), np.array(labels, dtype="int32")
