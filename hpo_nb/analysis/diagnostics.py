"""Per-trial diagnostics as plain data, ready to draw: learning curves, the confusion matrix
with per-class precision and recall, gradient flow (layers x epochs), weight and bias
histograms per epoch, activation maps. Pure functions over stored records (a trial's
``history`` and ``diagnostics``, ``hpo_nb.diagnostics.record``) and, for the live gradient flow,
over ``EpochDiagnostics`` events; no drawing here (``hpo_nb.views.diagnostic_plots`` draws)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError


def require(diagnostics: Mapping[str, Any], key: str, trial: int) -> Any:
    """A piece of a trial's diagnostics, or a ConfigError saying why it is not there."""
    if not diagnostics:
        raise ConfigError(f"trial {trial} has no diagnostics: it ran with diagnostics=False, ended before "
                          "training, or was recorded by an older hpo-nb. Run new trials to get them.")
    if key not in diagnostics:
        why = "; ".join(diagnostics.get("trimmed") or []) or "not measured for this model"
        raise ConfigError(f"trial {trial} has no {key.replace('_', ' ')} in its diagnostics ({why}).")
    return diagnostics[key]


# ------------------------------------------------------------------ learning curves


def learning_curves_frame(trials: Iterable[Any]) -> Any:
    """Train and validation curves of several trials, long format.

    Args:
        trials: objects with ``number`` and ``history`` (``TrialResult``): Keras history, metric
            name -> one value per epoch (``loss``, ``val_loss``, ``accuracy``, ...).

    Returns:
        pandas.DataFrame: columns ``trial`` (int), ``epoch`` (int, 1-based), ``metric`` (the
        metric without ``val_``), ``split`` ("train" | "validation"), ``value`` (float); one row
        per trial, metric, split and epoch.
    """
    import pandas as pd

    rows = []
    for t in trials:
        for key, values in (t.history or {}).items():
            split, metric = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            rows += [{"trial": int(t.number), "epoch": i + 1, "metric": metric, "split": split, "value": float(v)}
                     for i, v in enumerate(values)]
    return pd.DataFrame(rows, columns=["trial", "epoch", "metric", "split", "value"])


# ------------------------------------------------------------------ confusion matrix


@dataclass(frozen=True)
class ConfusionInfo:
    """The validation confusion matrix of a trial.

    Attributes:
        matrix: counts, int, shape (K, K): rows true class, columns predicted.
        class_names: the K class names.
        precision, recall: per class in [0, 1], float, shape (K,); NaN where undefined (no
            prediction of the class / no sample of it).
        support: validation samples per class, int, shape (K,).
    """

    matrix: np.ndarray
    class_names: list[str]
    precision: np.ndarray
    recall: np.ndarray
    support: np.ndarray

    @property
    def row_normalized(self) -> np.ndarray:
        """Each row divided by its total (the share of a true class predicted as each class)."""
        totals = self.matrix.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(totals > 0, self.matrix / np.maximum(totals, 1), 0.0)

    def per_class(self) -> Any:
        """pandas.DataFrame, one row per class: precision, recall, support."""
        import pandas as pd

        return pd.DataFrame({"precision": self.precision, "recall": self.recall, "support": self.support},
                            index=pd.Index(self.class_names, name="class"))


def confusion_info(diagnostics: Mapping[str, Any], trial: int) -> ConfusionInfo:
    """The stored confusion matrix and per-class table of a trial.

    Args:
        diagnostics: the trial's stored diagnostics.
        trial: its number (for error messages).

    Returns:
        ConfusionInfo: the matrix and per-class precision, recall and support.

    Raises:
        ConfigError: the trial has no confusion matrix.
    """
    matrix = np.asarray(require(diagnostics, "confusion_matrix", trial), dtype=int)
    per_class = diagnostics.get("per_class") or {}
    k = matrix.shape[0]

    def floats(key: str) -> np.ndarray:
        values = per_class.get(key) or [None] * k
        return np.array([np.nan if v is None else float(v) for v in values])

    names = [str(c) for c in diagnostics.get("class_names") or range(k)]
    return ConfusionInfo(matrix, names, floats("precision"), floats("recall"),
                         np.asarray(per_class.get("support") or matrix.sum(axis=1), dtype=int))


# ------------------------------------------------------------------ gradient flow


@dataclass(frozen=True)
class GradientFlow:
    """Gradient norm per trainable layer and epoch.

    Attributes:
        layers: the L layer names, input to output.
        epochs: the E epochs (1-based).
        mean, max: L2 norms, float, shape (L, E): mean and max over the epoch's batches.
        method: how they were measured ("every training batch", or a probe batch).
    """

    layers: list[str]
    epochs: list[int]
    mean: np.ndarray
    max: np.ndarray
    method: str = ""


def gradient_flow(diagnostics: Mapping[str, Any], trial: int) -> GradientFlow:
    """A trial's stored gradient flow.

    Args:
        diagnostics: the trial's stored diagnostics.
        trial: its number (for error messages).

    Returns:
        GradientFlow: layers x epochs.

    Raises:
        ConfigError: the trial has no gradient norms.
    """
    g = require(diagnostics, "gradients", trial)
    layers = list(diagnostics.get("layers") or [])
    shape = (len(layers), len(g.get("epochs") or []))
    mean = np.asarray(g.get("mean") or np.zeros((shape[1], shape[0])), dtype=float).reshape(shape[1], shape[0]).T
    peak = np.asarray(g.get("max") or np.zeros((shape[1], shape[0])), dtype=float).reshape(shape[1], shape[0]).T
    return GradientFlow(layers, [int(e) for e in g.get("epochs") or []], mean, peak, str(g.get("method") or ""))


def live_gradient_flow(events: Sequence[Any]) -> GradientFlow | None:
    """The gradient flow so far of a running trial, from its ``EpochDiagnostics`` events.

    Args:
        events: the events, any order (``RunningTrial.gradients``).

    Returns:
        GradientFlow | None: layers x epochs seen; None before the first epoch ended.
    """
    if not events:
        return None
    events = sorted(events, key=lambda e: e.epoch)
    layers = list(events[-1].layers)
    usable = [e for e in events if list(e.layers) == layers]
    mean = np.array([list(e.mean) for e in usable], dtype=float).T
    peak = np.array([list(e.max) for e in usable], dtype=float).T
    return GradientFlow(layers, [e.epoch for e in usable], mean, peak, "live")


# ------------------------------------------------------------------ weights


@dataclass(frozen=True)
class Histogram:
    """One layer's weights (or biases) per stored epoch, over fixed bins.

    Attributes:
        layer: the layer's name; kind: "weights" or "bias".
        edges: the B + 1 bin edges, float (values outside fell in the end bins).
        counts: values per bin, int, shape (E, B), one row per stored epoch.
        stats: min, max, mean, std per stored epoch, float, shape (E, 4).
    """

    layer: str
    kind: str
    edges: np.ndarray
    counts: np.ndarray
    stats: np.ndarray


@dataclass(frozen=True)
class WeightHistograms:
    """Weight and bias distributions of every trainable layer.

    Attributes:
        epochs: the stored epochs (0: the initialization).
        histograms: one ``Histogram`` per layer and kind, input to output.
    """

    epochs: list[int]
    histograms: list[Histogram] = field(default_factory=list)


def weight_histograms(diagnostics: Mapping[str, Any], trial: int) -> WeightHistograms:
    """A trial's stored weight and bias histograms.

    Args:
        diagnostics: the trial's stored diagnostics.
        trial: its number (for error messages).

    Returns:
        WeightHistograms: per layer and kind, per stored epoch.

    Raises:
        ConfigError: the trial has no histograms.
    """
    w = require(diagnostics, "weights", trial)
    out = []
    for layer, parts in (w.get("layers") or {}).items():
        for kind in ("weights", "bias"):
            if kind in parts:
                p = parts[kind]
                out.append(Histogram(layer, kind, np.asarray(p["edges"], dtype=float),
                                     np.asarray(p["counts"], dtype=int), np.asarray(p.get("stats") or [], dtype=float)))
    return WeightHistograms([int(e) for e in w.get("epochs") or []], out)


# ------------------------------------------------------------------ activations


@dataclass(frozen=True)
class ActivationMaps:
    """Activations of a few fixed validation samples.

    Attributes:
        kind: "image" (conv maps) or "text" (LSTM outputs per token).
        layers: the layers shown, input to output.
        samples: the samples' validation indices; labels: their true class names.
        inputs: the samples (images: float, shape (S, h, w, c); text: token ids, shape (S, T)).
        maps: layer -> float array (images: (S, h, w, C); text: (S, T, U)).
        channels: layer -> the channel / unit indices kept (the most active / varying).
    """

    kind: str
    layers: list[str]
    samples: list[int]
    labels: list[str]
    inputs: np.ndarray
    maps: dict[str, np.ndarray]
    channels: dict[str, list[int]]


def activation_maps(diagnostics: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None,
                    trial: int) -> ActivationMaps:
    """A trial's activation maps from its summary and its stored arrays.

    Args:
        diagnostics: the trial's stored diagnostics.
        arrays: its ``activations.npz`` artifact as arrays (``diagnostics.store.load_arrays``),
            or None if not readable here.
        trial: its number (for error messages).

    Returns:
        ActivationMaps: per layer, the fixed samples' maps.

    Raises:
        ConfigError: no activations were measured, or their arrays are not in this run folder's
            artifact store.
    """
    info = require(diagnostics, "activations", trial)
    if arrays is None:
        raise ConfigError(f"trial {trial}'s activation arrays are not in this run folder's artifact store "
                          "(artifacts/ under the run folder of the machine that ran the search).")
    names = diagnostics.get("class_names") or []
    labels = [str(names[i]) if i < len(names) else str(i) for i in info.get("labels") or []]
    layers = [l for l in info.get("layers") or [] if l in arrays]
    return ActivationMaps(str(info.get("kind")), layers, list(info.get("samples") or []), labels,
                          np.asarray(arrays["input"]), {l: np.asarray(arrays[l], dtype=np.float32) for l in layers},
                          {l: list((info.get("channels") or {}).get(l) or []) for l in layers})
