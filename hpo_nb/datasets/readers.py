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
from typing import Any, Iterable, Mapping

import numpy as np

from ..errors import ConfigError, DatasetUnavailableError
from .arrays import from_arrays
from .dataset import Dataset

OFFLINE_HINT = (
    "Use the bundled dataset instead (dataset='digits'), or bring your own data with "
    "hpo_nb.datasets.from_arrays(x, y), from_idx(...) or from_text_lines(...)."
)


def from_idx(images_path: str | os.PathLike, labels_path: str | os.PathLike, *, name: str = "idx") -> Dataset:
    """Read MNIST-style IDX files (gzip or not)."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim < 2:
        raise ConfigError(f"{images_path} holds a {images.ndim}-D array; expected images (n, rows, cols).")
    return from_arrays(images, labels, modality="image", name=name)


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
    sources: Mapping[str, Any] | str | os.PathLike | Any,
    *,
    sep: str | None = None,
    label_first: bool = True,
    name: str = "text",
    max_tokens: int = 10_000,
    sequence_length: int | None = None,
    encoding: str = "utf-8",
) -> Dataset:
    """Corpora of one sample a line.

    Either a mapping ``{label: file}`` (every line of a file is one sample of that label), or
    one file whose lines are ``label<sep>text`` (``label_first``) or ``text<sep>label``.
    A file is a path or anything with ``read_bytes()``/``open()`` (e.g. ``zipfile.Path``).
    """
    texts: list[str] = []
    labels: list[str] = []
    if isinstance(sources, Mapping):
        for label, source in sources.items():
            for line in _read_lines(source, encoding):
                texts.append(line)
                labels.append(str(label))
    else:
        if sep is None:
            raise ConfigError(
                "one file of 'label<sep>text' lines needs sep= (e.g. sep='\\t'); "
                "or pass a mapping {label: file} with one sample a line."
            )
        for number, line in enumerate(_read_lines(sources, encoding), 1):
            if sep not in line:
                raise ConfigError(f"line {number} of {sources} has no separator {sep!r}: {line[:60]!r}")
            a, b = line.split(sep, 1) if label_first else line.rsplit(sep, 1)
            label, text = (a, b) if label_first else (b, a)
            texts.append(text)
            labels.append(label.strip())
    if not texts:
        raise ConfigError("the text corpus is empty: no non-blank lines were found.")
    return from_arrays(
        np.array(texts, dtype=object), labels, modality="text", name=name,
        max_tokens=max_tokens, sequence_length=sequence_length,
    )


def _read_lines(source: Any, encoding: str) -> Iterable[str]:
    if hasattr(source, "read_bytes"):
        raw = source.read_bytes()
    elif isinstance(source, (str, os.PathLike)):
        raw = Path(source).read_bytes()
    elif hasattr(source, "open"):
        with source.open("rb") as fh:
            raw = fh.read()
    else:
        raise ConfigError(f"cannot read text from {type(source).__name__}; pass a path.")
    for line in raw.decode(encoding, errors="replace").splitlines():
        if line.strip():
            yield line.strip()


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
