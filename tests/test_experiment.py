"""Real searches on digits with tiny budgets, and the bad-input contract."""

from __future__ import annotations

import gc
import threading
import time
import zipfile

import numpy as np
import pytest

from hpo_nb import Experiment, datasets
from hpo_nb.errors import ConfigError
from hpo_nb.health import METRICS
from hpo_nb.progress import EpochProgress
from hpo_nb.spec import TrialSpec
from hpo_nb.training import train_trial

from .conftest import TINY_CNN


@pytest.mark.slow
def test_search_on_digits_reaches_high_accuracy_and_fills_every_column(runs_dir):
    exp = Experiment("digits", mode="health", n_trials=3, max_epochs=4, concurrency=2, name="digits-t",
                     search_space={**TINY_CNN, "filters": 16, "learning_rate": 5e-3, "activation": ["relu", "elu"]},
                     runs_dir=runs_dir, progress="none", pruning=False)
    exp.run()
    df = exp.results
    assert len(df) == 3 and set(df["state"]) == {"complete"}
    for col in ("number", "activation", "dropout", "accuracy", "score", *METRICS, "health_score", "duration_s",
                "epochs_run", "param_count", "replicas"):
        assert col in df.columns and df[col].notna().all(), col
    assert df["accuracy"].max() > 0.85
    best = exp.best
    assert best.score == df["score"].max() and best.architecture["summary"]["conv_layers"] == 1
    model = exp.best_model()
    x_tr, y_tr, x_val, y_val = exp.dataset.split(0.2, seed=0)
    assert model.evaluate(x_val, y_val, verbose=0)[1] == pytest.approx(best.accuracy, abs=1e-6)
    assert (runs_dir / "digits-t" / "run.log").read_text().count("complete") >= 3
    assert gc.get_freeze_count() == 0  # the search's freeze (hpo_nb.trial_memory) ended with it


@pytest.mark.slow
def test_same_spec_twice_gives_the_same_accuracy():
    spec = TrialSpec(0, "digits", {**{k: v for k, v in TINY_CNN.items() if not isinstance(v, (list, tuple))},
                                   "filters": 8, "learning_rate": 5e-3, "activation": "relu", "pooling": "max",
                                   "dropout": 0.2}, max_epochs=2, seed=7)
    a, b = train_trial(spec), train_trial(spec)
    assert a.state == b.state == "complete"
    assert a.accuracy == b.accuracy and a.history == b.history


@pytest.mark.slow
def test_text_path_trains_an_lstm_above_chance(shared_data, runs_dir):
    archive = shared_data / "sentence_polarity" / "sentence_polarity.zip"
    ds = datasets.from_text_lines({
        "neg": zipfile.Path(archive, "sentence_polarity/rt-polarity.neg"),
        "pos": zipfile.Path(archive, "sentence_polarity/rt-polarity.pos"),
    }, name="polarity-t", max_tokens=5000, sequence_length=32)
    exp = Experiment(ds, n_trials=1, max_epochs=2, runs_dir=runs_dir, progress="none", sample_fraction=0.5,
                     search_space={"embedding_dim": 32, "lstm_units": 32, "lstm_layers": 1, "bidirectional": False,
                                   "dense_layers": 0, "optimizer": "adam", "learning_rate": 3e-3, "batch_size": 64,
                                   "dropout": 0.2})
    exp.run()
    best = exp.best
    assert best.architecture["model_type"] == "LSTM"
    assert best.accuracy > 0.6  # balanced two-class corpus: chance is 0.5


def _until(condition, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.slow
def test_stop_ends_running_trials_within_a_batch_and_keeps_completed_ones(runs_dir):
    space = {**TINY_CNN, "filters": 8, "batch_size": 16, "learning_rate": 5e-3}
    Experiment("digits", n_trials=1, max_epochs=30, runs_dir=runs_dir, progress="none", name="stop-t",
               search_space=space).run()  # the same max_epochs: a study refuses other settings
    exp = Experiment("digits", n_trials=4, max_epochs=30, runs_dir=runs_dir, progress="none", name="stop-t",
                     search_space=space, pruning=False)  # resumes: 1 of 4 done
    exp.start()
    _until(lambda: any(r.epoch >= 1 and 0 < r.epoch_fraction < 1 for r in exp.hub.snapshot().running))
    stopping_at = exp.hub.snapshot().running[0]
    exp.stop()
    df = exp.results
    assert list(df["state"]) == ["complete", "stopped"]
    # Ended inside the epoch it was in, or the next one: the snapshot is read just before stop(),
    # and a digits epoch (72 batches) can end in between.
    assert df.loc[1, "epochs_run"] <= stopping_at.epoch + 1 < 30
    assert not exp.running and exp.hub.snapshot().done


@pytest.mark.parametrize("kwargs, words", [
    (dict(dataset="nope"), "unknown dataset"),
    (dict(mode="fast"), "mode must be one of"),
    (dict(n_trials=0), "n_trials must be an integer >= 1"),
    (dict(concurrency=0), "concurrency must be an integer >= 1"),
    (dict(max_epochs=1.5), "max_epochs"),
    (dict(search_space={"lstm_units": 8}), "unknown search-space key"),
    (dict(executor="cloud"), "executor must be one of"),
    (dict(storage="not a url"), "storage must be an Optuna storage URL"),
    (dict(name="bad name!"), "name 'bad name!'"),
    (dict(sample_fraction=0), "sample_fraction"),
    (dict(health_weights={"speed": 1}), "unknown health weight"),
])
def test_bad_input_is_rejected_before_anything_trains(kwargs, words, runs_dir, monkeypatch):
    def no_training(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr("hpo_nb.training.train_trial", no_training)
    with pytest.raises(ConfigError, match=words):
        Experiment(**{"runs_dir": runs_dir, "progress": "none", **kwargs})


def test_mismatched_and_empty_arrays_are_rejected():
    with pytest.raises(ConfigError, match="same length"):
        Experiment(datasets.from_arrays(np.zeros((10, 8, 8)), np.arange(9) % 2))
    with pytest.raises(ConfigError, match="empty"):
        datasets.from_arrays(np.zeros((0, 8, 8)), np.zeros(0))


def test_resuming_with_another_mode_is_refused(runs_dir):
    Experiment("digits", mode="simple", name="same", runs_dir=runs_dir, progress="none")
    with pytest.raises(ConfigError, match=r"was searched with mode='simple' \(now 'health'\); its scores are not "
                                          r"comparable with this one\. To reopen it, leave it out or pass "
                                          r"mode='simple' \(hpo-nb run --mode simple\); or pick another name="):
        Experiment("digits", mode="health", name="same", runs_dir=runs_dir, progress="none")


def test_a_reopen_with_several_other_settings_names_every_argument_to_pass(runs_dir):
    """One error names the mode and the sample fraction (was: one error, then another after fixing it)."""
    Experiment("digits", mode="health", sample_fraction=0.5, name="nbA", runs_dir=runs_dir, progress="none")
    with pytest.raises(ConfigError) as err:
        Experiment(name="nbA", runs_dir=runs_dir, progress="none", mode="simple", sample_fraction=1.0)
    message = str(err.value)
    assert "mode='health' (now 'simple'), sample_fraction=0.5 (now 1.0)" in message
    assert ("To reopen it, leave them out or pass mode='health', sample_fraction=0.5 (hpo-nb run --mode health "
            "--sample-fraction 0.5); or pick another name=") in message


@pytest.mark.slow
def test_a_trial_whose_loss_becomes_nan_fails_and_saves_no_model(tmp_path):
    rng = np.random.default_rng(0)  # inputs around 1e30 overflow the first batch's loss
    ds = datasets.from_arrays(rng.random((60, 8, 8)).astype("float32") * 1e30, np.arange(60) % 3, name="huge-t")
    spec = TrialSpec(0, datasets.attach(ds), {"conv_blocks": 1, "filters": 4, "dense_layers": 0, "batch_size": 16},
                     max_epochs=3, seed=0)
    out = train_trial(spec, model_dir=tmp_path)
    assert out.state == "failed" and out.model_path is None and not list(tmp_path.iterdir())
    assert out.error.startswith("loss became NaN at epoch 1 (try a lower learning_rate")
    assert out.epochs_run == 1  # TerminateOnNaN ended fit there
