"""``train_trial``: the one training path. Local threads, mirrored devices and RunPod workers
all run exactly this function on a ``TrialSpec``, so the same spec gives the same accuracy."""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from . import checkpoints, datasets, health, objective, tf_stderr, trial_memory
from .callbacks import EpochProgressCallback, PruningCallback
from .progress import Report
from .progress import Publish
from .spec import TrialOutcome, TrialSpec

log = logging.getLogger("hpo_nb")

_ACTIVE = 0
_ACTIVE_LOCK = threading.Lock()
_BUILD_LOCK = threading.Lock()


def train_trial(
    spec: TrialSpec,
    events: Publish | None = None,
    stop: threading.Event | None = None,
    *,
    report: Report | None = None,
    model_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
) -> TrialOutcome:
    """Build, fit, evaluate and score one trial. Never raises for a training failure: the
    outcome's state says what happened (complete, pruned, stopped or failed, with the error).
    With ``checkpoint_dir``, each epoch end is saved there and a retry resumes from it; the
    file goes once the trial ends here (hpo_nb.checkpoints)."""
    global _ACTIVE
    started = time.perf_counter()
    resume = checkpoints.EpochCheckpoint(checkpoint_dir, spec) if checkpoint_dir is not None else None
    with _ACTIVE_LOCK:
        _ACTIVE += 1
    try:
        return _train(spec, events or (lambda e: None), stop, report, model_dir, started, resume)
    except Exception as exc:  # recorded on the trial; the search goes on
        log.error("trial %d failed: %s\n%s", spec.trial_number, exc, traceback.format_exc())
        return TrialOutcome(spec.trial_number, "failed", error=f"{type(exc).__name__}: {exc}",
                            duration_s=time.perf_counter() - started)
    finally:
        if resume is not None:  # ended and about to be recorded: nothing left to resume
            resume.discard()
        with _ACTIVE_LOCK:
            _ACTIVE -= 1
            idle = _ACTIVE == 0
        _release_memory(idle)


def _train(spec: TrialSpec, publish: Publish, stop: threading.Event | None, report: Report | None,
           model_dir: str | Path | None, started: float,
           resume: checkpoints.EpochCheckpoint | None = None) -> TrialOutcome:
    import tensorflow as tf

    from .devices import trial_devices
    from .distribution import placement
    from .models import architecture, build_model

    ds = datasets.load(spec.dataset)
    # The experiment seed fixes the validation split for every trial; the trial's own seed
    # (derived from it and the trial number) drives initialization and shuffling.
    # The test split is held out inside Dataset.split: nothing below (fit, scoring, pruning) sees it.
    x_train, y_train, x_val, y_val = ds.split(spec.validation_fraction, spec.seed, spec.sample_fraction,
                                              spec.test_fraction)
    trial_seed = trial_seed_of(spec)
    devices = trial_devices(spec.devices)  # a missing device fails here, clearly, instead of hanging
    with placement(devices) as strategy:
        replicas = int(strategy.num_replicas_in_sync)
        batch = int(spec.params.get("batch_size", 32)) * replicas  # global batch grows with replicas
        tf_stderr.settle_onednn_notice()  # else a text model's first run prints it as an "E" line
        with _BUILD_LOCK:  # Keras layer naming and graph building are not meant to race
            model = build_model(
                spec.params, modality=ds.modality, input_shape=ds.input_shape, num_classes=ds.num_classes,
                vocabulary_size=ds.vocabulary_size if ds.modality == "text" else None, seed=trial_seed,
                total_steps=checkpoints.steps_per_epoch(len(x_train), batch) * spec.max_epochs,
            )
            if replicas == 1:  # under MirroredStrategy Keras builds this state before tracing itself
                _build_state_eagerly(model, x_train[:1], y_train[:1])
        best_epoch = _best_epoch_keeper(spec.max_epochs, objective.monitor(spec.metric))
        first = resume.attach(ds.fingerprint, model, best_epoch, publish, report) if resume else 0
        # Epoch e's batches depend on (seed, e) only, so a resumed fit sees what an uninterrupted one would.
        train_data, steps = checkpoints.epoch_batches(x_train, y_train, batch, trial_seed, first, spec.max_epochs)
        val_data = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(max(batch, 256))
        progress = EpochProgressCallback(spec.trial_number, spec.max_epochs, publish, stop)
        # val_<metric> first: every later callback reads it from the same logs (objective.callbacks);
        # diagnostics before progress (an epoch's gradient norms go out before its end);
        # resume after the keeper, so a checkpoint holds the keeper's state for this epoch
        diagnosis = _diagnostics(spec, publish, x_train, y_train, replicas, first)
        callbacks: list[Any] = [_stop_on_non_finite_loss(),
                                *objective.callbacks(spec.metric, x_val, y_val, batch), *diagnosis, progress,
                                best_epoch, *([resume] if resume else [])]
        pruning = PruningCallback(report, objective.monitor(spec.metric)) if report else None
        if pruning:
            callbacks.append(pruning)
        fit_start = time.perf_counter()
        if stop is not None and stop.is_set():
            return TrialOutcome(spec.trial_number, "stopped", duration_s=time.perf_counter() - started)
        fit = model.fit(train_data, validation_data=val_data, epochs=spec.max_epochs, verbose=0,
                        callbacks=callbacks, shuffle=False, initial_epoch=first, steps_per_epoch=steps)
        fit_s = time.perf_counter() - fit_start
        history = (resume.history(fit.history) if resume  # restored epochs first
                   else {k: [float(x) for x in v] for k, v in fit.history.items()})
        diverged = _diverged(history.get("loss", []), ds.modality)  # _stop_on_non_finite_loss ended fit after that epoch
        if diverged:
            log.warning("trial %d failed: %s", spec.trial_number, diverged)
            # its per-epoch diagnostics stay: the gradient flow shows where the training blew up
            return TrialOutcome(spec.trial_number, "failed", error=diverged, fit_s=fit_s, replicas=replicas,
                                epochs_run=len(history.get("loss", [])), duration_s=time.perf_counter() - started,
                                diagnostics=diagnosis[0].per_epoch() if diagnosis else {})
        # Scored by its best epoch, whose weights best_epoch restored at the end of fit: the
        # model that is saved and probed is the one the score describes (KerasTuner likewise
        # scores a trial by its best epoch).
        accuracy, value = objective.best_epoch(history, spec.metric)  # value: accuracy, or balanced accuracy
        metrics = health.measure(model, history, x_val, y_val) if replicas == 1 else None
    if metrics is None:  # mirrored variables refuse the probes' gradient tape: probe a one-device copy
        metrics = health.measure(_single_device_copy(model), history, x_val, y_val)
    kept = int(best_epoch.best_epoch) if best_epoch.best_weights is not None else None  # the weights it ends with
    diagnostics = diagnosis[0].finish(
        model if replicas == 1 else _single_device_copy(model), x_val, y_val, ds.num_classes, ds.class_names,
        ds.modality, best_epoch=kept,
        vocabulary=ds.vocabulary(spec.validation_fraction, spec.seed, spec.sample_fraction, spec.test_fraction)
        if ds.modality == "text" else None) if diagnosis else {}
    state = "stopped" if progress.stopped else "pruned" if pruning and pruning.pruned_at else "complete"
    score = health.score(spec.mode, value, metrics, spec.accuracy_weight, spec.health_weights)
    outcome = TrialOutcome(
        trial_number=spec.trial_number, state=state, accuracy=float(accuracy), score=score,
        health={**metrics, "health_score": health.health_score(metrics, spec.health_weights)},
        history=history, architecture=architecture(model, spec.params), fit_s=fit_s,
        epochs_run=len(history.get("loss", [])), param_count=int(model.count_params()), replicas=replicas,
        devices=list(devices or []),
        extra={**({"best_epoch": kept + 1} if kept is not None else {}),
               **({spec.metric: value} if spec.metric != "accuracy" else {}), "resumed_from_epoch": first},
        diagnostics=diagnostics,
    )
    if model_dir is not None and state == "complete":
        path = Path(model_dir) / f"trial_{spec.trial_number:04d}.keras"
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_for_raw_inputs(model, ds, spec, replicas, path)
        outcome.model_path = str(path)
    outcome.duration_s = time.perf_counter() - started
    return outcome


def _diagnostics(spec: TrialSpec, publish: Publish, x_train: Any, y_train: Any, replicas: int,
                 first_epoch: int = 0) -> list[Any]:
    """The diagnostics callback (``hpo_nb.diagnostics.collect``), or none when the spec turns
    them off. Its probe samples are the first training samples (only used under mirroring). A
    resumed trial (``first_epoch`` > 0) has diagnostics of the epochs it trained itself."""
    if not spec.diagnostics:
        return []
    from .diagnostics.collect import DiagnosticsCallback

    return [DiagnosticsCallback(spec.trial_number, publish, x_train, y_train, replicas, first_epoch)]


def _stop_on_non_finite_loss() -> Any:
    """A callback that ends fit after an epoch whose training loss is NaN or infinite. Checked per
    epoch, not per batch as ``keras.callbacks.TerminateOnNaN`` does: reading the loss after every
    batch forces a host sync each step (about 4 % of a digits search on 2 cores), and a diverged
    trial fails anyway."""
    import keras

    class StopOnNonFiniteLoss(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.model.stop_training = True

    return StopOnNonFiniteLoss()


def _diverged(losses: list[float], modality: str = "image") -> str | None:
    """Why a fit whose training loss stopped being finite must fail (its weights are NaN or
    useless, whatever the validation metric says), or None; the advice fits the modality."""
    bad = next((i for i, loss in enumerate(losses) if not math.isfinite(loss)), None)
    if bad is None:
        return None
    advice = ("a lower learning_rate, or a smaller lstm_units" if modality == "text"
              else "a lower learning_rate, batch_norm=True, or inputs scaled to a small range")
    return f"loss became {'NaN' if math.isnan(losses[bad]) else 'infinite'} at epoch {bad + 1} (try {advice})"


def _best_epoch_keeper(max_epochs: int, monitor: str = "val_accuracy") -> Any:
    """Keras' own best-weights bookkeeping: EarlyStopping with a patience it never reaches
    keeps the weights of the epoch with the best validation accuracy and restores them when
    fit ends (also after pruning or Stop)."""
    import keras

    return keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=max_epochs + 1,
                                         restore_best_weights=True)


def _save_for_raw_inputs(model: Any, ds: datasets.Dataset, spec: TrialSpec, replicas: int, path: Path) -> None:
    """Save the network behind the dataset's preprocessing (text: its TextVectorization with the
    training split's vocabulary; images: a Rescaling layer), so the file takes raw inputs. Training
    stays on the pre-vectorized arrays; only the saved model carries the preprocessing."""
    network = model if replicas == 1 else _single_device_copy(model)  # no mirrored variables in the file
    with _BUILD_LOCK:
        exported = ds.with_preprocessing(network, spec.validation_fraction, spec.seed, spec.sample_fraction,
                                         spec.test_fraction)
    exported.save(path)


def trial_seed_of(spec: TrialSpec) -> int:
    """Seed for weights, dropout and shuffling: differs per trial, fixed per spec; a retry
    takes the seed of the trial it retries."""
    return (spec.seed * 100_003 + checkpoints.seed_trial(spec)) % (2**31 - 1)


def _build_state_eagerly(model: Any, x: Any, y: Any) -> None:
    """Create the optimizer, loss and metric variables now, outside any ``tf.function``.

    Otherwise Keras creates them while tracing the first train step, and TensorFlow keeps
    the initializer graphs of variables born inside a trace, and through them the whole
    train-step graph, reachable after the model is gone: about 6 MB more resident memory per
    trial, for good (see benchmarks/memory_growth.py). A forward pass with training=False and
    a metric update on one sample change nothing fit computes: fit resets metrics first.
    """
    model.optimizer.build(model.trainable_variables)
    y_pred = model(x, training=False)
    model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
    model.compute_metrics(x, y, y_pred)
    model.reset_metrics()


def _single_device_copy(model: Any) -> Any:
    """The same network and weights outside any distribution strategy."""
    import keras

    with _BUILD_LOCK:
        copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _release_memory(idle: bool) -> None:
    """Free a finished trial's graph and tensors; clear Keras' global state only when no other
    trial is building or training in this process."""
    if idle:
        import keras

        with _BUILD_LOCK:
            keras.backend.clear_session(free_memory=False)  # its own full collection would be a 2nd one
    trial_memory.collect_after_trial()
