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
