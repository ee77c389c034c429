"""Epoch checkpoints: a trial whose process died resumes from its last completed epoch.

Optuna retries a trial whose heartbeat went silent as a new trial (``RetryHeartbeatStaleTrialCallback``:
its ``failed_trial`` system attribute names the original). The retry's ``TrialSpec.retry_of`` carries
that number, so it trains with the original's seed (``training.trial_seed_of``) and finds the
original's checkpoint here: it restores the weights, the optimizer state, the random-number state
of dropout layers, the best-epoch keeper (Keras' ``EarlyStopping``: best value, best epoch, its
weights) and the history, and ``fit`` goes on from the next epoch. The batches of epoch ``e`` are a
function of (trial seed, ``e``) alone (``epoch_batches``), so the resumed trial sees the batches
the uninterrupted one would have: same result, within float noise.

One ``.npz`` file per running trial, written whole to a temporary name and renamed over the last
one at each epoch end (``os.replace``: a kill mid-write leaves the previous epoch's file). Its name
holds the trial number and a hash of everything that makes the training reproducible (spec, data
fingerprint), so a file from other settings, other data or another study is never resumed, even
in a folder several studies share (a RunPod network volume). The file is deleted when the trial
ends in any recorded way (complete, pruned, stopped, failed): only a trial whose process died
leaves one, until its retry resumes and ends. Disk use is one model + optimizer state + best
weights per running trial.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import threading
from pathlib import Path
from typing import Any, Mapping

import keras
import numpy as np

from .progress import EpochEnded, Notice, Publish, Report
from .spec import TrialSpec

log = logging.getLogger("hpo_nb")

FORMAT = 1
SUFFIX = ".npz"


def seed_trial(spec: TrialSpec) -> int:
    """The trial number whose seed and checkpoint this spec uses: the original for a retry."""
    return spec.trial_number if spec.retry_of is None else spec.retry_of


def checkpoint_key(spec: TrialSpec, data_fingerprint: str) -> str:
    """sha256 (hex) of what decides the training trajectory: the spec without its own trial
    number and device names (a retry runs as another number, maybe on another device group),
    with the seed's trial number, the replica count and the data's fingerprint."""
    data = spec.to_dict()
    for name in ("trial_number", "retry_of", "devices"):
        data.pop(name, None)
    data.update(seed_trial=seed_trial(spec), replicas=len(spec.devices or ()) or 1, data=data_fingerprint)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def checkpoint_path(directory: str | Path, spec: TrialSpec, data_fingerprint: str) -> Path:
    """Where the checkpoint of ``spec`` lives in ``directory``: ``trial_0003-<key>.npz``."""
    return Path(directory) / f"trial_{seed_trial(spec):04d}-{checkpoint_key(spec, data_fingerprint)[:16]}{SUFFIX}"


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimizer steps in one epoch of ``n`` samples (the last batch may be short)."""
    return max(1, math.ceil(n / batch_size))


def epoch_batches(x: Any, y: Any, batch_size: int, seed: int, first_epoch: int, epochs: int) -> tuple[Any, int]:
    """Shuffled training batches for epochs ``first_epoch`` .. ``epochs - 1``, as one stream.

    Args:
        x: training inputs, shape (n, ...).
        y: training labels, shape (n,).
        batch_size: samples per batch (the global batch under MirroredStrategy).
        seed: the trial's seed.
        first_epoch: the first epoch to train (0-based; the checkpoint's epoch when resuming).
        epochs: the total epoch budget.

    Returns:
        (tf.data.Dataset, steps per epoch): pass both to ``fit`` (``steps_per_epoch=``), which
        then reads the stream on without restarting it each epoch.
    """
    import tensorflow as tf

    n = len(x)
    steps = steps_per_epoch(n, batch_size)
    # Resumed after the last epoch: nothing is read, but fit still wants a dataset of this shape.
    first = min(first_epoch, epochs - 1)
    # tf.data's own seeded shuffle, reshuffled at each repetition: epoch e's order is the e-th
    # reshuffle of (seed), so a resumed run skips the batches of the epochs it restored. Skipping
    # reads no model; per-batch gathers from a NumPy permutation made digits trials ~20 % slower.
    # The shuffle's seed pair is (global seed, seed): a user's tf.random.set_seed (or keras.utils.
    # set_random_seed) would change the order, and a RunPod worker would train on other batches
    # than a local run of the same spec. So the pair is pinned to what an unset global seed gives.
    with _GLOBAL_SEED_LOCK:
        from tensorflow.python.eager import context

        previous = context.global_seed()
        tf.random.set_seed(_UNSET_GLOBAL_SEED)
        try:
            shuffled = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(n, seed=seed, reshuffle_each_iteration=True)
        finally:
            tf.random.set_seed(previous)
    data = (
        shuffled.batch(batch_size)
        .repeat()
        .skip(first * steps)
        .take((epochs - first) * steps)
        .prefetch(tf.data.AUTOTUNE)
    )
    return data, steps


_GLOBAL_SEED_LOCK = threading.Lock()
_UNSET_GLOBAL_SEED = 87654321  # tensorflow.python.framework.random_seed.DEFAULT_GRAPH_SEED


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the training state at each epoch end; restores it when ``fit`` begins.

    Place it after the best-epoch keeper in ``fit``'s callbacks: it restores the keeper after
    the keeper resets itself, and saves after the keeper has seen the epoch.

    Args:
        directory: where checkpoints go (created on the first save).
        spec: the trial.

    Attributes:
        initial_epoch: epochs already trained (0: none); pass it to ``fit(initial_epoch=)``.
            Set by ``attach``.
        path: the checkpoint file (set by ``attach``).
    """

    def __init__(self, directory: str | Path, spec: TrialSpec) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.spec = spec
        self.path: Path | None = None
        self.initial_epoch = 0
        self._keeper: Any = None
        self._publish: Publish = lambda event: None
        self._report: Report | None = None
        self._saved: dict[str, Any] | None = None
        self._history: dict[str, list[float]] = {}
        self._batches = 0

    def attach(self, data_fingerprint: str, model: Any, keeper: Any, publish: Publish | None = None,
               report: Report | None = None) -> int:
        """Find this trial's checkpoint (if any) and read it.

        Args:
            data_fingerprint: the dataset's ``fingerprint`` (part of the file's key).
            model: the built model the checkpoint must fit (a file that does not, e.g. from another
                Keras version, is ignored: training starts over).
            keeper: the ``keras.callbacks.EarlyStopping`` that keeps the best epoch's weights.
            publish: where the restored epochs are announced again (``EpochEnded``), so views and
                a RunPod client see the whole history.
            report: the pruning channel; restored epochs are reported again to the new trial.

        Returns:
            int: the epoch to start from (0 when there is nothing to resume).
        """
        self.path = checkpoint_path(self.directory, self.spec, data_fingerprint)
        self._keeper, self._report = keeper, report
        self._publish = publish or self._publish
        self._saved = self._read(self.path)
        if self._saved is not None and not _fits(model.variables, self._saved["model"]):
            log.warning("trial %d: checkpoint %s does not fit the model: training from epoch 0",
                        self.spec.trial_number, self.path.name)
            self._saved = None
        if self._saved is not None:
            meta = self._saved["meta"]
            self.initial_epoch = int(meta["epoch"])
            self._history = {k: [float(v) for v in vals] for k, vals in meta["history"].items()}
        return self.initial_epoch

    def history(self, fit_history: Mapping[str, list[Any]]) -> dict[str, list[float]]:
        """Returns: the whole trial's history, restored epochs first, then ``fit``'s."""
        merged = {k: list(v) for k, v in self._history.items()}
        for key, values in fit_history.items():
            merged[key] = merged.get(key, [])[: self.initial_epoch] + [float(v) for v in values]
        return merged

    def discard(self) -> None:
        """Delete the checkpoint: the trial ended and is recorded (nothing is left to resume)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ Keras hooks

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self._saved is None:
            return
        saved, self._saved = self._saved, None
        _assign(self.model.variables, saved["model"])
        _assign(self.model.optimizer.variables, saved["optimizer"])
        keeper = saved["meta"]["keeper"]
        if self._keeper is not None:
            self._keeper.wait = keeper["wait"]
            self._keeper.stopped_epoch = keeper["stopped_epoch"]
            self._keeper.best = keeper["best"]
            self._keeper.best_epoch = keeper["best_epoch"]
            self._keeper.best_weights = saved["best"] or None
        total = self.spec.max_epochs
        monitor = getattr(self._keeper, "monitor", "val_accuracy")  # val_balanced_accuracy with that metric
        for epoch in range(1, self.initial_epoch + 1):
            metrics = {k: v[epoch - 1] for k, v in self._history.items() if len(v) >= epoch}
            self._publish(EpochEnded(self.spec.trial_number, epoch, total, metrics))
            if self._report is not None and monitor in metrics:
                self._report(epoch, metrics[monitor])  # passed then; the answer is not asked again
        origin = "" if self.spec.retry_of is None else f" (a retry of trial {self.spec.retry_of})"
        message = f"trial {self.spec.trial_number}{origin} resumes after epoch {self.initial_epoch}, from its checkpoint"
        log.info("%s (%s)", message, self.path.name)
        self._publish(Notice(message))

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._batches = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches += 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._batches < int(self.params.get("steps") or 0):
            return  # cut short by a stop: not an epoch to resume after (and the trial ends here anyway)
        for key, value in (logs or {}).items():
            values = self._history.setdefault(key, [])
            del values[epoch:]
            values.append(float(value))
        try:
            self._write(epoch + 1)
        except OSError as exc:  # a full disk must not fail the trial: it only loses the resume point
            log.warning("trial %d: epoch checkpoint not written: %s", self.spec.trial_number, exc)

    # ------------------------------------------------------------------ the file

    def _write(self, epoch: int) -> None:
        assert self.path is not None
        keeper = self._keeper
        best = list(keeper.best_weights or []) if keeper is not None else []
        meta = {
            "format": FORMAT, "trial": self.spec.trial_number, "epoch": epoch, "history": self._history,
            "keeper": {"wait": int(getattr(keeper, "wait", 0)),
                       "stopped_epoch": int(getattr(keeper, "stopped_epoch", 0)),
                       "best": None if getattr(keeper, "best", None) is None else float(keeper.best),
                       "best_epoch": int(getattr(keeper, "best_epoch", 0))},
        }
        arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta))}
        for prefix, values in (("m", [np.asarray(v) for v in self.model.variables]),
                               ("o", [np.asarray(v) for v in self.model.optimizer.variables]),
                               ("b", [np.asarray(w) for w in best])):
            arrays.update({f"{prefix}{i}": value for i, value in enumerate(values)})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        temporary.write_bytes(buffer.getvalue())
        os.replace(temporary, self.path)  # atomic: a reader sees the previous epoch's file or this one

    def _read(self, path: Path) -> dict[str, Any] | None:
        """The checkpoint's contents, or None (none there, or unreadable: then training starts over)."""
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("format") != FORMAT:
                    raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT}")
                saved = {prefix: [data[k] for k in sorted((k for k in data.files if k[0] == prefix and k[1:].isdigit()),
                                                          key=lambda k: int(k[1:]))]
                         for prefix in ("m", "o", "b")}
        except Exception as exc:  # truncated by an OS crash, or not ours: start over, keep the trial going
            log.warning("trial %d: checkpoint %s unreadable (%s): training from epoch 0", self.spec.trial_number,
                        path.name, exc)
            return None
        return {"meta": meta, "model": saved["m"], "optimizer": saved["o"], "best": saved["b"]}


def _fits(variables: list[Any], values: list[np.ndarray]) -> bool:
    return len(variables) == len(values) and all(tuple(v.shape) == a.shape for v, a in zip(variables, values))


def _assign(variables: list[Any], values: list[np.ndarray]) -> None:
    """Set each variable from its saved value; refuse the lot if the shapes do not match."""
    if not _fits(variables, values):
        raise ValueError(f"checkpoint does not fit the model: {len(values)} saved arrays for {len(variables)} "
                         "variables, or their shapes differ")
    for variable, value in zip(variables, values):
        variable.assign(value)
