"""Fitting tick labels into a figure: long names shortened with an ellipsis (kept distinct, the
full name goes in the hover), their drawn width estimated so margins can be reserved for them,
and every k-th label kept when the rows are too thin for all. Pure functions, no drawing."""

from __future__ import annotations

import math
from typing import Sequence

MAX_LABEL_CHARS = 24  # a tick label longer than this is shortened ("…"); the hover keeps the full name
CHAR_PX = 7.0  # px per character of Plotly's default 12 px font (a little over its average, so labels fit)
MIN_ROW_PX = 14.0  # px a horizontal 12 px label needs so that neighbours do not touch
ELLIPSIS = "…"


def short_labels(names: Sequence[str], max_chars: int = MAX_LABEL_CHARS) -> list[str]:
    """The names, each at most ``max_chars`` characters, distinct where the names are.

    A long name keeps its start ("Very long categ…"); when that would make two labels equal,
    the part that tells the names apart is kept instead ("…001 (subgroup alpha)"), starting at
    the word where the names first differ.

    Args:
        names: the full names.
        max_chars: the longest label (>= 4 characters).

    Returns:
        list[str]: one label per name, in order.
    """
    names = [str(n) for n in names]
    if all(len(n) <= max_chars for n in names):
        return names
    head = [n if len(n) <= max_chars else n[: max_chars - 1].rstrip() + ELLIPSIS for n in names]
    if len(set(head)) == len(set(names)):
        return head
    start = _first_difference(names)
    return [n if len(n) <= max_chars else _tail(n, start, max_chars) for n in names]


def _first_difference(names: list[str]) -> int:
    """Where the names stop sharing a prefix, moved back to the start of that word."""
    prefix = len(names[0])
    for n in names[1:]:
        prefix = min(prefix, next((i for i, (a, b) in enumerate(zip(names[0], n)) if a != b), min(len(n), prefix)))
    while prefix > 0 and not names[0][prefix - 1].isspace():
        prefix -= 1
    return prefix


def _tail(name: str, start: int, max_chars: int) -> str:
    """"…" + the name from ``start``, cut at the end if it is still too long."""
    rest = name[start:] if 0 < start < len(name) else name[-(max_chars - 1):]
    label = ELLIPSIS + rest
    return label if len(label) <= max_chars else label[: max_chars - 1].rstrip() + ELLIPSIS


def label_px(labels: Sequence[str], font_px: float = 12.0) -> float:
    """Estimated drawn width of the longest label, px (0 when there is none)."""
    return max((len(s) for s in labels), default=0) * CHAR_PX * font_px / 12.0


def tick_step(rows: int, row_px: float, min_px: float = MIN_ROW_PX) -> int:
    """Label every k-th of ``rows`` rows of ``row_px`` px each so that labels do not overlap (1:
    every row).

    Args:
        rows: how many rows (>= 0).
        row_px: the drawn height of one row, px.
        min_px: the height a label needs, px.

    Returns:
        int: k >= 1.
    """
    if rows <= 1 or row_px >= min_px:
        return 1
    return max(1, math.ceil(min_px / max(row_px, 1e-9)))
