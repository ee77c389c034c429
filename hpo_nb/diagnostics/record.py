"""What a trial's diagnostics look like on the wire and in storage, and the size bound.

A trial returns its diagnostics as one JSON dict (``TrialOutcome.diagnostics``): per-epoch
gradient norms and weight histograms, the validation confusion matrix with per-class precision
and recall, and a description of its activation maps. The activation arrays themselves travel
inline as base64 ``.npz`` (``INLINE_KEY``) and are moved into Optuna's artifact store by the
driver before the trial is stored (``hpo_nb.diagnostics.store``).

The bound: the JSON summary is at most ``MAX_SUMMARY_BYTES`` (256 KiB) and the inline
artifacts at most ``MAX_INLINE_BYTES`` (512 KiB of base64), so a RunPod result (the whole
``TrialOutcome``) stays under ``executors.runpod.wire.MAX_RESULT_BYTES`` (1 MiB), a tenth of the
10 MiB RunPod accepts in a request body. ``fit_to_bound`` enforces it by thinning the stored
histogram epochs or dropping the largest piece, one step at a time, until it fits, and says what it dropped, with each piece's size, under ``"trimmed"``. Pure functions over dicts and numpy arrays.
"""

from __future__ import annotations

import base64
import io
import json
import math
from typing import Any, Mapping

import numpy as np

VERSION = 2  # 2: histogram values outside the range counted in under/over/nan (1: clipped into the end
# bins); non-finite gradient norms and statistics stored as null (1: as 0)
ATTR = "diagnostics"  # the user attribute (TrialOutcome field) that holds the summary
INLINE_KEY = "inline"  # name -> base64 .npz, only between the trial and the driver
ARTIFACTS_KEY = "artifacts"  # name -> Optuna artifact id, once stored
ACTIVATIONS = "activations.npz"
MAX_SUMMARY_BYTES = 256 * 1024
MAX_INLINE_BYTES = 512 * 1024
HISTOGRAM_BINS = 30
MAX_HISTOGRAM_EPOCHS = 26  # init + 25 epochs at most; longer runs keep an even subset


def json_size(data: Any) -> int:
    """Bytes of ``data`` as compact JSON (how the wire and Optuna's storage hold it)."""
    return len(json.dumps(data, separators=(",", ":"), allow_nan=False))


def round_list(values: Any, digits: int = 4) -> list[Any]:
    """Nested float lists with ``digits`` significant digits; NaN and infinities become None
    (JSON null: strict JSON has no NaN, and a 0 would pass for a measurement)."""
    arr = np.asarray(values, dtype=float)
    return [float(f"{v:.{digits}g}") if math.isfinite(v) else None for v in arr.reshape(-1).tolist()] \
        if arr.ndim <= 1 else [round_list(row, digits) for row in arr]


def unround(values: Any) -> tuple[float, ...]:
    """A flat list ``round_list`` wrote, back as floats: None (a NaN or infinite value) as NaN."""
    return tuple(math.nan if v is None else float(v) for v in values)


def encode_arrays(arrays: Mapping[str, np.ndarray]) -> str:
    """Arrays as a compressed ``.npz`` in base64 text (JSON-safe).

    Args:
        arrays: name -> array (any shape; float arrays are best passed as float16).

    Returns:
        str: ASCII base64.
    """
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_arrays(data: str | bytes) -> dict[str, np.ndarray]:
    """The inverse of ``encode_arrays`` (also takes the raw ``.npz`` bytes of a stored artifact).

    Args:
        data: base64 text, or ``.npz`` bytes.

    Returns:
        dict[str, numpy.ndarray]: name -> array.
    """
    raw = base64.b64decode(data) if isinstance(data, str) else data
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def thin_indices(n: int, keep: int) -> list[int]:
    """``keep`` indices out of ``range(n)``, evenly spread, always with the first and the last."""
    if n <= keep:
        return list(range(n))
    if keep <= 1:
        return [n - 1]
    return sorted({round(i * (n - 1) / (keep - 1)) for i in range(keep)})


def _thin_histograms(summary: dict[str, Any], keep: int) -> None:
    weights = summary.get("weights") or {}
    epochs = weights.get("epochs") or []
    idx = thin_indices(len(epochs), keep)
    if len(idx) == len(epochs):
        return
    weights["epochs"] = [epochs[i] for i in idx]
    for layer in (weights.get("layers") or {}).values():
        for part in layer.values():
            for key in ("counts", "under", "over", "nan", "stats"):
                if key in part:
                    part[key] = [part[key][i] for i in idx]


def fit_to_bound(summary: dict[str, Any], max_bytes: int = MAX_SUMMARY_BYTES,
                 max_inline_bytes: int = MAX_INLINE_BYTES) -> dict[str, Any]:
    """Make a diagnostics summary fit the bound, in place.

    While the JSON summary is over the bound, takes the largest of the weight histograms, the
    confusion matrix, the per-class table and the gradient norms: histograms are thinned
    (halving their epochs, first and last kept) while they have more than two, anything else is
    dropped; so a huge confusion matrix (many classes) costs only itself. Inline artifacts are dropped largest first while they are over
    ``max_inline_bytes`` (the producer shrinks them first: ``collect`` keeps fewer channels).
    Each drop is listed in ``summary["trimmed"]`` with its own size and the bound it broke.

    Args:
        summary: the diagnostics dict (``TrialOutcome.diagnostics``), with ``INLINE_KEY`` if any.
        max_bytes: bound of the summary without the inline artifacts, in bytes of compact JSON.
        max_inline_bytes: bound of all inline artifacts together, in base64 characters.

    Returns:
        dict: the same ``summary``, now within both bounds.
    """
    trimmed: list[str] = summary.setdefault("trimmed", [])
    inline = summary.get(INLINE_KEY) or {}
    while inline and (total := sum(len(v) for v in inline.values())) > max_inline_bytes:
        name = max(inline, key=lambda k: len(inline[k]))
        trimmed.append(f"artifact {name} dropped: {len(inline.pop(name))} bytes, the artifacts were {total} "
                       f"bytes together, over the {max_inline_bytes}-byte bound")

    def size() -> int:
        return json_size({k: v for k, v in summary.items() if k != INLINE_KEY})

    keep = MAX_HISTOGRAM_EPOCHS
    labels = {"weights": "weight histograms", "per_class": "per-class table", "confusion_matrix": "confusion matrix",
              "gradients": "gradient norms"}
    while (total := size()) > max_bytes:
        present = [k for k in labels if summary.get(k) is not None]
        if not present:
            break
        key = max(present, key=lambda k: json_size(summary[k]))  # the largest first: only what is needed
        epochs = (summary.get("weights") or {}).get("epochs") or []
        if key == "weights" and len(epochs) > 2:  # histograms: fewer epochs before none
            keep = max(2, min(keep, len(epochs)) // 2)
            _thin_histograms(summary, keep)
            trimmed[:] = [t for t in trimmed if not t.startswith("weight histograms thinned")]
            trimmed.append(f"weight histograms thinned to {keep} epochs")
            continue
        piece = json_size(summary.pop(key))
        trimmed.append(f"{labels[key]} dropped: {piece} bytes, the summary was {total} bytes, "
                       f"over the {max_bytes}-byte bound")
    if not trimmed:
        summary.pop("trimmed")
    return summary
