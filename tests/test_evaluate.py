"""The honest final number (a test split the search never sees) and models that take raw inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from hpo_nb import Experiment, datasets, records
from hpo_nb.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
FAST_CNN = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_layers": 0, "batch_size": 32,
            "batch_norm": False, "optimizer": "adam", "learning_rate": 1e-2, "activation": "relu",
            "pooling": "max", "dropout": 0.1}
FAST_LSTM = {"embedding_dim": 16, "lstm_units": 16, "lstm_layers": 1, "bidirectional": False, "dense_layers": 0,
             "optimizer": "adam", "learning_rate": 1e-2, "batch_size": 32, "dropout": 0.0}


def _rows(x: np.ndarray) -> set[bytes]:
    return {np.ascontiguousarray(r, dtype="float32").tobytes() for r in x}


def test_the_test_split_never_reaches_fit_or_the_objective(runs_dir, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(150, 6, 6), dtype=np.uint8)  # every row unique
    ds = datasets.from_arrays(x, np.arange(150) % 3, name="unique-rows-t")
    seen: dict[str, list[np.ndarray]] = {"fit": [], "validation": [], "health": []}
    original_fit = keras.Model.fit

    def spy_fit(self, x=None, *args, validation_data=None, **kwargs):
        seen["fit"] += [np.asarray(b[0]) for b in x]
        seen["validation"] += [np.asarray(b[0]) for b in validation_data]
        return original_fit(self, x, *args, validation_data=validation_data, **kwargs)

    from hpo_nb import health

    original_measure = health.measure

    def spy_measure(model, history, x_val, y_val):
        seen["health"].append(np.asarray(x_val))
        return original_measure(model, history, x_val, y_val)

    monkeypatch.setattr(keras.Model, "fit", spy_fit)
    monkeypatch.setattr(health, "measure", spy_measure)
    exp = Experiment(ds, mode="health", n_trials=1, max_epochs=1, runs_dir=runs_dir, progress="none",
                     search_space=FAST_CNN, pruning=False)
    exp.run()
    split = exp.splits()
    test, fit, val = _rows(split.x_test), _rows(np.concatenate(seen["fit"])), _rows(np.concatenate(seen["validation"]))
    assert len(test) == 30 and exp.test_fraction == pytest.approx(0.2)
    assert not test & fit and not test & val and not fit & val
    assert not test & _rows(np.concatenate(seen["health"]))
    assert len(test | fit | val) == 150  # nothing lost: the test part came off the top
    assert val == _rows(split.x_val) and fit == _rows(split.x_train)
    assert exp.results["test_accuracy"].notna().sum() == 1  # run() evaluated the pick on the test part


@pytest.mark.slow
def test_evaluate_on_a_stored_study_after_a_restart(runs_dir):
    exp = Experiment("digits", n_trials=2, max_epochs=2, runs_dir=runs_dir, progress="none", name="restart-t",
                     search_space=FAST_CNN, pruning=False)
    exp.run()
    first = exp.selected_test_report()
    assert first is not None and first.n_test == 359 and first.test_accuracy > 0.8
    script = (
        "import json, sys\n"
        "from hpo_nb import Experiment\n"
        f"exp = Experiment('digits', n_trials=2, max_epochs=2, runs_dir={str(runs_dir)!r}, progress='none', "
        "name='restart-t')\n"
        "stored = exp.results['test_accuracy'].tolist()\n"
        "ev = exp.evaluate(k=2)\n"
        "print(json.dumps({'stored': stored, 'trials': [r.trial for r in ev.reports],\n"
        "                  'test': [r.test_accuracy for r in ev.reports], 'cm': ev.confusion.values.sum().item()}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert first.test_accuracy in got["stored"]  # the evaluation survived the restart
    assert got["trials"][0] == first.trial and got["test"][0] == pytest.approx(first.test_accuracy)
    assert got["cm"] == 359
    fresh = exp.results.set_index("number")["test_accuracy"]  # the other process stored the runner-up too
    assert fresh.notna().sum() == 2
    with pytest.warns(UserWarning, match=r"evaluate\(k=5\): only 2 trial\(s\) completed"):
        assert len(exp.evaluate(k=5).reports) == 2


def test_raw_uint8_images_with_the_reloaded_keras_file_and_an_explicit_test_split(runs_dir):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images * 15).astype(np.uint8)  # 0..240: an 8-bit image set
    names = np.array([f"digit{d}" for d in bunch.target])
    ds = datasets.from_arrays(images[:1400], names[:1400], name="uint8-digits-t")
    exp = Experiment(ds, n_trials=1, max_epochs=2, runs_dir=runs_dir, progress="none", search_space=FAST_CNN,
                     pruning=False, test=(images[1400:], names[1400:]))
    assert exp.dataset.scale == pytest.approx(1 / 255) and exp.test_fraction == 0.0
    exp.run()
    loaded = keras.models.load_model(exp.best.model_path)
    raw = images[1400:1450]
    probs = loaded.predict(raw[..., None], verbose=0)  # raw uint8 pixels, no scaling by the caller
    network = exp.best_model()
    assert np.allclose(probs, network.predict(raw[..., None].astype("float32") / 255, verbose=0), atol=1e-5)
    frame = exp.predict(raw)  # (n, h, w) without the channel axis is fine too
    assert list(frame.columns[:2]) == ["predicted", "confidence"] and frame.shape == (50, 12)
    assert list(frame["predicted"]) == [f"digit{i}" for i in probs.argmax(axis=1)]
    assert np.allclose(frame.filter(like="p_").sum(axis=1), 1.0, atol=1e-5)
    ev = exp.evaluate()
    truth = np.array([int(n[5:]) for n in names[1400:]])
    expected = float(np.mean(loaded.predict(images[1400:][..., None], verbose=0).argmax(axis=1) == truth))
    assert ev.selected.n_test == 397
    assert ev.test_accuracy == pytest.approx(expected) and ev.test_accuracy > 0.8
    assert list(ev.per_class.index) == [f"digit{i}" for i in range(10)] and ev.per_class["support"].sum() == 397
    assert exp.results.loc[0, "test_accuracy"] == pytest.approx(ev.test_accuracy)


@pytest.mark.slow
def test_raw_strings_with_the_reloaded_keras_file(runs_dir):
    rng = np.random.default_rng(1)
    pos, neg = ["good", "great", "fun", "lovely", "superb"], ["bad", "awful", "boring", "dull", "poor"]
    filler = ["movie", "film", "the", "a", "plot", "actors"]
    texts, labels = [], []
    for i in range(400):
        words = list(rng.choice(pos if i % 2 else neg, 3)) + list(rng.choice(filler, 3))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append("pos" if i % 2 else "neg")
    ds = datasets.from_arrays(texts, labels, modality="text", name="tiny-polarity-t", max_tokens=100,
                              sequence_length=8)
    exp = Experiment(ds, n_trials=1, max_epochs=2, runs_dir=runs_dir, progress="none", search_space=FAST_LSTM,
                     pruning=False)
    exp.run()
    loaded = keras.models.load_model(exp.best.model_path)
    sentences = np.array(["good fun movie", "awful boring film"], dtype=object)
    probs = loaded.predict(sentences, verbose=0)  # strings in: the vocabulary travels with the model
    vocab = ds.vocabulary(0.2, 0, 1.0, None)
    vectorize = keras.layers.TextVectorization(max_tokens=100, output_sequence_length=8, vocabulary=vocab)
    ids = np.asarray(vectorize(sentences.astype(str)))
    assert np.allclose(probs, exp.best_model().predict(ids, verbose=0), atol=1e-5)
    frame = exp.predict(["good fun movie", "awful boring film"])
    assert list(frame["predicted"]) == ["pos", "neg"] and list(frame.columns) == ["predicted", "confidence",
                                                                                   "p_neg", "p_pos"]
    model = exp._predictor(None)  # loaded once: repeated predict calls reuse its traced function
    assert exp.predict(["good fun movie"])["predicted"].tolist() == ["pos"] and exp._predictor(None) is model
    assert exp.evaluate().test_accuracy > 0.9


def test_test_settings_fail_before_training_with_what_to_do(runs_dir):
    x, y = np.random.default_rng(0).random((40, 4, 4)), np.arange(40) % 2
    with pytest.raises(ConfigError, match="your own data"):
        Experiment("digits", test=(x, y), runs_dir=runs_dir, progress="none")
    with pytest.raises(ConfigError, match=r"test_fraction must be a number in \[0, 1\)"):
        Experiment("digits", test_fraction=1.0, runs_dir=runs_dir, progress="none")
    own = datasets.from_arrays(x, y, name="own-test-t", test=(x[:5], y[:5]))
    with pytest.raises(ConfigError, match="has its own test split"):
        Experiment(own, test_fraction=0.3, runs_dir=runs_dir, progress="none")
    with pytest.raises(ConfigError, match="test images have shape"):
        datasets.from_arrays(x, y, test=(x[:5, :2], y[:5]))
    exp = Experiment("digits", test_fraction=0, runs_dir=runs_dir, progress="none", name="no-test-t")
    assert len(exp.splits().y_test) == 0 and len(exp.splits().y_train) + len(exp.splits().y_val) == 1797
    with pytest.raises(ConfigError, match="no test split.*test_fraction=0.2"):
        exp.evaluate()


def test_test_report_counts_per_class_and_confusion():
    r = records.make_test_report(3, [0, 0, 1, 1, 2], [0, 1, 1, 1, 1], ["a", "b", "c"], validation_accuracy=0.9)
    assert r.test_accuracy == pytest.approx(0.6) and r.n_test == 5
    assert r.confusion.loc["a", "b"] == 1 and r.confusion.loc["c", "b"] == 1 and r.confusion.values.sum() == 5
    pc = r.per_class
    assert list(pc["support"]) == [2, 2, 1] and pc.loc["b", "recall"] == 1.0
    assert pc.loc["b", "precision"] == pytest.approx(2 / 4) and np.isnan(pc.loc["c", "precision"])
    again = records.TestReport.from_attr(3, json.loads(json.dumps(r.to_attr())))
    assert again == r
    ev = records.Evaluation([r])
    assert ev.trial == 3 and "test accuracy 0.6000" in repr(ev) and "validation accuracy 0.9000" in repr(ev)


def test_views_name_which_number_is_which(runs_dir, capsys):
    from hpo_nb import cli
    from hpo_nb.progress import ProgressHub, TrialFinished
    from hpo_nb.views import dashboard_html, viewmodel as vm

    line = vm.test_line(3, 0.961, 0.972, 359)
    assert line == ("Test accuracy of trial 3 (the search's pick): 96.10 % on 359 held-out samples · "
                    "validation 97.20 % (what the search optimized)")
    hub = ProgressHub(1, "simple", 1)
    hub.publish(TrialFinished(0, "complete", accuracy=0.97, score=0.97, duration_s=1.0))
    hub.close()
    snap = hub.snapshot()
    assert line in vm.summary_text(snap, "t", line) and "96.10 %" in dashboard_html.summary_html(snap, "t", line)
    assert "Test accuracy" not in vm.summary_text(snap, "t")
    space = json.dumps({k: v for k, v in FAST_CNN.items()})
    assert cli.main(["run", "--trials", "1", "--max-epochs", "1", "--runs-dir", str(runs_dir), "--name", "cli-t",
                     "--quiet", "--search-space", space]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "val accuracy" in out
    assert "validation accuracy" in out and "(what the search optimized)" in out
    assert "held-out samples no trial trained or was scored on (the honest estimate)" in out


def test_dashboard_final_summary_shows_the_test_line():
    from hpo_nb.progress import ProgressHub, TrialFinished
    from hpo_nb.views.dashboard import Dashboard

    hub = ProgressHub(1, "simple", 1)
    hub.publish(TrialFinished(0, "complete", accuracy=0.97, score=0.97, duration_s=1.0))
    hub.close()
    dash = Dashboard(title="t")
    dash(hub.snapshot())
    dash.evaluation = lambda: "Test accuracy of trial 0 (the search's pick): 96.10 % on 359 held-out samples"
    bundle = dash.mimebundle()
    assert "96.10 %" in bundle["text/plain"] and "96.10 %" in bundle["text/html"]
    assert "96.10 %" in dash.test.value and dash.test.layout.display == "block"


def test_a_balanced_accuracy_search_names_the_metric_it_optimized():
    from hpo_nb.views import console, viewmodel as vm

    # 4 'a' and 1 'b': always answering 'a' scores 0.8 accuracy but 0.5 balanced accuracy
    r = records.make_test_report(1, [0, 0, 0, 0, 1], [0, 0, 0, 0, 0], ["a", "b"], validation_accuracy=0.9,
                                 score=0.7, metric="balanced_accuracy", validation_value=0.7)
    assert r.test_accuracy == pytest.approx(0.8) and r.test_balanced_accuracy == pytest.approx(0.5)
    assert records.TestReport.from_attr(1, json.loads(json.dumps(r.to_attr()))) == r
    text = repr(records.Evaluation([r]))
    assert "test accuracy 0.8000, test balanced accuracy 0.5000" in text
    assert "validation balanced accuracy 0.7000 (what the search optimized)" in text
    assert "validation accuracy 0.9000 (what the search optimized)" not in text
    best = records.TrialResult(1, "complete", {"dense_layers": 0, "dense_units": 256, "filters": 8},
                               accuracy=0.9, score=0.7, extra={"balanced_accuracy": 0.7})
    lines = console.best_lines(best, 0.8, 5, metric="balanced_accuracy", test_balanced=0.5)
    assert lines[0] == ("best trial 1: validation balanced accuracy 0.7000 (what the search optimized) · "
                        "validation accuracy 0.9000")
    assert lines[1].startswith("test accuracy 0.8000, test balanced accuracy 0.5000 on 5 held-out samples")
    assert lines[2] == "hyperparameters: dense_layers=0 · filters=8"  # dense_units builds nothing without dense layers
    assert "validation balanced accuracy 70.00 %" in vm.test_line(1, 0.8, 0.9, 5, "balanced_accuracy", 0.7, 0.5)
    assert vm.baseline_line(0.8, "a", 5, "balanced_accuracy", 0.5).startswith(
        "chance balanced accuracy 0.5000 (1/2 classes) on 5 validation samples: what a model must beat")


def test_evaluate_after_every_trial_failed_quotes_the_first_error(runs_dir):
    from hpo_nb.executors import InMemoryExecutor
    from hpo_nb.spec import TrialOutcome

    exp = Experiment("digits", n_trials=2, runs_dir=runs_dir, progress="none", name="all-failed", pruning=False,
                     executor=InMemoryExecutor(lambda job: TrialOutcome(job.spec.trial_number, "failed",
                                                                         error="ValueError: boom")))
    exp.run()
    with pytest.raises(ConfigError, match=r"^all 2 trials failed; the first error \(trial 0\): ValueError: boom"):
        exp.evaluate()
