"""Readers for data in files: IDX (MNIST), text of one sample a line, the GTSRB archive, and a
checksum-verified download into the cache."""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DatasetUnavailableError
from .arrays import from_arrays
from .dataset import Dataset
from .encoding import decode
from .validation import Notes

OFFLINE_HINT = (
    "Use the bundled dataset instead (dataset='digits'), or bring your own data with "
    "hpo_nb.datasets.from_arrays(x, y), from_directory(...), from_csv(...), from_idx(...) or from_text_lines(...)."
)


def from_idx(images_path: str | os.PathLike, labels_path: str | os.PathLike, *, name: str | None = None) -> Dataset:
    """Read MNIST-style IDX files (gzip or not) into an image dataset.

    Args:
        images_path: an IDX file of images, uint8, shape (n, rows, cols) (e.g.
            ``t10k-images-idx3-ubyte.gz``).
        labels_path: an IDX file of n integer labels.
        name: the dataset's name; None derives one from the data's fingerprint.

    Returns:
        Dataset: modality "image", pixels scaled by the dtype (uint8 / 255), through the same
        validation pass as ``from_arrays``.

    Raises:
        ConfigError: a file is not IDX, holds fewer than 2 dimensions of images, or its labels
            fail the validation pass (one class, counts that differ, ...).
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim < 2:
        raise ConfigError(f"{images_path} holds a {images.ndim}-D array; expected images (n, rows, cols).")
    return from_arrays(images, labels, modality="image", name=name, _prefix="idx")


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
    sources: Mapping[str, Any] | str | os.PathLike | Sequence[str] | Any,
    *,
    sep: str | None = None,
    label_first: bool = True,
    label: Callable[[str], Any] | None = None,
    header: bool | None = None,
    name: str | None = None,
    max_tokens: int = 10_000,
    sequence_length: int | None = None,
    encoding: str | None = None,
) -> Dataset:
    """Corpora of one sample a line.

    Either a mapping ``{label: source}`` (every line of a source is one sample of that label), a
    directory (each file in it is one class, named by its file name: ``rt-polarity.pos`` and
    ``rt-polarity.neg`` give the classes "neg" and "pos"; a README or LICENSE file is skipped), or
    one source whose lines are
    ``label<sep>text`` (``label_first``) or ``text<sep>label``.

    Args:
        sources: the mapping, a directory, or one source. A source is a path, anything with
            ``read_bytes()`` or ``open()`` (e.g. ``zipfile.Path``), a file object or ``io.StringIO``
            (``read()``), or a list of str (one line each).
        sep: the separator between label and text (one-source form), e.g. "\t".
        label_first: True: ``label<sep>text``; False: ``text<sep>label`` (split at the last ``sep``).
        label: maps each raw label (a str) to the label kept, e.g. ``lambda s: s.split(":")[0]``
            for ``coarse:fine`` labels (in the mapping and directory forms, it maps the keys).
        header: one-source form: True drops the first line, False keeps it; None (default) drops
            it when it reads as a header (a label seen once, such as "label", "class" or
            "sentiment", or a text field such as "text" or "review"), and says so.
        name: the dataset's name; default ``text-<fingerprint>``.
        max_tokens, sequence_length: text vectorization (vocabulary size, tokens per sample).
        encoding: of the bytes read; None: UTF-8, or UTF-16/32 when the file starts with their
            byte-order mark (``datasets.encoding``). A byte-order mark is dropped; lines end at
            "\n" or "\r\n" only (a U+0085 or U+2028 inside a sentence stays in it); blank lines
            are skipped.

    Returns:
        Dataset: raw text, classes from the (mapped) labels.

    Raises:
        ConfigError: a source cannot be read or decoded (the message names the file and
            ``encoding=``); a line without ``sep``; an empty corpus or directory; more classes than
            make sense (the message says when the label is probably at the other end:
            ``label_first=``); anything ``from_arrays`` refuses.
    """
    texts: list[str] = []
    labels: list[Any] = []
    hint = ""
    notes = Notes()
    if isinstance(sources, (str, os.PathLike)) and Path(sources).is_dir():
        sources = _class_files(Path(sources), notes)
    if isinstance(sources, Mapping):
        for key, source in sources.items():
            lines = list(_read_lines(source, encoding))
            texts += lines
            labels += [label(str(key)) if label else str(key)] * len(lines)
    else:
        if sep is None:
            raise ConfigError(
                "one source of 'label<sep>text' lines needs sep= (e.g. sep='\\t'); "
                "or pass a mapping {label: file} with one sample a line."
            )
        other: list[str] = []
        raw_labels: list[str] = []
        for number, line in enumerate(_read_lines(sources, encoding), 1):
            if sep not in line:
                if number == 1 and header is not False:
                    notes.append(f"the first line {line[:40]!r} has no separator and was skipped as a header")
                    continue
                raise ConfigError(f"line {number} of {_describe(sources)} has no separator {sep!r}: {line[:60]!r}")
            a, b = line.split(sep, 1) if label_first else line.rsplit(sep, 1)
            raw, text = (a, b) if label_first else (b, a)
            texts.append(text.strip())
            raw_labels.append(raw.strip())
            other.append((line.rsplit(sep, 1)[1] if label_first else line.split(sep, 1)[0]).strip())
        if raw_labels and _drop_header(raw_labels, texts, header):
            if header is None:
                notes.append(f"the first line ({raw_labels[0]!r}, {texts[0][:30]!r}) read as a header and skipped "
                             "(pass header=False to keep it)")
            del raw_labels[0], texts[0], other[0]
        labels = [label(r) if label else r for r in raw_labels]
        distinct_other = set(other)
        if 2 * len(distinct_other) <= len(texts) < 2 * len(set(map(str, labels))):
            hint = (f"The {'last' if label_first else 'first'} field has only {len(distinct_other)} distinct values: "
                    f"pass label_first={not label_first}.")
    if not texts:
        raise ConfigError("the text corpus is empty: no non-blank lines were found.")
    if hint:
        raise ConfigError(f"more classes than make sense: {len(set(map(str, labels)))} classes for {len(texts)} "
                          f"lines, one per line or so. {hint}")
    ds = from_arrays(np.array(texts, dtype=object), labels, modality="text", name=name, max_tokens=max_tokens,
                     sequence_length=sequence_length, _prefix="text")
    notes.emit(ds.name)
    return ds


_LABEL_WORDS = {"label", "labels", "class", "category", "target", "sentiment", "polarity", "y", "tag", "intent"}
_TEXT_WORDS = {"text", "texts", "sentence", "review", "message", "comment", "content", "document", "body",
               "question", "tweet", "sms", "title"}


def _drop_header(raw_labels: list[str], texts: list[str], header: bool | None) -> bool:
    """Whether the first parsed line is a header (see ``from_text_lines``' ``header``)."""
    if header is not None:
        return header
    first = raw_labels[0]
    once = raw_labels.count(first) == 1
    return once and (first.lower() in _LABEL_WORDS or texts[0].lower() in _TEXT_WORDS)


_DOCS = {"README", "LICENSE", "LICENCE", "COPYING", "CHANGES", "CHANGELOG", "CITATION", "NOTICE"}


def _class_files(folder: Path, notes: Notes) -> dict[str, Path]:
    """A directory of one file per class as ``{class name: file}``: file stems when they differ,
    else their extensions (``rt-polarity.pos``/``.neg``), else the whole names. Documentation
    shipped beside the data (README, LICENSE, ...) is skipped, and said so."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    docs = [p for p in files if p.name.split(".")[0].upper() in _DOCS]
    if docs:
        notes.append(f"{', '.join(p.name for p in docs)} in {folder} skipped (documentation, not a class)")
        files = [p for p in files if p not in docs]
    if len(files) < 2:
        raise ConfigError(f"{folder} holds {len(files)} file(s); a directory of text lines needs one file per "
                          "class (2 or more), or use from_directory() for one file per sample.")
    for key in (lambda p: p.stem, lambda p: p.suffix.lstrip("."), lambda p: p.name):
        names = [key(p) for p in files]
        if all(names) and len(set(names)) == len(names):
            return dict(zip(names, files))
    raise AssertionError("file names in one directory are unique")  # pragma: no cover


def _describe(source: Any) -> str:
    return f"{len(source)} lines" if isinstance(source, (list, tuple)) else str(getattr(source, "name", source))


def _read_lines(source: Any, encoding: str | None) -> Iterable[str]:
    """The non-blank lines of a source, stripped (see ``from_text_lines``)."""
    if isinstance(source, (list, tuple)):
        if not all(isinstance(line, str) for line in source):
            raise ConfigError("a list of lines must hold str only.")
        text = "\n".join(source)
    else:
        if hasattr(source, "read_bytes"):
            raw = source.read_bytes()
        elif isinstance(source, (str, os.PathLike)):
            try:
                raw = Path(source).read_bytes()
            except OSError as exc:
                raise ConfigError(f"cannot read {source}: {exc.strerror or exc}.") from None
        elif hasattr(source, "open"):
            with source.open("rb") as fh:
                raw = fh.read()
        elif hasattr(source, "read"):
            raw = source.read()
        else:
            raise ConfigError(f"cannot read text from {type(source).__name__}; pass a path, a file object or a "
                              "list of str.")
        text = decode(raw, encoding, _describe(source))
    for line in text.split("\n"):  # not str.splitlines(): U+0085, U+2028 ... are not line ends here
        line = line.removesuffix("\r").strip()
        if line:
            yield line


def download(url: str, dest: Path, md5: str) -> Path:
    """Download once into the cache with ``keras.utils.get_file`` and verify the md5 checksum
    (a cached file is checked too and fetched again when it does not match; a bad download is removed).

    Raises:
        DatasetUnavailableError: the download failed or its checksum does not match.
    """
    from keras.utils import get_file

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        return Path(get_file(dest.name, origin=url, file_hash=md5, hash_algorithm="md5",
                             cache_dir=str(dest.parent), cache_subdir=""))
    except ValueError as exc:  # get_file keeps a download whose hash does not match
        dest.unlink(missing_ok=True)
        raise DatasetUnavailableError(f"checksum mismatch for {url}: expected md5 {md5}. {exc}") from exc
    except Exception as exc:  # get_file wraps URL errors in a bare Exception
        raise DatasetUnavailableError(f"could not download {url}: {exc}. {OFFLINE_HINT}") from exc


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
