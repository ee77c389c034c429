"""Bytes to text, one way for every reader: the encoding named, or UTF-8 (UTF-16/32 when the bytes
start with their byte-order mark); a decode error names the file, what the bytes look like, and
``encoding=``. A byte-order mark never becomes part of the first field."""

from __future__ import annotations

import codecs
import gzip

from ..errors import ConfigError

_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)


def sniff_encoding(raw: bytes) -> str:
    """The encoding a byte-order mark announces, else "utf-8"."""
    return next((name for bom, name in _BOMS if raw.startswith(bom)), "utf-8")


def decode(raw: bytes | str, encoding: str | None, where: str) -> str:
    """``raw`` as text (gzip-compressed bytes are decompressed first).

    Args:
        raw: the bytes read (a str is returned as it is, less a byte-order mark).
        encoding: a Python codec name ("utf-8", "latin-1", "cp1252", ...); None: UTF-8, or UTF-16/32
            when the bytes start with their byte-order mark.
        where: the file, for messages.

    Returns:
        str: the text, without a leading byte-order mark.

    Raises:
        ConfigError: the bytes are not valid in the encoding (the message names the byte, its offset,
            the encoding a charset detector reads them as, and ``encoding=``), or an unknown encoding.
    """
    if isinstance(raw, str):
        return raw.removeprefix("\ufeff")
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    chosen = encoding or sniff_encoding(raw)
    try:
        text = raw.decode(chosen)
    except UnicodeDecodeError as exc:
        guess = _detected(raw)
        seen = f"; it reads as {guess} (encoding={guess!r})" if guess and guess != chosen else ""
        raise ConfigError(
            f"{where} is not valid {chosen} (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}){seen}: "
            f"pass encoding= with the file's encoding (encoding='latin-1' decodes any bytes)."
        ) from None
    except LookupError:
        raise ConfigError(f"unknown encoding {encoding!r}; e.g. 'utf-8', 'latin-1' or 'cp1252'.") from None
    return text.removeprefix("\ufeff")


def _detected(raw: bytes) -> str | None:
    """What charset-normalizer reads the bytes as (a hint for the error only: never applied silently)."""
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a dependency
        return None
    best = from_bytes(raw[:200_000]).best()
    return None if best is None else str(best.encoding)
