"""Diagnostics measured by real training: a known tiny model, a text model, a whole search whose
plots are then drawn by a fresh process from storage only."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hpo_nb import Experiment, datasets
from hpo_nb.errors import ConfigError

pytestmark = pytest.mark.slow

SPACE = {"conv_blocks": 2, "filters": 8, "kernel_size": 3, "dense_layers": 0, "batch_size": 64,
         "batch_norm": False, "optimizer": "adam", "learning_rate": 3e-3}


def test_a_known_tiny_model_gives_the_expected_confusion_matrix_gradient_and_histogram_shapes():
    import keras

    from hpo_nb.diagnostics import collect

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = np.arange(64) % 3
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(5, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="out", kernel_initializer="zeros",
                                 bias_initializer=keras.initializers.Constant([0.0, 5.0, 0.0]))(hidden)
    model = keras.Model(inputs, outputs)
    # learning rate 0: the gradients are real, the weights (so the predictions: always class 1) stay
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    events = []
    cb = collect.DiagnosticsCallback(0, events.append)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[cb])
    assert "apply_gradients" not in model.optimizer.__dict__  # the hook is gone after fit
    d = cb.finish(model, x, y, 3, ["a", "b", "c"], "image")
    assert d["confusion_matrix"] == [[0, 22, 0], [0, 21, 0], [0, 21, 0]]
    assert d["per_class"]["recall"] == [0.0, 1.0, 0.0] and d["per_class"]["precision"] == [None, round(21 / 64, 4), None]
    g = d["gradients"]
    assert d["layers"] == ["hidden", "out"] and g["epochs"] == [1, 2, 3] and g["method"] == "every training batch"
    mean, peak = np.array(g["mean"]), np.array(g["max"])
    assert mean.shape == peak.shape == (3, 2) and (peak >= mean - 1e-6).all()
    assert (mean[:, 0] == 0).all() and (mean[:, 1] > 0).all()  # the zero output kernel blocks the hidden layer's
    assert np.allclose(mean, mean[0], rtol=0.05)  # same weights, same samples (shuffled batches) each epoch
    hist = d["weights"]
    assert hist["epochs"] == [0, 1, 2, 3]
    kernel = hist["layers"]["hidden"]["weights"]
    assert len(kernel["edges"]) == hist["bins"] + 1 and all(sum(c) == 4 * 5 for c in kernel["counts"])
    assert all(sum(c) == 5 for c in hist["layers"]["hidden"]["bias"]["counts"])
    assert kernel["counts"][0] == kernel["counts"][-1]  # lr 0: nothing moved
    assert [e.epoch for e in events] == [1, 2, 3] and events[0].layers == ("hidden", "out")


def test_text_trials_record_lstm_outputs_over_tokens(runs_dir):
    from hpo_nb.spec import TrialSpec
    from hpo_nb.training import train_trial

    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(["good", "fun"] if i % 2 else ["bad", "dull"], 3)) + " the movie" for i in range(120)]
    ds = datasets.from_arrays(np.array(texts, dtype=object), [i % 2 for i in range(120)], modality="text",
                              name="diag-text", max_tokens=50, sequence_length=8)
    datasets.attach(ds)
    params = {"embedding_dim": 8, "lstm_units": 8, "lstm_layers": 1, "bidirectional": True, "dense_layers": 0,
              "sequence_pooling": "last", "batch_size": 32}
    outcome = train_trial(TrialSpec(0, "diag-text", params, 2))
    assert outcome.state == "complete", outcome.error
    act = outcome.diagnostics["activations"]
    assert act["kind"] == "text" and act["layers"] == ["bilstm_1"] and len(act["samples"]) == 2
    from hpo_nb.diagnostics import record

    arrays = record.decode_arrays(outcome.diagnostics[record.INLINE_KEY][record.ACTIVATIONS])
    assert arrays["input"].shape == (2, 8) and arrays["bilstm_1"].shape == (2, 8, 16)  # samples x tokens x units
    words = act["words"]  # the trial's TextVectorization vocabulary, for the samples' tokens
    assert set(words) == {str(int(t)) for t in arrays["input"].reshape(-1)}
    assert words["0"] == "[pad]" and {"the", "movie"} <= set(words.values())
    vocabulary = ds.vocabulary()
    assert all(words[str(t)] == vocabulary[t] for t in arrays["input"].reshape(-1) if t > 1)


def test_plots_come_back_from_storage_in_a_fresh_process(runs_dir):
    exp = Experiment("digits", n_trials=1, max_epochs=2, name="diag", runs_dir=runs_dir, progress="none",
                     search_space=SPACE, pruning=False)
    exp.run()
    best = exp.best
    diag = best.diagnostics
    assert diag["layers"] == ["conv_1", "conv_2", "output"] and "inline" not in diag
    assert (runs_dir / "diag" / "artifacts" / diag["artifacts"]["activations.npz"]).exists()
    stored = exp.study.trials[0].user_attrs["diagnostics"]
    assert stored == diag and len(json.dumps(stored)) < 256 * 1024

    script = textwrap.dedent(f"""
        import json, plotly.graph_objects as go
        from hpo_nb import Experiment
        exp = Experiment("digits", n_trials=1, max_epochs=2, name="diag", runs_dir={str(runs_dir)!r},
                         progress="none", search_space={SPACE!r}, pruning=False)
        figs = {{n: getattr(exp, n)() for n in ("plot_confusion_matrix", "plot_learning_curves", "plot_gradient_flow",
                                               "plot_weights", "plot_activations")}}
        assert all(isinstance(f, go.Figure) for f in figs.values())
        import sys
        print(json.dumps({{"trials": len(exp.study.trials), "training": "hpo_nb.training" in sys.modules,
                          "cm": int(sum(map(sum, figs["plot_confusion_matrix"].data[0].text))),
                          "activation_traces": len(figs["plot_activations"].data),
                          "curves": len(figs["plot_learning_curves"].data)}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    n_val = sum(diag["per_class"]["support"])
    assert result == {"trials": 1, "training": False, "cm": n_val, "activation_traces": 2 * 3 * 9, "curves": 4}

    off = Experiment("digits", n_trials=1, max_epochs=1, name="nodiag", runs_dir=runs_dir, progress="none",
                     search_space=SPACE, pruning=False, diagnostics=False)
    off.run()
    assert off.best.diagnostics == {} and not (runs_dir / "nodiag" / "artifacts").exists()
    with pytest.raises(ConfigError, match="diagnostics=False"):
        off.plot_gradient_flow()
    assert off.plot_learning_curves().data  # learning curves come from the history, always kept
    with pytest.raises(ConfigError, match="diagnostics must be True or False"):
        Experiment("digits", name="bad", runs_dir=runs_dir, progress="none", diagnostics="yes")


def test_the_cli_turns_diagnostics_off(tmp_path):
    import optuna

    space = json.dumps({**SPACE, "conv_blocks": 1})
    out = subprocess.run([sys.executable, "-m", "hpo_nb", "run", "--trials", "1", "--max-epochs", "1", "--quiet",
                          "--no-evaluate", "--no-diagnostics", "--name", "cli-off", "--search-space", space],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    study = optuna.load_study(study_name="cli-off", storage=f"sqlite:///{tmp_path / 'runs' / 'cli-off' / 'study.db'}")
    assert study.trials[0].user_attrs["diagnostics"] == {} and study.trials[0].user_attrs["accuracy"] is not None


def test_the_confusion_matrix_comes_from_fits_own_validation_pass_and_norms_from_every_batch(monkeypatch):
    """The end of a trial predicts nothing again (the best epoch's validation pass counted the
    matrix), and the per-batch norm ops in the train step give the norms a tape gives."""
    import keras
    import tensorflow as tf

    from hpo_nb.diagnostics import collect
    from hpo_nb.spec import TrialSpec
    from hpo_nb.training import train_trial

    predicted = []
    real = collect.predict_classes
    monkeypatch.setattr(collect, "predict_classes", lambda model, x: predicted.append(len(x)) or real(model, x))
    outcome = train_trial(TrialSpec(0, "digits", {**SPACE, "conv_blocks": 1}, 2))
    assert outcome.state == "complete", outcome.error
    cm = np.array(outcome.diagnostics["confusion_matrix"])
    assert predicted == [] and cm.sum() == sum(outcome.diagnostics["per_class"]["support"])
    assert np.trace(cm) / cm.sum() == pytest.approx(outcome.accuracy, abs=1e-6)  # the best epoch's val accuracy

    # norms: learning rate 0, so every batch of every epoch sees the same weights
    x = np.random.default_rng(1).normal(size=(48, 4)).astype("float32")
    y = np.arange(48) % 3
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(5, activation="tanh", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="out")(hidden))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = collect.DiagnosticsCallback(0)
    model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0, callbacks=[cb], validation_data=(x, y))
    assert "test_step" not in model.__dict__ and "compute_metrics" not in model.__dict__  # unhooked after fit
    norms = []
    for i in range(0, 48, 16):
        with tf.GradientTape() as tape:
            loss = keras.losses.SparseCategoricalCrossentropy()(y[i:i + 16], model(x[i:i + 16]))
        grads = tape.gradient(loss, [v.value for v in model.trainable_weights])
        norms.append([float(tf.linalg.global_norm(grads[:2])), float(tf.linalg.global_norm(grads[2:]))])
    assert np.allclose(cb.grad_mean, [np.mean(norms, axis=0)] * 2, rtol=2e-3)
    assert np.allclose(cb.grad_max, [np.max(norms, axis=0)] * 2, rtol=2e-3)
    d = cb.finish(model, x, y, 3, None, "image", best_epoch=1)
    expected = collect.classification_report(np.argmax(model(x), axis=-1), y, ["0", "1", "2"])
    assert d["confusion_matrix"] == expected["confusion_matrix"]


def test_a_diverged_trial_keeps_its_gradient_flow_with_the_non_finite_epochs_as_null():
    from hpo_nb.spec import TrialSpec
    from hpo_nb.training import train_trial

    # a learning rate of 1e30 overflows the weights within the first epoch: the loss becomes NaN
    outcome = train_trial(TrialSpec(0, "digits", {**SPACE, "conv_blocks": 1, "optimizer": "sgd",
                                                  "learning_rate": 1e30}, 2))
    assert outcome.state == "failed" and "loss became" in outcome.error
    g = outcome.diagnostics["gradients"]
    assert g["epochs"] == [1] and g["batches"][0] > 1
    # the batches before the blow-up still give each layer a finite mean; the rest are counted
    assert all(m is not None for m in g["mean"][0]) and all(0 < bad < g["batches"][0] for bad in g["non_finite"][0])
    json.dumps(outcome.diagnostics, allow_nan=False)
    assert "confusion_matrix" not in outcome.diagnostics  # the diverged model is not worth predicting with

    from hpo_nb.analysis import diagnostics as data
    from hpo_nb.views import diagnostic_plots as plots

    fig = plots.gradient_flow(data.gradient_flow(outcome.diagnostics, 0))
    assert "non-finite gradients" in fig.layout.title.subtitle.text
    with pytest.raises(ConfigError, match="diverged"):
        data.confusion_info(outcome.diagnostics, 0)


def test_activation_arrays_in_a_shared_artifact_store_reach_another_reader(runs_dir, tmp_path):
    """The study records the folder store its arrays went to: a reader in another process on the
    same storage draws them without artifact_store=; a given store still wins."""
    import optuna

    from hpo_nb.diagnostics.store import recorded_stores

    shared = tmp_path / "shared-artifacts"
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    exp = Experiment("digits", n_trials=1, max_epochs=1, name="shared", runs_dir=runs_dir, progress="none",
                     search_space=SPACE, pruning=False, storage=storage,
                     artifact_store=optuna.artifacts.FileSystemArtifactStore(str(shared)))
    exp.run()
    artifact = exp.best.diagnostics["artifacts"]["activations.npz"]
    assert (shared / artifact).exists() and not (runs_dir / "shared" / "artifacts").exists()
    assert recorded_stores(exp.study.user_attrs) == [{"type": "FileSystemArtifactStore", "path": str(shared.resolve())}]

    elsewhere = tmp_path / "other-machine"  # another run folder on the same study, no artifact_store=
    script = textwrap.dedent(f"""
        import json
        from hpo_nb import Experiment
        reader = Experiment("digits", n_trials=1, max_epochs=1, name="shared", runs_dir={str(elsewhere)!r},
                            progress="none", search_space={SPACE!r}, storage={storage!r})
        print(json.dumps({{"traces": len(reader.plot_activations().data)}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"traces": 2 * 3 * 9}

    empty = tmp_path / "empty-store"  # a given store is the only one read
    other = Experiment("digits", n_trials=1, max_epochs=1, name="shared", runs_dir=elsewhere, progress="none",
                       search_space=SPACE, storage=storage, artifact_store=str(empty))
    assert other.plot_gradient_flow().data  # everything else comes with the study
    with pytest.raises(ConfigError) as err:
        other.plot_activations()
    message = str(err.value)
    assert str(empty.resolve()) in message and artifact in message
    assert f"{shared.resolve()}, not the store given as artifact_store=" in message
