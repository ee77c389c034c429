"""Epoch checkpoints (hpo_nb.checkpoints): the save/restore round trip, the per-epoch data order,
the file's key, and the search handing a retried trial its original's number. Fast: a tiny Keras
model, no dataset. The real thing (a process SIGKILLed after epoch 3, rerun) is
test_a_trial_killed_after_epoch_3_resumes_there_and_ends_as_an_uninterrupted_run below."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from hpo_nb.checkpoints import EpochCheckpoint, checkpoint_path, epoch_batches
from hpo_nb.executors import InMemoryExecutor, TrialJob
from hpo_nb.progress import EpochEnded, Notice, ProgressHub
from hpo_nb.search import Search
from hpo_nb.spec import TrialOutcome, TrialSpec

ROOT = Path(__file__).resolve().parents[1]
SPEC = TrialSpec(trial_number=3, dataset="digits", params={"batch_size": 8, "dropout": 0.5}, max_epochs=6, seed=1)


def _model(seed: int):
    import keras

    init = keras.initializers.GlorotUniform(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, kernel_initializer=init),
                              keras.layers.Dropout(0.5, seed=seed), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _keeper():
    import keras

    return keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=99, restore_best_weights=True)


def _state(model) -> list[np.ndarray]:
    return [np.array(v) for v in [*model.variables, *model.optimizer.variables]]


def test_a_checkpoint_restores_weights_optimizer_dropout_state_best_epoch_and_history(tmp_path):
    model, keeper = _model(1), _keeper()
    model.optimizer.build(model.trainable_variables)
    saving = EpochCheckpoint(tmp_path, SPEC)
    assert saving.attach("data-A", model, keeper) == 0  # nothing to resume
    for callback in (keeper, saving):  # the callbacks' side of three epochs of fit, without the training
        callback.set_model(model)
        callback.set_params({"epochs": 6, "steps": 2})
        callback.on_train_begin()
    rng = np.random.default_rng(0)
    for epoch, val_accuracy in enumerate((0.5, 0.75, 0.625)):
        saving.on_epoch_begin(epoch)
        for variable in [*model.variables, *model.optimizer.variables]:  # what two steps would change
            variable.assign(rng.normal(size=variable.shape).astype(variable.dtype))
            saving.on_train_batch_end(0)
        logs = {"loss": 1.0 / (epoch + 1), "val_accuracy": val_accuracy}
        keeper.on_epoch_end(epoch, logs)
        saving.on_epoch_end(epoch, logs)
    expected = _state(model)
    assert saving.path is not None and saving.path.exists()
    assert saving.path.name.startswith("trial_0003-") and not list(tmp_path.glob("*.tmp"))
    with np.load(saving.path) as data:
        meta = json.loads(str(data["meta"]))
    assert meta["epoch"] == 3 and meta["history"]["val_accuracy"] == [0.5, 0.75, 0.625]

    fresh, fresh_keeper = _model(2), _keeper()  # other initial weights, other dropout seed state
    events: list = []
    reports: list = []
    restoring = EpochCheckpoint(tmp_path, SPEC)
    report = lambda e, v: reports.append((e, v)) or True  # noqa: E731  (the pruner says prune: ignored)
    assert restoring.attach("data-A", fresh, fresh_keeper, events.append, report) == 3
    fresh_keeper.on_train_begin()  # what fit does first: the keeper resets itself ...
    restoring.set_model(fresh)
    fresh.optimizer.build(fresh.trainable_variables)
    restoring.on_train_begin()  # ... then the checkpoint puts everything back
    for restored, saved in zip(_state(fresh), expected, strict=True):
        np.testing.assert_array_equal(restored, saved)
    seed_states = [v for v in fresh.variables if "seed_generator" in v.path]
    assert seed_states, "the dropout layer's random state is part of what is restored"
    assert (fresh_keeper.best, fresh_keeper.best_epoch, fresh_keeper.wait) == (0.75, 1, 1) == \
        (keeper.best, keeper.best_epoch, keeper.wait)
    for a, b in zip(fresh_keeper.best_weights, keeper.best_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    # The restored epochs are announced again (views, RunPod progress) and re-reported to the pruner.
    assert [e.epoch for e in events if isinstance(e, EpochEnded)] == [1, 2, 3]
    assert [e.message for e in events if isinstance(e, Notice)] == ["trial 3 resumes after epoch 3, from its checkpoint"]
    assert [e for e, _ in reports] == [1, 2, 3]
    merged = restoring.history({"loss": [0.5, 0.25], "val_accuracy": [0.75, 0.8]})
    assert merged["loss"] == [1.0, 0.5, 1 / 3, 0.5, 0.25] and len(merged["val_accuracy"]) == 5

    import keras

    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5), keras.layers.Dense(3)])
    assert EpochCheckpoint(tmp_path, SPEC).attach("data-A", other, _keeper()) == 0  # does not fit: start over

    restoring.discard()
    assert not saving.path.exists()


def test_an_unreadable_checkpoint_trains_from_epoch_0(tmp_path, caplog):
    path = checkpoint_path(tmp_path, SPEC, "data-A")
    path.write_bytes(b"cut short by a power failure")
    with caplog.at_level("WARNING", logger="hpo_nb"):
        assert EpochCheckpoint(tmp_path, SPEC).attach("data-A", _model(1), _keeper()) == 0
    assert "unreadable" in caplog.text


def test_the_key_follows_what_decides_the_training_and_a_retry_shares_its_originals():
    import dataclasses

    base = checkpoint_path("c", SPEC, "data-A")
    retry = dataclasses.replace(SPEC, trial_number=9, retry_of=3)
    assert checkpoint_path("c", retry, "data-A") == base  # a retry finds its original's checkpoint
    assert checkpoint_path("c", dataclasses.replace(SPEC, devices=("/gpu:1",)), "data-A") == base  # another device
    for other in (dataclasses.replace(SPEC, trial_number=4), dataclasses.replace(SPEC, params={"batch_size": 16}),
                  dataclasses.replace(SPEC, max_epochs=7), dataclasses.replace(SPEC, seed=2),
                  dataclasses.replace(SPEC, devices=("/gpu:0", "/gpu:1"))):
        assert checkpoint_path("c", other, "data-A") != base
    assert checkpoint_path("c", SPEC, "data-B") != base  # other data under the same name


def test_each_epochs_order_depends_on_seed_and_epoch_only_so_a_resumed_stream_is_the_tail():
    x = np.arange(50, dtype="float32").reshape(50, 1)
    y = np.arange(50)
    full, steps = epoch_batches(x, y, 8, 7, 0, 5)
    tail, same_steps = epoch_batches(x, y, 8, 7, 3, 5)
    assert steps == same_steps == 7  # 6 full batches and one of 2: no batch spans two epochs
    full_batches = [b.numpy().tolist() for b, _ in full]
    assert len(full_batches) == 5 * steps
    assert [b.numpy().tolist() for b, _ in tail] == full_batches[3 * steps:]
    assert sorted(v for batch in full_batches[:steps] for (v,) in batch) == list(range(50))
    epochs = [[v for batch in full_batches[e * steps:(e + 1) * steps] for (v,) in batch] for e in range(5)]
    assert all(sorted(order) == list(range(50)) for order in epochs) and len({tuple(o) for o in epochs}) == 5
    again, _ = epoch_batches(x, y, 8, 7, 0, 5)  # the same seed: the same stream
    other, _ = epoch_batches(x, y, 8, 8, 0, 5)
    assert [b.numpy().tolist() for b, _ in again] == full_batches
    assert [b.numpy().tolist() for b, _ in other] != full_batches


def test_the_search_hands_a_retried_trial_its_originals_number_and_the_checkpoint_folder(tmp_path):
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING, params={"x": 0.5},
        distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
        system_attrs={"failed_trial": 0, "retry_history": [0]}))  # what Optuna's retry callback queues
    jobs: list[TrialJob] = []

    def run(job: TrialJob) -> TrialOutcome:
        jobs.append(job)
        return TrialOutcome(job.spec.trial_number, "complete", accuracy=0.5, score=0.5)

    search = Search(study, study._storage, InMemoryExecutor(run), ProgressHub(2, "simple", 1), n_trials=2,
                    concurrency=1, suggest=lambda t: {"x": t.suggest_float("x", 0, 1)},
                    spec_for=lambda n, p: TrialSpec(n, "digits", p, max_epochs=1), checkpoint_dir=tmp_path,
                    sync_interval=0.0)
    thread = threading.Thread(target=search.run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert [(j.spec.trial_number, j.spec.retry_of) for j in jobs] == [(0, 0), (1, None)]
    assert all(j.checkpoint_dir == tmp_path for j in jobs)


def test_results_have_a_resumed_from_epoch_column():
    from hpo_nb import records

    study = optuna.create_study(direction="maximize")
    for number, extra in ((0, {}), (1, {"resumed_from_epoch": 3})):
        outcome = TrialOutcome(number, "complete", accuracy=0.9, score=0.9, extra=extra)
        study.add_trial(optuna.trial.create_trial(value=0.9, user_attrs=records.outcome_attrs(outcome)))
    assert records.results_frame(study.get_trials())["resumed_from_epoch"].tolist() == [0, 3]
    assert "resumed_from_epoch" in records.results_frame([]).columns


def test_a_retry_travels_to_runpod_workers():
    import dataclasses

    from hpo_nb.executors.runpod import wire

    retry = dataclasses.replace(SPEC, trial_number=9, retry_of=3)
    assert wire.decode_input(wire.encode_spec(retry)) == retry
    assert wire.validation_problem({**SPEC.to_dict(), "retry_of": -1})


# ---------------------------------------------------------------------------- the real thing

# One fixed configuration (a list is a choice, as `--search-space` takes it): trial 0 of any
# study with seed 0 trains exactly this. Batch 8: ~150 steps an epoch, time to kill mid-epoch 4.
SPACE = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_layers": 1, "dense_units": 32, "dropout": 0.3,
         "batch_size": 8, "batch_norm": False, "optimizer": "adam", "learning_rate": 0.003, "activation": "relu",
         "pooling": "max"}


def _run(runs: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hpo_nb", "run", "--name", "resume", "--trials", "1", "--max-epochs", "6",
         "--search-space", json.dumps(SPACE), "--heartbeat-interval", "1", "--no-pruning", "--no-evaluate",
         "--quiet", "--runs-dir", str(runs)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
        env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"})


def _results(runs: Path):
    from hpo_nb import Experiment

    exp = Experiment("digits", name="resume", n_trials=1, max_epochs=6, search_space=SPACE, runs_dir=runs,
                     progress="none", heartbeat_interval=1)
    return exp.results.set_index("number"), exp


@pytest.mark.slow
def test_a_trial_killed_after_epoch_3_resumes_there_and_ends_as_an_uninterrupted_run(tmp_path):
    runs = tmp_path / "killed"
    victim = _run(runs, tmp_path / "victim.log")
    folder = runs / "resume" / "checkpoints"
    killed_at = 0
    try:
        deadline = time.monotonic() + 180
        while killed_at < 3:
            assert victim.poll() is None, (tmp_path / "victim.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no epoch-3 checkpoint appeared"
            for path in folder.glob("*.npz"):
                try:
                    with np.load(path) as data:
                        killed_at = json.loads(str(data["meta"]))["epoch"]
                except (OSError, ValueError, KeyError):  # replaced while read: look again
                    pass
            if killed_at >= 3:
                victim.send_signal(signal.SIGKILL)
            time.sleep(0.02)
        victim.wait(10)
        (saved,) = list(folder.glob("*.npz"))  # what the dead process left: its last completed epoch
        with np.load(saved) as data:
            killed_at = json.loads(str(data["meta"]))["epoch"]
        assert 3 <= killed_at < 6
    finally:
        if victim.poll() is None:
            victim.kill()

    rerun = _run(runs, tmp_path / "rerun.log")  # the same command again: the dead trial is retried and resumes
    assert rerun.wait(240) == 0, (tmp_path / "rerun.log").read_text()[-3000:]
    fresh = _run(tmp_path / "fresh", tmp_path / "fresh.log")  # the same trial, never interrupted
    assert fresh.wait(240) == 0, (tmp_path / "fresh.log").read_text()[-3000:]

    killed, exp = _results(runs)
    uninterrupted, fresh_exp = _results(tmp_path / "fresh")
    assert killed.loc[0, "state"] == "failed"  # the dead process's trial ...
    assert killed.loc[1, "state"] == "complete"  # ... and its retry, which resumed
    assert exp.study.trials[1].system_attrs["failed_trial"] == 0
    assert killed.loc[1, "resumed_from_epoch"] == killed_at  # 3, unless the kill landed after epoch 4 ended
    assert killed.loc[1, "epochs_run"] == 6 and uninterrupted.loc[0, "resumed_from_epoch"] == 0
    assert killed.loc[1, "accuracy"] == pytest.approx(uninterrupted.loc[0, "accuracy"], abs=1e-6)
    history, expected = exp.trial(1).history, fresh_exp.trial(0).history
    assert history["val_accuracy"] == pytest.approx(expected["val_accuracy"], abs=1e-6)
    assert history["loss"] == pytest.approx(expected["loss"], rel=1e-4)
    assert not list(folder.glob("*.npz")), "the checkpoint is deleted once the trial is recorded"
    assert f"trial 1 (a retry of trial 0) resumes after epoch {killed_at}" in (runs / "resume" / "run.log").read_text()


def test_the_batch_order_does_not_depend_on_the_global_seed():
    """A user's tf.random.set_seed must not change which batches a trial trains on (a RunPod
    worker, which never saw it, would train on others)."""
    import tensorflow as tf
    from tensorflow.python.eager import context

    x = np.arange(40, dtype="float32").reshape(40, 1)
    y = np.arange(40)
    plain = [b.numpy().tolist() for b, _ in epoch_batches(x, y, 8, 3, 0, 2)[0]]
    tf.random.set_seed(1234)
    try:
        seeded = [b.numpy().tolist() for b, _ in epoch_batches(x, y, 8, 3, 0, 2)[0]]
        assert context.global_seed() == 1234  # the user's seed is back
    finally:
        tf.random.set_seed(None)
    assert seeded == plain
