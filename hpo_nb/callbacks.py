"""Keras callbacks that connect a fit to the outside world: progress, stop, pruning."""

from __future__ import annotations

import threading
import time

import keras

from .progress import EpochEnded, EpochProgress, Publish, Report
from .values import finite_float


class EpochProgressCallback(keras.callbacks.Callback):
    """Publishes progress within each epoch (throttled) and each epoch's metrics, and ends
    training after the current batch once ``stop`` is set. Safe to use from any thread: it
    only calls ``publish``, which must be thread-safe (``ProgressHub.publish`` is)."""

    def __init__(self, trial: int, total_epochs: int, publish: Publish,
                 stop: threading.Event | None = None, min_interval_s: float = 0.2) -> None:
        super().__init__()
        self.trial = trial
        self.total_epochs = total_epochs
        self.publish = publish
        self.stop = stop
        self.min_interval_s = min_interval_s
        self.stopped = False
        self._epoch = 0
        self._last = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch + 1
        self._last = time.monotonic()
        self.publish(EpochProgress(self.trial, self._epoch, self.total_epochs, 0, self.params.get("steps")))

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.stop is not None and self.stop.is_set():
            self.model.stop_training = True
            self.stopped = True
        now = time.monotonic()
        if now - self._last < self.min_interval_s:
            return
        self._last = now
        logs = logs or {}
        self.publish(EpochProgress(
            self.trial, self._epoch, self.total_epochs, batch + 1, self.params.get("steps"),
            loss=finite_float(logs.get("loss")), accuracy=finite_float(logs.get("accuracy")),
        ))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        metrics = {k: v for k, v in ((k, finite_float(v)) for k, v in (logs or {}).items()) if v is not None}
        self.publish(EpochEnded(self.trial, epoch + 1, self.total_epochs, metrics))


class PruningCallback(keras.callbacks.Callback):
    """Reports validation accuracy each epoch; stops training when the pruner says so, except
    after the last epoch: pruning then saves nothing and would file a fully trained model as
    pruned. (Our own few lines instead of optuna-integration, which pulls the full TensorFlow.)"""

    def __init__(self, report: Report, monitor: str = "val_accuracy") -> None:
        super().__init__()
        self.report = report
        self.monitor = monitor
        self.pruned_at: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = finite_float((logs or {}).get(self.monitor))
        last = epoch + 1 >= int(self.params.get("epochs") or 0)
        if value is not None and self.report(epoch + 1, value) and not last:
            self.pruned_at = epoch + 1
            self.model.stop_training = True
