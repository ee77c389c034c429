"""Measuring a trial's diagnostics where it trains (``training.train_trial``; local threads,
mirrored devices and RunPod workers all run it).

Per epoch (``DiagnosticsCallback``):

- **Gradient norms per trainable layer**, the L2 norm of d(loss)/d(layer's trainable
  variables). On one device they are taken from *every training batch* the optimizer applies
  (a few norm ops added to the compiled train step, accumulated in three variables: the sum and
  max of the *finite* norms and a per-layer count of finite batches; the batch count is the
  optimizer's own ``iterations``), so ``mean`` and ``max`` are over the epoch's batches whose norm
  was finite, and ``gradients["non_finite"]`` counts per layer the batches whose norm was NaN or
  infinite (of ``gradients["batches"]``), at a cost measured in benchmarks/diagnostics_cost.py. Under MirroredStrategy the optimizer runs per replica, so
  instead one fixed probe batch (``PROBE_SAMPLES`` training samples, inference mode) is
  differentiated at each epoch's end on a one-device copy; its ``mean`` and ``max`` are then
  the same number, and ``gradients["method"]`` says which way they were measured.
- **Weight and bias histograms per layer** with fixed bins: ``HISTOGRAM_BINS`` bins over a
  symmetric range set once from the initial weights (3 x the largest magnitude; bias ranges at
  least half the weights'); values outside are counted per epoch as ``under`` / ``over`` (NaN as
  ``nan``), not binned, and each epoch's true min, max, mean and standard deviation are kept
  beside the counts. Epoch 0 is the initialization.
- An epoch's mean or max is None (JSON null) only when no batch had a finite norm for the layer
  (never a number standing in for NaN); a diverging epoch keeps the mean of its finite batches.

At the end (``DiagnosticsCallback.finish``): the validation confusion matrix and per-class
precision, recall and support, from the model as it ends (its best epoch's weights: counted in
that epoch's own validation pass, a ``Bincount`` op added to fit's compiled test step, so
nothing is predicted again), and activation maps of a few fixed validation samples
(``activations``). The arrays travel inline (``record.INLINE_KEY``) and are bounded by
``record.fit_to_bound``.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Sequence

import numpy as np

from . import record
from .activations import activation_maps, fixed_samples, token_words  # noqa: F401 (re-exported)

log = logging.getLogger("hpo_nb")

PROBE_SAMPLES = 64
_PREDICT_CHUNK = 1024


def trainable_layers(model: Any) -> list[Any]:
    """The model's top-level layers that own trainable variables, in order."""
    return [layer for layer in model.layers if layer.trainable_weights]


def _is_bias(variable: Any) -> bool:
    name = str(getattr(variable, "path", None) or getattr(variable, "name", ""))
    return name.endswith(("bias", "beta"))


def _short_name(variable: Any) -> str:
    """The variable's own name ("kernel", "bias", "gamma", "beta"), without its layer's path."""
    return str(getattr(variable, "path", None) or getattr(variable, "name", "")).rsplit("/", 1)[-1].split(":")[0]


def _import_keras() -> Any:
    import keras

    return keras


class DiagnosticsCallback(_import_keras().callbacks.Callback):
    """Collects per-epoch gradient norms and weight histograms; ``finish`` adds the end-of-training
    pieces and returns the bounded summary.

    Args:
        trial: the trial number (events name it).
        publish: where each epoch's gradient norms go as an ``EpochDiagnostics`` event (the live
            gradient flow), or None.
        x_probe, y_probe: training samples for the probe (MirroredStrategy only), shapes (n, ...)
            and (n,).
        replicas: model replicas in sync (1: per-batch norms from the train step).
        first_epoch: epochs already trained before this fit (a resumed trial); the first
            histograms are labelled with it (0: the initialization).
    """

    def __init__(self, trial: int, publish: Any = None, x_probe: Any = None, y_probe: Any = None,
                 replicas: int = 1, first_epoch: int = 0) -> None:
        super().__init__()
        self.first_epoch = first_epoch
        self.trial = trial
        self.publish = publish
        self.replicas = replicas
        self.x_probe = None if x_probe is None else x_probe[:PROBE_SAMPLES]
        self.y_probe = None if y_probe is None else y_probe[:PROBE_SAMPLES]
        self.layer_names: list[str] = []
        self.grad_mean: list[list[float]] = []
        self.grad_max: list[list[float]] = []
        self.grad_epochs: list[int] = []
        self.grad_non_finite: list[list[int]] = []  # per epoch, per layer: batches with a NaN / inf norm
        self.grad_batches: list[int] = []  # per epoch: batches applied (every-batch method only)
        self.hist_epochs: list[int] = []
        self._ranges: dict[tuple[str, str], float] = {}
        self._hist: dict[str, dict[str, dict[str, list[Any]]]] = {}
        self._acc: tuple[Any, Any, Any] | None = None
        self._steps_before = 0
        self._val_cm: Any = None
        self._val_matrices: dict[int, np.ndarray] = {}  # epoch index -> fit's validation confusion matrix
        self._variables: list[tuple[str, list[tuple[Any, bool]]]] = []
        self._original_apply: Any = None
        self._copy: Any = None

    # ------------------------------------------------------------------ hooks

    def on_train_begin(self, logs: dict | None = None) -> None:
        layers = trainable_layers(self.model)
        self.layer_names = [layer.name for layer in layers]
        self._variables = [(layer.name, [(v, _is_bias(v)) for v in layer.trainable_weights]) for layer in layers]
        if self.replicas == 1:
            self._hook_optimizer(layers)
            self._hook_validation()
        self._histograms(self.first_epoch)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._acc is not None:
            for variable in self._acc:
                variable.assign(np.zeros(variable.shape, dtype=np.float32))
            self._steps_before = int(self.model.optimizer.iterations.numpy())
        if self._val_cm is not None:
            self._val_cm.assign(np.zeros(self._val_cm.shape, dtype=np.int32))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._acc is not None:
            # the train step accumulates finite sqrt(sum(g^2) / 2) (tf.nn.l2_loss): x sqrt(2) is the L2 norm
            total, peak = (np.asarray(v.numpy(), dtype=float) * math.sqrt(2.0) for v in self._acc[:2])
            finite = np.rint(np.asarray(self._acc[2].numpy(), dtype=float))
            count = int(self.model.optimizer.iterations.numpy()) - self._steps_before
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(finite > 0, total / np.maximum(finite, 1.0), np.nan)
            maximum = np.where(finite > 0, peak, np.nan)
            self.grad_batches.append(count)
            self.grad_non_finite.append([max(0, count - int(f)) for f in finite])
        else:
            mean = maximum = self._probe_norms_off_strategy()
        self.grad_epochs.append(epoch + 1)
        self.grad_mean.append(record.round_list(mean))  # NaN / inf -> None (JSON null): shown as gaps
        self.grad_max.append(record.round_list(maximum))
        self._histograms(epoch + 1)
        if self._val_cm is not None and any(k.startswith("val_") for k in logs or {}):
            self._val_matrices[epoch] = np.asarray(self._val_cm.numpy(), dtype=int)
        if self.publish is not None:
            from ..progress import EpochDiagnostics

            counted = self._acc is not None
            self.publish(EpochDiagnostics(self.trial, epoch + 1, tuple(self.layer_names),
                                          record.unround(self.grad_mean[-1]), record.unround(self.grad_max[-1]),
                                          tuple(self.grad_non_finite[-1]) if counted else (),
                                          self.grad_batches[-1] if counted else 0))

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._original_apply is not None:  # the optimizer as it was (it is saved with the model)
            self.model.optimizer.__dict__.pop("apply_gradients", None)
            self._original_apply = None
        if self._val_cm is not None:  # the model as it was: a later evaluate() traces its own test step
            for name in ("test_step", "compute_metrics"):
                self.model.__dict__.pop(name, None)
            self.model.test_function = None

    def _hook_validation(self) -> None:
        """Count fit's own validation pass into a confusion matrix (an argmax and one ``Bincount``
        per validation batch, in the compiled test step), so the end of the trial needs no second
        pass over the validation split: the best epoch's matrix is the restored model's."""
        import tensorflow as tf

        k = int(self.model.output_shape[-1])
        matrix = tf.Variable(tf.zeros((k, k), tf.int32), trainable=False)
        no_weights = tf.zeros([0], tf.int32)  # Bincount without weights: counts, as int32
        model = self.model
        test_step, compute_metrics = model.test_step, model.compute_metrics
        tracing = [False]  # True while the test step (not the train step) is traced

        def hooked_test_step(data: Any) -> Any:
            tracing[0] = True
            try:
                return test_step(data)
            finally:
                tracing[0] = False

        def hooked_compute_metrics(x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> Any:
            if tracing[0] and y is not None and not isinstance(y_pred, (list, tuple, dict)):
                labels = tf.reshape(tf.cast(y, tf.int32), [-1])
                predicted = tf.argmax(tf.reshape(y_pred, [-1, k]), axis=-1, output_type=tf.int32)
                # one Bincount over true * K + predicted (tf.math.confusion_matrix adds assertions and a scatter)
                cells = tf.raw_ops.Bincount(arr=labels * k + predicted, size=k * k, weights=no_weights)
                matrix.assign_add(tf.reshape(cells, (k, k)))
            return compute_metrics(x, y, y_pred, sample_weight=sample_weight)

        model.__dict__["test_step"] = hooked_test_step  # this instance only; undone at train end
        model.__dict__["compute_metrics"] = hooked_compute_metrics
        self._val_cm = matrix

    # ------------------------------------------------------------------ gradients

    def _hook_optimizer(self, layers: Sequence[Any]) -> None:
        """Add per-layer norms of the applied gradients to the compiled train step.

        Few ops per batch, as they run on every step: one ``l2_loss`` (sum of squares / 2) per
        variable, one segment sum into layers, one sqrt, one finiteness mask (``is_finite``, a
        ``where`` zeroing the rest, a cast) and three accumulator updates (finite sum, finite max,
        finite-batch count). The batch count comes from the optimizer's own ``iterations`` (so
        the non-finite count is its difference, on the host) and the factor sqrt(2) is applied
        once per epoch on the host."""
        import tensorflow as tf

        owner = {id(v): i for i, layer in enumerate(layers) for v in layer.trainable_weights}
        n = len(layers)
        total = tf.Variable(tf.zeros(n), trainable=False)
        peak = tf.Variable(tf.zeros(n), trainable=False)
        finite = tf.Variable(tf.zeros(n), trainable=False)
        optimizer = self.model.optimizer
        original = optimizer.apply_gradients

        def apply_gradients(grads_and_vars: Any, *args: Any, **kwargs: Any) -> Any:
            pairs = list(grads_and_vars)
            halves, ids = [], []
            for grad, var in pairs:
                i = owner.get(id(var))
                if grad is not None and i is not None:
                    halves.append(tf.nn.l2_loss(tf.cast(grad, tf.float32)))
                    ids.append(i)
            if halves:
                norms = tf.sqrt(tf.math.unsorted_segment_sum(tf.stack(halves), tf.constant(ids), n))
                ok = tf.math.is_finite(norms)
                kept = tf.where(ok, norms, 0.0)  # a NaN batch does not spoil the epoch
                total.assign_add(kept)
                peak.assign(tf.maximum(peak, kept))
                finite.assign_add(tf.cast(ok, tf.float32))
            return original(pairs, *args, **kwargs)

        self._acc = (total, peak, finite)
        self._original_apply = original
        optimizer.__dict__["apply_gradients"] = apply_gradients  # this instance only; undone at train end

    def _probe_norms_off_strategy(self) -> list[float]:
        """``_probe_norms`` in a helper thread: a strategy's scope is per thread, so there the copy
        is built with plain variables (mirrored ones refuse an eager gradient tape). A failure
        costs the epoch's norms (NaN, stored as null and logged), never the trial."""
        from concurrent.futures import ThreadPoolExecutor

        try:
            with ThreadPoolExecutor(1, thread_name_prefix="hpo-nb-probe") as pool:
                return pool.submit(self._probe_norms).result()
        except Exception as exc:
            log.warning("trial %d: no gradient norms this epoch: %s", self.trial, exc)
            return [math.nan] * len(self.layer_names)

    def _probe_norms(self) -> list[float]:
        """Per-layer gradient norms of the probe batch on a one-device copy (MirroredStrategy)."""
        import keras
        import tensorflow as tf

        if self.x_probe is None or not len(self.x_probe):
            return [math.nan] * len(self.layer_names)
        if self._copy is None:
            self._copy = keras.models.clone_model(self.model)
        self._copy.set_weights(self.model.get_weights())
        layers = trainable_layers(self._copy)
        loss_fn = keras.losses.SparseCategoricalCrossentropy()
        variables = [v.value for layer in layers for v in layer.trainable_weights]
        with tf.GradientTape() as tape:
            loss = loss_fn(self.y_probe, self._copy(self.x_probe, training=False))
        grads = tape.gradient(loss, variables)
        norms, k = [], 0
        for layer in layers:
            m = len(layer.trainable_weights)
            part = [g for g in grads[k:k + m] if g is not None]
            norms.append(float(tf.linalg.global_norm(part)) if part else 0.0)
            k += m
        return norms

    # ------------------------------------------------------------------ histograms

    def _histograms(self, epoch: int) -> None:
        """Each layer's weights and biases over the fixed bins. Values outside the range (set at
        the first call) are not binned: they are counted as ``under`` / ``over`` (and NaN as
        ``nan``) per epoch, so a distribution that outgrew its range says so."""
        self.hist_epochs.append(epoch)
        for name, variables in self._variables:
            parts: dict[str, list[np.ndarray]] = {"weights": [], "bias": []}
            names: dict[str, list[str]] = {"weights": [], "bias": []}
            for v, bias in variables:
                parts["bias" if bias else "weights"].append(np.asarray(v.numpy(), dtype=np.float32).ravel())
                names["bias" if bias else "weights"].append(_short_name(v))
            for kind in ("weights", "bias"):
                if not parts[kind]:
                    continue
                values = parts[kind][0] if len(parts[kind]) == 1 else np.concatenate(parts[kind])
                key = (name, kind)
                if key not in self._ranges:
                    finite = values[np.isfinite(values)]
                    largest = float(np.max(np.abs(finite))) if finite.size else 0.0
                    floor = 0.05 if kind == "weights" else 0.5 * self._ranges.get((name, "weights"), 0.1)
                    self._ranges[key] = max(3.0 * largest, floor)
                r = self._ranges[key]
                with np.errstate(invalid="ignore", over="ignore"):
                    stats = [values.min(), values.max(), values.mean(), values.std()] if values.size else [np.nan] * 4
                counts, edges = np.histogram(values, bins=record.HISTOGRAM_BINS, range=(-r, r))  # NaN: not binned
                nan = int(values.size - counts.sum())  # outside or NaN; the two passes below only when there are
                under = int(np.count_nonzero(values < -r)) if nan and not stats[0] >= -r else 0
                over = int(np.count_nonzero(values > r)) if nan and not stats[1] <= r else 0
                nan -= under + over
                entry = self._hist.setdefault(name, {}).setdefault(kind, {
                    "edges": record.round_list(edges, 6), "counts": [], "under": [], "over": [], "stats": [],
                    "variables": names[kind]})  # e.g. ["kernel"], or ["gamma"] for BatchNormalization
                entry["counts"].append(counts.tolist())
                entry["under"].append(under)
                entry["over"].append(over)
                if nan or "nan" in entry:
                    entry.setdefault("nan", [0] * (len(entry["counts"]) - 1)).append(nan)
                entry["stats"].append(record.round_list(stats))

    # ------------------------------------------------------------------ the end

    def per_epoch(self) -> dict[str, Any]:
        """What was measured epoch by epoch so far (gradient norms, weight histograms), bounded:
        all a diverged trial keeps (its end-of-trial model is not worth predicting with).

        Returns:
            dict: ``version``, ``layers``, ``gradients`` and ``weights`` (``record`` describes them).
        """
        return record.fit_to_bound(self._per_epoch())

    def _per_epoch(self) -> dict[str, Any]:
        return {
            "version": record.VERSION, "layers": list(self.layer_names),
            "gradients": {"method": "every training batch" if self._acc is not None
                          else f"probe batch of {PROBE_SAMPLES} training samples, once per epoch",
                          "epochs": list(self.grad_epochs), "mean": self.grad_mean, "max": self.grad_max,
                          **({"batches": list(self.grad_batches), "non_finite": self.grad_non_finite}
                             if self.grad_batches else {})},
            "weights": {"bins": record.HISTOGRAM_BINS, "epochs": list(self.hist_epochs), "layers": self._hist},
        }

    def finish(self, model: Any, x_val: np.ndarray, y_val: np.ndarray, num_classes: int,
               class_names: Sequence[str] | None, modality: str, *, best_epoch: int | None = None,
               vocabulary: Sequence[str] | None = None) -> dict[str, Any]:
        """The trial's diagnostics, bounded (``record.fit_to_bound``).

        Args:
            model: the trained network on one device (a one-device copy under MirroredStrategy).
            x_val: validation inputs, shape (n, ...); y_val: class indices, int, shape (n,).
            num_classes: K, the number of classes.
            class_names: K names, or None for "0".."K-1".
            modality: "image" or "text".
            vocabulary: text only: the ``TextVectorization`` vocabulary (token id -> word), so the
                activation maps' tokens are stored as words; None keeps ids.
            best_epoch: the index (0-based) of the epoch whose weights ``model`` holds, if known:
                that epoch's validation pass already counted the confusion matrix.

        Returns:
            dict: the summary (``record`` describes its keys), activation arrays inline.
        """
        names = [str(c) for c in (class_names or range(num_classes))]
        summary = self._per_epoch()
        counted = self._val_matrices.get(best_epoch) if best_epoch is not None else None
        if counted is not None and counted.shape == (len(names), len(names)) and counted.sum() == len(y_val):
            summary.update(report_from_matrix(counted, names))
        else:  # no such pass (mirrored replicas, an epoch from before a resume): predict once more
            summary.update(classification_report(predict_classes(model, x_val), y_val, names))
        try:
            summary.update(activation_maps(model, x_val, y_val, modality, vocabulary))
        except Exception as exc:  # a diagnostic never fails the trial
            log.warning("trial %d: no activation maps: %s", self.trial, exc)
        return record.fit_to_bound(summary)


def predict_classes(model: Any, x: np.ndarray) -> np.ndarray:
    """Predicted class indices, int, shape (n,): eager calls in chunks (no ``predict`` trace)."""
    out = [np.argmax(np.asarray(model(x[i:i + _PREDICT_CHUNK], training=False)), axis=-1)
           for i in range(0, len(x), _PREDICT_CHUNK)]
    return np.concatenate(out).astype(int) if out else np.zeros(0, dtype=int)


def classification_report(y_pred: Sequence[int], y_true: Sequence[int], class_names: Sequence[str]) -> dict[str, Any]:
    """Confusion matrix and per-class precision, recall and support.

    Args:
        y_pred: predicted class indices, int, shape (n,).
        y_true: true class indices, int, shape (n,).
        class_names: the K class names.

    Returns:
        dict: ``confusion_matrix`` (K x K ints, rows true, columns predicted), ``class_names``,
        ``per_class`` (``precision``, ``recall``: K floats in [0, 1], None where undefined;
        ``support``: K ints).
    """
    k = len(class_names)
    y_pred = np.asarray(y_pred, dtype=int).reshape(-1)
    y_true = np.asarray(y_true, dtype=int).reshape(-1)
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (y_true, y_pred), 1)
    return report_from_matrix(cm, class_names)


def report_from_matrix(cm: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """``classification_report`` from a counted confusion matrix.

    Args:
        cm: counts, int, shape (K, K): rows true class, columns predicted.
        class_names: the K class names.

    Returns:
        dict: as ``classification_report``.
    """
    cm = np.asarray(cm, dtype=int)
    support, predicted, correct = cm.sum(axis=1), cm.sum(axis=0), np.diag(cm)
    precision = [None if p == 0 else round(float(c / p), 4) for c, p in zip(correct, predicted)]
    recall = [None if s == 0 else round(float(c / s), 4) for c, s in zip(correct, support)]
    return {"confusion_matrix": cm.tolist(), "class_names": list(class_names),
            "per_class": {"precision": precision, "recall": recall, "support": support.astype(int).tolist()}}
