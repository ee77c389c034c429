"""What a trial is scored on: validation accuracy, or balanced accuracy (the mean of per-class
recalls, so a classifier that always answers the majority class scores 1/K however imbalanced the
classes are). Balanced accuracy is computed here once per epoch on the validation split, inside
``training.train_trial``, so it is the same on local threads and RunPod workers."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .values import OBJECTIVE_METRICS as METRICS, check_metric  # noqa: F401  (checked in values.py)


def monitor(metric: str) -> str:
    """The Keras log key of the metric on the validation split ("val_accuracy", ...)."""
    return f"val_{metric}"


def balanced_accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Mean recall over the classes present in ``y_true`` (scikit-learn's ``balanced_accuracy_score``
    without its import); 0.0 for no samples.

    Args:
        y_true: class indices, shape (n,).
        y_pred: predicted class indices, shape (n,).

    Returns:
        float: in [0, 1].
    """
    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    if not len(y_true):
        return 0.0
    classes = np.unique(y_true)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))


def best_epoch(history: Mapping[str, Sequence[float]], metric: str) -> tuple[float, float]:
    """(validation accuracy, objective value) of the epoch with the best objective, the epoch whose
    weights the trial keeps; (0.0, 0.0) when no epoch was scored."""
    values = list(history.get(monitor(metric)) or [])
    if not values:
        return 0.0, 0.0
    best = int(np.argmax(values))
    accuracy = list(history.get("val_accuracy") or [0.0])
    return float(accuracy[min(best, len(accuracy) - 1)]), float(values[best])


def callbacks(metric: str, x_val: Any, y_val: Any, batch_size: int) -> list[Any]:
    """The Keras callbacks that put ``val_<metric>`` into each epoch's logs (none for accuracy,
    which Keras computes). They must come before callbacks that read it (progress, best-epoch
    keeper, pruning): Keras hands every callback the same logs dict, in order."""
    if metric == "accuracy":
        return []
    import keras

    step = max(batch_size, 256)

    class BalancedAccuracy(keras.callbacks.Callback):
        """``val_balanced_accuracy`` from one inference pass over the validation split per epoch:
        direct model calls rather than ``predict``, whose per-model ``tf.function`` makes TensorFlow
        warn about retracing once a process has run a few trials."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if logs is None or not len(y_val):
                return
            predicted = np.concatenate([
                np.argmax(keras.ops.convert_to_numpy(self.model(x_val[i:i + step], training=False)), axis=-1)
                for i in range(0, len(x_val), step)])
            logs[monitor("balanced_accuracy")] = balanced_accuracy(y_val, predicted)

    return [BalancedAccuracy()]
