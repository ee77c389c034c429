"""Measuring a trial's diagnostics where it trains (``training.train_trial``; local threads,
mirrored devices and RunPod workers all run it).

Per epoch (``DiagnosticsCallback``):

- **Gradient norms per trainable layer**, the L2 norm of d(loss)/d(layer's trainable
  variables). On one device they are taken from *every training batch* the optimizer applies
  (a few norm ops added to the compiled train step, accumulated in variables: sum, max, count),
  so ``mean`` and ``max`` are over the epoch's real batches, at no measurable cost
  (benchmarks/diagnostics_cost.py). Under MirroredStrategy the optimizer runs per replica, so
  instead one fixed probe batch (``PROBE_SAMPLES`` training samples, inference mode) is
  differentiated at each epoch's end on a one-device copy; its ``mean`` and ``max`` are then
  the same number, and ``gradients["method"]`` says which way they were measured.
- **Weight and bias histograms per layer** with fixed bins: ``HISTOGRAM_BINS`` bins over a
  symmetric range set once from the initial weights (3 x the largest magnitude; bias ranges at
  least half the weights'); values outside fall in the end bins, and each epoch's true min, max,
  mean and standard deviation are kept beside the counts. Epoch 0 is the initialization.

At the end (``DiagnosticsCallback.finish``): the validation confusion matrix and per-class
precision, recall and support, from the model as it ends (its best epoch's weights), and
activation maps of ``SAMPLES`` fixed validation samples (the first of each of the first
classes): images, the post-activation output of each conv block (the ``MAX_CHANNELS`` most
active channels); text, each LSTM layer's output at every token (the ``MAX_UNITS`` most varying
units). The arrays travel inline (``record.INLINE_KEY``) and are bounded by ``record.fit_to_bound``.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

from . import record

log = logging.getLogger("hpo_nb")

PROBE_SAMPLES = 64
SAMPLES = 3
MAX_CHANNELS = 16
MAX_UNITS = 32
_PREDICT_CHUNK = 1024


def trainable_layers(model: Any) -> list[Any]:
    """The model's top-level layers that own trainable variables, in order."""
    return [layer for layer in model.layers if layer.trainable_weights]


def _is_bias(variable: Any) -> bool:
    name = str(getattr(variable, "path", None) or getattr(variable, "name", ""))
    return name.endswith(("bias", "beta"))


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
        self.hist_epochs: list[int] = []
        self._ranges: dict[tuple[str, str], float] = {}
        self._hist: dict[str, dict[str, dict[str, list[Any]]]] = {}
        self._acc: tuple[Any, Any, Any] | None = None
        self._original_apply: Any = None
        self._copy: Any = None

    # ------------------------------------------------------------------ hooks

    def on_train_begin(self, logs: dict | None = None) -> None:
        layers = trainable_layers(self.model)
        self.layer_names = [layer.name for layer in layers]
        if self.replicas == 1:
            self._hook_optimizer(layers)
        self._histograms(self.first_epoch)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._acc is not None:
            for variable in self._acc:
                variable.assign(np.zeros(variable.shape, dtype=np.float32))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._acc is not None:
            total, peak, count = (np.asarray(v.numpy(), dtype=float) for v in self._acc)
            mean = total / max(float(count), 1.0)
            maximum = peak
        else:
            mean = maximum = self._probe_norms_off_strategy()
        self.grad_epochs.append(epoch + 1)
        self.grad_mean.append(record.round_list(mean))
        self.grad_max.append(record.round_list(maximum))
        self._histograms(epoch + 1)
        if self.publish is not None:
            from ..progress import EpochDiagnostics

            self.publish(EpochDiagnostics(self.trial, epoch + 1, tuple(self.layer_names),
                                          tuple(self.grad_mean[-1]), tuple(self.grad_max[-1])))

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._original_apply is not None:  # the optimizer as it was (it is saved with the model)
            self.model.optimizer.__dict__.pop("apply_gradients", None)
            self._original_apply = None

    # ------------------------------------------------------------------ gradients

    def _hook_optimizer(self, layers: Sequence[Any]) -> None:
        """Add per-layer norms of the applied gradients to the compiled train step."""
        import tensorflow as tf

        owner = {id(v): i for i, layer in enumerate(layers) for v in layer.trainable_weights}
        n = len(layers)
        total = tf.Variable(tf.zeros(n), trainable=False)
        peak = tf.Variable(tf.zeros(n), trainable=False)
        count = tf.Variable(0.0, trainable=False)
        optimizer = self.model.optimizer
        original = optimizer.apply_gradients

        def apply_gradients(grads_and_vars: Any, *args: Any, **kwargs: Any) -> Any:
            pairs = list(grads_and_vars)
            squares = [tf.constant(0.0)] * n
            for grad, var in pairs:
                i = owner.get(id(var))
                if grad is not None and i is not None:
                    squares[i] = squares[i] + tf.reduce_sum(tf.square(tf.cast(grad, tf.float32)))
            norms = tf.sqrt(tf.stack(squares))
            total.assign_add(norms)
            peak.assign(tf.maximum(peak, norms))
            count.assign_add(1.0)
            return original(pairs, *args, **kwargs)

        self._acc = (total, peak, count)
        self._original_apply = original
        optimizer.__dict__["apply_gradients"] = apply_gradients  # this instance only; undone at train end

    def _probe_norms_off_strategy(self) -> list[float]:
        """``_probe_norms`` in a helper thread: a strategy's scope is per thread, so there the copy
        is built with plain variables (mirrored ones refuse an eager gradient tape). A failure
        costs the epoch's norms (zeros, logged), never the trial."""
        from concurrent.futures import ThreadPoolExecutor

        try:
            with ThreadPoolExecutor(1, thread_name_prefix="hpo-nb-probe") as pool:
                return pool.submit(self._probe_norms).result()
        except Exception as exc:
            log.warning("trial %d: no gradient norms this epoch: %s", self.trial, exc)
            return [0.0] * len(self.layer_names)

    def _probe_norms(self) -> list[float]:
        """Per-layer gradient norms of the probe batch on a one-device copy (MirroredStrategy)."""
        import keras
        import tensorflow as tf

        if self.x_probe is None or not len(self.x_probe):
            return [0.0] * len(self.layer_names)
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
        self.hist_epochs.append(epoch)
        for layer in trainable_layers(self.model):
            parts: dict[str, list[np.ndarray]] = {"weights": [], "bias": []}
            for v in layer.trainable_weights:
                parts["bias" if _is_bias(v) else "weights"].append(np.asarray(v.numpy(), dtype=np.float32).ravel())
            for kind in ("weights", "bias"):
                if not parts[kind]:
                    continue
                values = np.concatenate(parts[kind])
                key = (layer.name, kind)
                if key not in self._ranges:
                    largest = float(np.max(np.abs(values))) if values.size else 0.0
                    floor = 0.05 if kind == "weights" else 0.5 * self._ranges.get((layer.name, "weights"), 0.1)
                    self._ranges[key] = max(3.0 * largest, floor)
                r = self._ranges[key]
                counts, edges = np.histogram(np.clip(values, -r, r), bins=record.HISTOGRAM_BINS, range=(-r, r))
                entry = self._hist.setdefault(layer.name, {}).setdefault(kind, {"edges": record.round_list(edges, 6),
                                                                                "counts": [], "stats": []})
                entry["counts"].append(counts.astype(int).tolist())
                entry["stats"].append(record.round_list([values.min(), values.max(), values.mean(), values.std()]))

    # ------------------------------------------------------------------ the end

    def finish(self, model: Any, x_val: np.ndarray, y_val: np.ndarray, num_classes: int,
               class_names: Sequence[str] | None, modality: str) -> dict[str, Any]:
        """The trial's diagnostics, bounded (``record.fit_to_bound``).

        Args:
            model: the trained network on one device (a one-device copy under MirroredStrategy).
            x_val: validation inputs, shape (n, ...); y_val: class indices, int, shape (n,).
            num_classes: K, the number of classes.
            class_names: K names, or None for "0".."K-1".
            modality: "image" or "text".

        Returns:
            dict: the summary (``record`` describes its keys), activation arrays inline.
        """
        names = [str(c) for c in (class_names or range(num_classes))]
        summary: dict[str, Any] = {
            "version": record.VERSION, "layers": list(self.layer_names),
            "gradients": {"method": "every training batch" if self._acc is not None
                          else f"probe batch of {PROBE_SAMPLES} training samples, once per epoch",
                          "epochs": list(self.grad_epochs), "mean": self.grad_mean, "max": self.grad_max},
            "weights": {"bins": record.HISTOGRAM_BINS, "epochs": list(self.hist_epochs), "layers": self._hist},
        }
        summary.update(classification_report(predict_classes(model, x_val), y_val, names))
        try:
            summary.update(activation_maps(model, x_val, y_val, modality))
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
    support, predicted, correct = cm.sum(axis=1), cm.sum(axis=0), np.diag(cm)
    precision = [None if p == 0 else round(float(c / p), 4) for c, p in zip(correct, predicted)]
    recall = [None if s == 0 else round(float(c / s), 4) for c, s in zip(correct, support)]
    return {"confusion_matrix": cm.tolist(), "class_names": list(class_names),
            "per_class": {"precision": precision, "recall": recall, "support": support.astype(int).tolist()}}


def fixed_samples(y_val: np.ndarray, n: int = SAMPLES) -> list[int]:
    """Indices of the first validation sample of each of the first ``n`` classes present."""
    seen: dict[int, int] = {}
    for i, label in enumerate(np.asarray(y_val).reshape(-1)):
        seen.setdefault(int(label), i)
    return [seen[c] for c in sorted(seen)[:n]]


def activation_maps(model: Any, x_val: np.ndarray, y_val: np.ndarray, modality: str) -> dict[str, Any]:
    """Activation maps of the fixed validation samples, as summary keys plus an inline ``.npz``.

    Returns:
        dict: ``activations`` (``kind``, ``layers``, ``samples``: validation indices, ``labels``,
        ``channels``: the kept channel/unit indices per layer) and ``record.INLINE_KEY`` with
        ``activations.npz``: ``input`` (samples x ...) and one float16 array per layer
        (images: samples x h x w x channels; text: samples x tokens x units).
    """
    idx = fixed_samples(y_val)
    xs = x_val[idx]
    layers, outputs = (_conv_outputs(model, xs) if modality == "image" else _lstm_outputs(model, xs))
    if not layers:
        return {}
    limit = MAX_CHANNELS if modality == "image" else MAX_UNITS
    while True:
        arrays: dict[str, np.ndarray] = {"input": np.asarray(xs, dtype=np.float16 if modality == "image" else np.int32)}
        kept: dict[str, list[int]] = {}
        for name, out in zip(layers, outputs):
            out = np.asarray(out, dtype=np.float32)
            flat = out.reshape(-1, out.shape[-1])
            order = np.argsort(-(flat.mean(axis=0) if modality == "image" else flat.std(axis=0)))[:limit]
            keep = sorted(int(c) for c in order)
            kept[name] = keep
            arrays[name] = out[..., keep].astype(np.float16)
        blob = record.encode_arrays(arrays)
        if len(blob) <= record.MAX_INLINE_BYTES or limit <= 1:
            break
        limit //= 2
    return {"activations": {"kind": modality, "layers": list(layers), "samples": [int(i) for i in idx],
                            "labels": [int(v) for v in np.asarray(y_val)[idx]], "channels": kept},
            record.INLINE_KEY: {record.ACTIVATIONS: blob}}


def _conv_outputs(model: Any, xs: np.ndarray) -> tuple[list[str], list[Any]]:
    import keras

    names, tensors, current = [], [], None
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            if current is not None:
                names.append(current[0]), tensors.append(current[1])
            current = (layer.name, layer.output)
        elif current is not None and isinstance(layer, keras.layers.Activation):
            current = (current[0], layer.output)  # the block's post-activation map
            names.append(current[0]), tensors.append(current[1])
            current = None
    if current is not None:
        names.append(current[0]), tensors.append(current[1])
    if not names:
        return [], []
    outs = keras.Model(model.input, tensors)(xs, training=False)
    return names, list(outs) if isinstance(outs, (list, tuple)) else [outs]


def _lstm_outputs(model: Any, xs: np.ndarray) -> tuple[list[str], list[Any]]:
    """Each LSTM (or Bidirectional) layer's output at every token: a sequence-returning copy
    with the same weights for a layer that returns only its last state."""
    import keras

    recurrent = [l for l in model.layers if isinstance(l, (keras.layers.LSTM, keras.layers.Bidirectional))]
    if not recurrent:
        return [], []
    inputs = [l.input[0] if isinstance(l.input, (list, tuple)) else l.input for l in recurrent]  # (x, mask)
    feeds = keras.Model(model.input, inputs)(xs, training=False)
    feeds = list(feeds) if isinstance(feeds, (list, tuple)) else [feeds]
    mask = np.asarray(xs) != 0
    outputs = []
    for layer, feed in zip(recurrent, feeds):
        config = _return_sequences(layer.get_config())
        copy = layer.__class__.from_config(config)
        copy.build(tuple(feed.shape))
        copy.set_weights(layer.get_weights())
        outputs.append(copy(feed, mask=mask, training=False))
    return [l.name for l in recurrent], outputs


def _return_sequences(config: Any) -> Any:
    if isinstance(config, dict):
        return {k: (True if k == "return_sequences" else _return_sequences(v)) for k, v in config.items()}
    if isinstance(config, list):
        return [_return_sequences(v) for v in config]
    return config
