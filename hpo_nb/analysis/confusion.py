"""A trial's validation confusion matrix and per-class precision, recall and F1, as data, and
which classes a figure shows: every class up to ``MAX_CLASSES``, above that the classes with
the most misclassified samples (or the ones asked for). The stored record always keeps the full
matrix; only the drawing is cut down. No drawing here (``hpo_nb.views.diagnostic_plots``)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError

MAX_CLASSES = 30  # a confusion matrix with more classes shows its most confused ones by default


@dataclass(frozen=True)
class ConfusionInfo:
    """The validation confusion matrix of a trial, with per-class scores.

    Precision, recall and F1 follow scikit-learn's ``precision_recall_fscore_support`` with
    ``zero_division=np.nan``: precision = TP / (TP + FP) is undefined (NaN) for a class nothing
    was predicted as (0/0); recall = TP / (TP + FN) is undefined for a class without validation
    samples; F1 = 2 TP / (2 TP + FP + FN) is undefined only when both hold (a class neither
    present nor predicted), and 0 for a class that is present but never predicted. Undefined is
    not 0: a 0 means the class was predicted (or present) and always wrong.

    Attributes:
        matrix: counts, int, shape (K, K): rows true class, columns predicted.
        class_names: the K class names.
    """

    matrix: np.ndarray
    class_names: list[str]

    @property
    def support(self) -> np.ndarray:
        """Validation samples per true class (TP + FN), int, shape (K,)."""
        return self.matrix.sum(axis=1)

    @property
    def predicted(self) -> np.ndarray:
        """Validation samples predicted as each class (TP + FP), int, shape (K,)."""
        return self.matrix.sum(axis=0)

    @property
    def correct(self) -> np.ndarray:
        """True positives per class, int, shape (K,)."""
        return np.diag(self.matrix).copy()

    @property
    def precision(self) -> np.ndarray:
        """TP / (TP + FP) per class in [0, 1], float, shape (K,); NaN where nothing was predicted as it."""
        return _ratio(self.correct, self.predicted)

    @property
    def recall(self) -> np.ndarray:
        """TP / (TP + FN) per class in [0, 1], float, shape (K,); NaN where it has no validation sample."""
        return _ratio(self.correct, self.support)

    @property
    def f1(self) -> np.ndarray:
        """2 TP / (2 TP + FP + FN) per class in [0, 1], float, shape (K,); NaN where the class has
        neither a validation sample nor a prediction."""
        return _ratio(2 * self.correct, self.support + self.predicted)

    @property
    def errors(self) -> np.ndarray:
        """Misclassified samples per class as true or as predicted class (off-diagonal mass of its
        row plus its column), int, shape (K,)."""
        return self.support + self.predicted - 2 * self.correct

    @property
    def row_normalized(self) -> np.ndarray:
        """Each row divided by its total (the share of a true class predicted as each class),
        float, shape (K, K); 0 in a row without samples."""
        totals = self.matrix.sum(axis=1, keepdims=True)
        return np.where(totals > 0, self.matrix / np.maximum(totals, 1), 0.0)

    def per_class(self) -> Any:
        """pandas.DataFrame, one row per class: precision, recall, f1 (float, NaN where undefined),
        support, predicted (int)."""
        import pandas as pd

        return pd.DataFrame({"precision": self.precision, "recall": self.recall, "f1": self.f1,
                             "support": self.support, "predicted": self.predicted},
                            index=pd.Index(self.class_names, name="class"))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan).astype(float)


def confusion_info(diagnostics: Mapping[str, Any], trial: int) -> ConfusionInfo:
    """The stored confusion matrix of a trial (its scores are computed from it, exactly).

    Args:
        diagnostics: the trial's stored diagnostics.
        trial: its number (for error messages).

    Returns:
        ConfusionInfo: the matrix and per-class precision, recall, F1 and support.

    Raises:
        ConfigError: the trial has no confusion matrix.
    """
    from .diagnostics import require  # the shared "why is it missing" check (that module imports this one)

    matrix = np.asarray(require(diagnostics, "confusion_matrix", trial), dtype=int)
    k = matrix.shape[0] if matrix.ndim == 2 else 0
    matrix = matrix.reshape(k, k)
    names = [str(c) for c in (diagnostics.get("class_names") or range(k))]
    return ConfusionInfo(matrix, names)


@dataclass(frozen=True)
class ConfusionView:
    """The part of a confusion matrix a figure shows.

    Attributes:
        info: the whole matrix (``confusion_info``).
        shown: indices of the classes shown, in display order, int, shape (S,).
        chosen: True when the classes were asked for (``classes=``), False when picked here.
    """

    info: ConfusionInfo
    shown: np.ndarray
    chosen: bool = False

    @property
    def class_names(self) -> list[str]:
        """The S shown class names."""
        return [self.info.class_names[i] for i in self.shown]

    @property
    def matrix(self) -> np.ndarray:
        """Counts between the shown classes, int, shape (S, S): rows true, columns predicted."""
        return self.info.matrix[np.ix_(self.shown, self.shown)]

    @property
    def share(self) -> np.ndarray:
        """Share of each shown true class (its whole row, all K classes) predicted as each shown
        class, float, shape (S, S)."""
        return self.info.row_normalized[np.ix_(self.shown, self.shown)]

    def column(self, name: str) -> np.ndarray:
        """A per-class array of the full matrix ("precision", "recall", "f1", "support",
        "predicted", "correct") for the shown classes, shape (S,)."""
        return np.asarray(getattr(self.info, name))[self.shown]

    @property
    def complete(self) -> bool:
        """True when every class is shown."""
        return len(self.shown) == len(self.info.class_names)

    @property
    def note(self) -> str:
        """What is left out and how to see it ("" when every class is shown)."""
        if self.complete:
            return ""
        k, s = len(self.info.class_names), len(self.shown)
        total = int(self.info.matrix.sum() - np.trace(self.info.matrix))
        held = int(self.matrix.sum() - np.trace(self.matrix))
        which = "the classes asked for" if self.chosen else "the classes with the most misclassified samples"
        return (f"{s} of {k} classes shown ({which}); their cells hold {held:,} of the {total:,} misclassified "
                "validation samples. All classes: top_k=None; others: classes=[names or indices].")


def confusion_view(info: ConfusionInfo, classes: Sequence[Any] | None = None,
                   top_k: int | None = MAX_CLASSES) -> ConfusionView:
    """Which classes to draw.

    Args:
        info: the whole matrix.
        classes: class names (str) or indices (int) to show, in that order; None: pick by
            ``top_k``.
        top_k: with more classes than this (>= 1), show the ``top_k`` with the most misclassified
            samples (off-diagonal counts of their row and column; ties: lower index), in class
            order; None: every class.

    Returns:
        ConfusionView: the classes to show.

    Raises:
        ConfigError: ``classes`` names an unknown class or is empty; ``top_k`` is not an int >= 1
            or None.
    """
    k = len(info.class_names)
    if classes is not None:
        return ConfusionView(info, np.asarray(_class_indices(info.class_names, classes), dtype=int), chosen=True)
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1):
        raise ConfigError(f"top_k must be an int >= 1 (the most confused classes shown) or None (all), not {top_k!r}.")
    if top_k is None or k <= top_k:
        return ConfusionView(info, np.arange(k))
    order = np.argsort(-info.errors, kind="stable")[: int(top_k)]
    return ConfusionView(info, np.sort(order))


def _class_indices(names: list[str], classes: Any) -> list[int]:
    if isinstance(classes, (str, bytes)) or not hasattr(classes, "__iter__"):
        classes = [classes]
    picked: list[int] = []
    by_name = {n: i for i, n in enumerate(names)}
    for c in classes:
        if isinstance(c, str) and c in by_name:
            i = by_name[c]
        elif isinstance(c, numbers.Integral) and not isinstance(c, bool) and 0 <= int(c) < len(names):
            i = int(c)
        else:
            some = ", ".join(repr(n) for n in names[:8]) + (", ..." if len(names) > 8 else "")
            raise ConfigError(f"classes: {c!r} is neither a class name ({some}) nor an index in 0..{len(names) - 1}.")
        if i not in picked:
            picked.append(i)
    if not picked:
        raise ConfigError("classes must name at least one class (names or indices); None shows the most confused.")
    return picked
