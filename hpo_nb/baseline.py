"""What a search's accuracy must beat, and whether its validation split can rank trials: the
majority-class rate (the accuracy of always answering the most common class), and the warnings
read from it. Pure data; ``Experiment`` shows them (log, warnings, dashboard notices, CLI)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

MIN_VALIDATION = 100
"""Validation samples below which trials cannot be ranked reliably: an accuracy measured on n
samples has a standard error up to 0.5/sqrt(n), ±5 points at 100 samples, ±2.5 at 400."""


BASELINE_ATTR = "hpo_nb_baseline"
"""The study user attribute holding the ``Baseline`` fields and ``class_names`` (output order), so
a stored study read without its dataset (``hpo-nb show``) can say what its numbers must beat."""


@dataclass(frozen=True)
class Baseline:
    """The validation split's chance levels.

    Attributes:
        majority_rate: the accuracy of always predicting ``majority_class``, in [0, 1].
        majority_class: the most common class's name (or index, as str).
        chance_balanced: the balanced accuracy of any constant answer, 1/K.
        n_val: validation samples.
    """

    majority_rate: float
    majority_class: str
    chance_balanced: float
    n_val: int

    def chance(self, metric: str) -> float:
        """What ``metric`` scores for a model that learned nothing but the class balance."""
        return self.chance_balanced if metric == "balanced_accuracy" else self.majority_rate


def baseline_of(y_val: Sequence[int], num_classes: int, class_names: Sequence[str] | None = None) -> Baseline:
    """The chance levels of validation labels ``y_val`` (class indices 0..num_classes-1)."""
    y = np.asarray(y_val, dtype=int).reshape(-1)
    counts = np.bincount(y, minlength=num_classes) if len(y) else np.zeros(num_classes, int)
    top = int(np.argmax(counts))
    name = str(class_names[top]) if class_names and top < len(class_names) else str(top)
    return Baseline(float(counts[top] / len(y)) if len(y) else 0.0, name, 1.0 / max(num_classes, 1), int(len(y)))


def stored_baseline(attrs: dict) -> tuple[Baseline | None, list[str]]:
    """The ``Baseline`` and class names (model output order) a study recorded under
    ``BASELINE_ATTR`` (``attrs``: its user attributes); (None, []) for a study that did not."""
    data = attrs.get(BASELINE_ATTR)
    if not isinstance(data, dict):
        return None, []
    try:
        base = Baseline(float(data["majority_rate"]), str(data["majority_class"]), float(data["chance_balanced"]),
                        int(data["n_val"]))
    except (KeyError, TypeError, ValueError):
        return None, []
    return base, [str(c) for c in data.get("class_names") or []]


def small_validation(n_val: int) -> str | None:
    """Why a validation split of ``n_val`` samples cannot rank trials, or None when it can."""
    if n_val >= MIN_VALIDATION:
        return None
    se = 0.5 / math.sqrt(max(n_val, 1))
    return (f"the validation split has only {n_val} samples: one sample moves accuracy by {100 / max(n_val, 1):.1f} "
            f"points and its standard error is up to ±{100 * se:.0f} points (0.5/sqrt(n)), so trials closer than "
            f"that are ranked by chance. {MIN_VALIDATION}+ samples (±5 points) separate clear gaps, 400 (±2.5) small "
            "ones: collect more data or raise validation_fraction (CLI: --validation-fraction).")


def not_beaten(best_value: float | None, baseline: Baseline, metric: str) -> str | None:
    """A warning when the best trial's ``metric`` does not beat what always answering the majority
    class scores; None when it does (or nothing completed)."""
    if best_value is None:
        return None
    chance = baseline.chance(metric)
    if best_value > chance + 1e-6:  # a float32 accuracy equal to the rate lies within 1e-7 of it
        return None
    what = (f"the majority-class rate {chance:.4f} (always answering {baseline.majority_class!r})"
            if metric == "accuracy" else f"chance {chance:.4f} (1/{round(1 / chance)} classes)")
    hint = " Try metric='balanced_accuracy' for imbalanced classes," if metric == "accuracy" else " Try"
    return (f"the best trial's validation {metric.replace('_', ' ')} {best_value:.4f} does not beat {what}: the "
            f"models learned nothing beyond the class balance.{hint} more epochs or a wider search space.")


# the Python spellings of a setting in a message, and the ``hpo-nb run`` flag that sets it
CLI_SPELLINGS = {"metric='balanced_accuracy'": "--metric balanced_accuracy"}


def for_cli(message: str) -> str:
    """A message (``not_beaten``, ...) as ``hpo-nb run`` users set things: each Python setting
    it suggests (``metric='balanced_accuracy'``) named by its flag (``--metric balanced_accuracy``)."""
    for python, flag in CLI_SPELLINGS.items():
        message = message.replace(python, flag)
    return message


def all_failed(errors: Sequence[tuple[int, str | None]]) -> str | None:
    """'All 3 trials failed; the first error (trial 0): ...' for a search where every finished
    trial failed (``errors``: (trial number, error) of each failed trial); None otherwise."""
    if not errors:
        return None
    number, error = min(errors, key=lambda e: e[0])
    return (f"all {len(errors)} trial{'s' if len(errors) != 1 else ''} failed; the first error (trial {number}): "
            f"{error or 'unknown error'}")
