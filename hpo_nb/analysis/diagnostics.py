"""Per-trial diagnostics as plain data, ready to draw: learning curves, the confusion matrix
with per-class precision, recall and F1 (``analysis.confusion``), gradient flow (layers x
epochs), weight and bias histograms per epoch, activation maps. Pure functions over stored records (a trial's
``history`` and ``diagnostics``, ``hpo_nb.diagnostics.record``) and, for the live gradient flow,
over ``EpochDiagnostics`` events; no drawing here (``hpo_nb.views.diagnostic_plots`` draws)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from .activation_maps import ActivationMaps, activation_maps  # noqa: F401 (part of this module's API)
from .confusion import ConfusionInfo, ConfusionView, confusion_info, confusion_view  # noqa: F401 (likewise)


def require(diagnostics: Mapping[str, Any], key: str, trial: int, why: str | None = None) -> Any:
    """A piece of a trial's diagnostics, or a ConfigError saying why it is not there.

    Args:
        diagnostics: the trial's stored diagnostics (empty: none).
        key: the piece ("gradients", "weights", "confusion_matrix", "activations").
        trial: the trial's number.
        why: why the trial has no diagnostics at all (``missing_reason``), if known.

    Returns:
        Any: ``diagnostics[key]``.

    Raises:
        ConfigError: the piece is missing, saying why.
    """
    if not diagnostics:
        raise ConfigError(why or f"trial {trial} has no diagnostics: it ran with diagnostics=False, ended before "
                          "training, or was recorded by an older hpo-nb. Run new trials to get them.")
    if key not in diagnostics:
        reason = "; ".join(diagnostics.get("trimmed") or []) or (
            "its training diverged; only the per-epoch gradient norms and weights are kept"
            if "confusion_matrix" not in diagnostics and "gradients" in diagnostics else "not measured for this model")
        raise ConfigError(f"trial {trial} has no {key.replace('_', ' ')} in its diagnostics ({reason}).")
    return diagnostics[key]


ENABLE_HINT = ("Diagnostics are on by default: Experiment(..., diagnostics=True), or the CLI without "
               "--no-diagnostics; they are measured for trials run from then on.")


def missing_reason(trial: int, state: str, recorded: bool, epochs_run: int = 0, error: str | None = None) -> str:
    """Why a trial has no diagnostics, for the error a plot raises.

    Args:
        trial: the trial's number.
        state: its state (complete | pruned | stopped | failed | running | waiting).
        recorded: its stored record has a ``diagnostics`` entry (an empty one: measured off);
            False for a trial recorded before hpo-nb measured diagnostics.
        epochs_run: epochs it trained.
        error: its error, if it failed.

    Returns:
        str: one or two sentences: what happened and what to do.
    """
    if state in ("running", "waiting"):
        return (f"trial {trial} is still {state}: its diagnostics are stored when it ends (while it trains, "
                "the dashboard's diagnostics panel shows its gradient flow live).")
    if state == "failed":
        return f"trial {trial} failed before its diagnostics were measured ({error or 'no error recorded'})."
    if state in ("stopped", "pruned") and epochs_run == 0:
        return f"trial {trial} was {state} before it trained an epoch, so it has no diagnostics."
    if not recorded:
        return (f"trial {trial} was recorded by a version of hpo-nb from before per-trial diagnostics, so it has "
                f"none. {ENABLE_HINT}")
    return f"trial {trial} ran with diagnostics=False, so it has none. {ENABLE_HINT}"


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


# ------------------------------------------------------------------ gradient flow


@dataclass(frozen=True)
class GradientFlow:
    """Gradient norm per trainable layer and epoch.

    Attributes:
        layers: the L layer names, input to output.
        epochs: the E epochs (1-based).
        mean, max: L2 norms, float, shape (L, E): mean and max over the epoch's batches whose
            norm was finite; NaN where none was.
        method: how they were measured ("every training batch", or a probe batch).
        non_finite_batches: batches whose norm was NaN or infinite, int, shape (L, E); None when
            not counted (a probe batch, the live view, a record from before they were counted).
        batches: batches per epoch, int, shape (E,); None when not counted.
    """

    layers: list[str]
    epochs: list[int]
    mean: np.ndarray
    max: np.ndarray
    method: str = ""
    non_finite_batches: np.ndarray | None = None
    batches: np.ndarray | None = None

    def non_finite(self) -> dict[int, list[str]]:
        """Epoch -> the layers with a NaN or infinite gradient norm then (a counted non-finite
        batch, or a null mean / max), in epoch order: a training that blew up. Empty when every
        norm is finite."""
        bad = ~np.isfinite(self.mean) | ~np.isfinite(self.max) if self.mean.size else np.zeros((0, 0), bool)
        if self.non_finite_batches is not None and self.non_finite_batches.shape == bad.shape:
            bad = bad | (self.non_finite_batches > 0)
        return {int(e): [self.layers[i] for i in np.flatnonzero(bad[:, k])]
                for k, e in enumerate(self.epochs) if bad.shape[1] > k and bad[:, k].any()}

    def non_finite_note(self, limit: int = 8) -> str:
        """The non-finite gradients as one line for the figure ("" when none): per layer and
        epoch how many batches were non-finite when counted ("conv_1: 12 of 45 batches
        non-finite at epoch 1"), else the layers per epoch.

        Args:
            limit: entries named at most; the rest are counted ("and 3 more").

        Returns:
            str: the note, or "".
        """
        bad = self.non_finite()
        if not bad:
            return ""
        counted = self.non_finite_batches is not None and self.batches is not None \
            and self.non_finite_batches.shape == self.mean.shape and len(self.batches) == len(self.epochs)
        if counted:
            k_of = {e: k for k, e in enumerate(self.epochs)}
            row = {name: i for i, name in enumerate(self.layers)}
            entries = [f"{layer}: {int(self.non_finite_batches[row[layer], k_of[e]])} of "
                       f"{int(self.batches[k_of[e]])} batches non-finite at epoch {e}"
                       for e, layers in bad.items() for layer in layers]
            head = "non-finite gradients (NaN or inf; mean and max are over the finite batches; blank: none finite)"
        else:
            entries = [f"epoch {e}: {', '.join(layers)}" for e, layers in bad.items()]
            head = "non-finite gradients (NaN or inf; blank cells) at"
        more = f"; and {len(entries) - limit} more" if len(entries) > limit else ""
        return f"{head}{':' if counted else ''} " + "; ".join(entries[:limit]) + more


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
    bad, batches = g.get("non_finite"), g.get("batches")
    counted = bad is not None and batches is not None and np.shape(bad) == (shape[1], shape[0]) \
        and len(batches) == shape[1]
    return GradientFlow(layers, [int(e) for e in g.get("epochs") or []], mean, peak, str(g.get("method") or ""),
                        np.asarray(bad, dtype=int).reshape(shape[1], shape[0]).T if counted else None,
                        np.asarray(batches, dtype=int) if counted else None)


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
    counted = all(len(getattr(e, "non_finite", ())) == len(layers) and getattr(e, "batches", 0) for e in usable)
    bad = np.array([list(e.non_finite) for e in usable], dtype=int).T if counted else None
    batches = np.array([e.batches for e in usable], dtype=int) if counted else None
    return GradientFlow(layers, [e.epoch for e in usable], mean, peak, "live", bad, batches)


# ------------------------------------------------------------------ weights


@dataclass(frozen=True)
class Histogram:
    """One layer's weights (or biases) per stored epoch, over fixed bins.

    Attributes:
        layer: the layer's name; kind: "weights" or "bias".
        edges: the B + 1 bin edges, float, a fixed range [-r, r] set at the first epoch.
        counts: values per bin, int, shape (E, B), one row per stored epoch.
        stats: min, max, mean, std per stored epoch, float, shape (E, 4) (NaN where not finite).
        under, over: values below -r / above r per stored epoch, int, shape (E,), not in
            ``counts``; None for a record from before they were counted (version 1, where they
            were clipped into the end bins).
        nan: NaN values per stored epoch, int, shape (E,) (zeros when there were none).
        variables: the variables' own names ("kernel", "gamma", ...); empty in older records.
    """

    layer: str
    kind: str
    edges: np.ndarray
    counts: np.ndarray
    stats: np.ndarray
    under: np.ndarray | None = None
    over: np.ndarray | None = None
    nan: np.ndarray | None = None
    variables: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """What the panel shows: "weights" / "bias", or for a BatchNormalization layer "gamma
        (scale)" / "beta (offset)" (its variables are not weights and biases)."""
        names = set(self.variables)
        if not names:  # an older record: hpo-nb names its BatchNormalization layers "..._bn"
            names = {("beta" if self.kind == "bias" else "gamma")} if self.layer.endswith("_bn") else set()
        if names == {"gamma"}:
            return "gamma (scale)"
        if names == {"beta"}:
            return "beta (offset)"
        return self.kind

    @property
    def limit(self) -> float:
        """r: the bins cover [-r, r]."""
        return float(max(abs(self.edges[0]), abs(self.edges[-1]))) if len(self.edges) else 0.0

    def outside_note(self, k: int) -> str:
        """What stored epoch ``k``'s bins leave out, as a short note ("" when nothing)."""
        parts = []
        if self.under is not None and self.over is not None:
            under, over = int(self.under[k]), int(self.over[k])
            if under or over:
                parts.append(f"{under + over} beyond ±{self.limit:.3g} ({under} below, {over} above)")
        if self.nan is not None and int(self.nan[k]):
            parts.append(f"{int(self.nan[k])} NaN")
        return "; ".join(parts)


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
                counts = np.asarray(p["counts"], dtype=int)

                def per_epoch(key: str, default: Any = None) -> np.ndarray | None:
                    values = p.get(key)
                    return np.asarray(values, dtype=int) if values is not None and len(values) == len(counts) \
                        else default
                out.append(Histogram(layer, kind, np.asarray(p["edges"], dtype=float), counts,
                                     np.asarray(p.get("stats") or [], dtype=float), per_epoch("under"),
                                     per_epoch("over"), per_epoch("nan", np.zeros(len(counts), dtype=int)),
                                     tuple(str(v) for v in p.get("variables") or ())))
    return WeightHistograms([int(e) for e in w.get("epochs") or []], out)
