"""Per-trial diagnostics as data: bounds, the confusion matrix, gradient-flow and histogram
shapes, the wire format, the live path (hub, worker payloads, client tracker), the figures and
the panel. No training here (test_diagnostics_training.py trains)."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from hpo_nb.analysis import diagnostics as data
from hpo_nb.diagnostics import collect, record
from hpo_nb.errors import ConfigError
from hpo_nb.executors.runpod import wire
from hpo_nb.progress import EpochDiagnostics, EpochEnded, ProgressHub, TrialStarted
from hpo_nb.spec import TrialOutcome, TrialSpec
from hpo_nb.views import diagnostic_plots as plots

LAYERS = ["conv_1", "conv_2", "output"]


def summary(epochs: int = 3, layers=LAYERS, classes: int = 3, bins: int = record.HISTOGRAM_BINS) -> dict:
    """A diagnostics summary shaped as collect makes it, with known numbers."""
    rng = np.random.default_rng(0)
    hist = {name: {kind: {"edges": np.linspace(-1, 1, bins + 1).tolist(),
                          "counts": rng.integers(0, 50, (epochs + 1, bins)).tolist(),
                          "stats": rng.normal(size=(epochs + 1, 4)).tolist()} for kind in ("weights", "bias")}
            for name in layers}
    report = collect.classification_report([0, 1, 1, 2, 2, 2], [0, 1, 2, 2, 2, 1], [f"c{i}" for i in range(classes)])
    return {"version": 1, "layers": list(layers),
            "gradients": {"method": "every training batch", "epochs": list(range(1, epochs + 1)),
                          "mean": [[0.1 * (i + 1) + j for j in range(len(layers))] for i in range(epochs)],
                          "max": [[0.2 * (i + 1) + j for j in range(len(layers))] for i in range(epochs)]},
            "weights": {"bins": bins, "epochs": list(range(epochs + 1)), "layers": hist}, **report}


# ------------------------------------------------------------------ data


def test_classification_report_counts_rows_true_columns_predicted():
    r = collect.classification_report(y_pred=[0, 1, 1, 2, 2, 2], y_true=[0, 1, 2, 2, 2, 1], class_names=["a", "b", "c"])
    assert r["confusion_matrix"] == [[1, 0, 0], [0, 1, 1], [0, 1, 2]]
    assert r["per_class"]["support"] == [1, 2, 3]
    assert r["per_class"]["recall"] == [1.0, 0.5, round(2 / 3, 4)]
    assert r["per_class"]["precision"] == [1.0, 0.5, round(2 / 3, 4)]
    empty = collect.classification_report([0, 0], [0, 0], ["a", "b"])
    assert empty["per_class"]["recall"] == [1.0, None] and empty["per_class"]["precision"] == [1.0, None]


def test_fixed_samples_are_the_first_of_each_of_the_first_classes():
    assert collect.fixed_samples(np.array([2, 2, 0, 1, 0, 3])) == [2, 3, 0]


def test_gradient_flow_is_layers_by_epochs_and_live_events_give_the_same():
    flow = data.gradient_flow(summary(epochs=4), trial=0)
    assert flow.mean.shape == flow.max.shape == (3, 4) and flow.layers == LAYERS and flow.epochs == [1, 2, 3, 4]
    assert flow.mean[2, 0] == pytest.approx(2.1) and flow.max[0, 3] == pytest.approx(0.8)
    events = [EpochDiagnostics(0, e, tuple(LAYERS), tuple(flow.mean[:, e - 1]), tuple(flow.max[:, e - 1]))
              for e in (3, 1, 2, 4)]
    live = data.live_gradient_flow(events)
    assert np.allclose(live.mean, flow.mean) and np.allclose(live.max, flow.max) and live.epochs == [1, 2, 3, 4]
    assert data.live_gradient_flow([]) is None


def test_weight_histograms_and_learning_curves_as_data():
    h = data.weight_histograms(summary(epochs=2), trial=0)
    assert h.epochs == [0, 1, 2] and len(h.histograms) == 6
    assert all(x.counts.shape == (3, record.HISTOGRAM_BINS) and len(x.edges) == record.HISTOGRAM_BINS + 1
               for x in h.histograms)

    class T:
        number, history = 7, {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8],
                              "val_accuracy": [0.4, 0.75]}

    frame = data.learning_curves_frame([T()])
    assert len(frame) == 8 and set(frame.split) == {"train", "validation"} and set(frame.metric) == {"loss", "accuracy"}
    assert frame[(frame.split == "validation") & (frame.metric == "accuracy")].value.tolist() == [0.4, 0.75]


def test_missing_diagnostics_say_why():
    with pytest.raises(ConfigError, match="diagnostics=False"):
        data.confusion_info({}, trial=3)
    with pytest.raises(ConfigError, match="weights"):
        data.weight_histograms({"layers": [], "trimmed": ["weights (over 262144 bytes)"]}, trial=3)
    with pytest.raises(ConfigError, match="artifact store"):
        data.activation_maps({"activations": {"layers": ["conv_1"]}}, None, trial=3)


# ------------------------------------------------------------------ bounds and the wire


def test_arrays_round_trip_through_base64_npz():
    arrays = {"input": np.arange(12, dtype=np.float16).reshape(1, 3, 4), "conv_1": np.ones((1, 2, 2, 3), np.float16)}
    back = record.decode_arrays(record.encode_arrays(arrays))
    assert set(back) == set(arrays) and all(np.array_equal(back[k], arrays[k]) for k in arrays)


def test_a_long_trial_is_thinned_to_the_bound_keeping_first_and_last_epochs():
    big = summary(epochs=300, layers=[f"layer_{i}" for i in range(12)])
    assert record.json_size(big) > record.MAX_SUMMARY_BYTES
    big[record.INLINE_KEY] = {record.ACTIVATIONS: "x" * (record.MAX_INLINE_BYTES + 1)}
    record.fit_to_bound(big)
    assert record.json_size({k: v for k, v in big.items() if k != record.INLINE_KEY}) <= record.MAX_SUMMARY_BYTES
    assert record.INLINE_KEY not in big or not big[record.INLINE_KEY]
    epochs = big["weights"]["epochs"]
    assert epochs[0] == 0 and epochs[-1] == 300 and 2 <= len(epochs) < 301
    counts = big["weights"]["layers"]["layer_0"]["weights"]["counts"]
    assert len(counts) == len(epochs)
    assert len(big["gradients"]["mean"]) == 300  # gradients stay whole
    assert any("thinned" in t for t in big["trimmed"]) and any("artifact" in t for t in big["trimmed"])
    small = summary()
    assert "trimmed" not in record.fit_to_bound(small)


def test_a_huge_confusion_matrix_is_dropped_alone_and_the_note_gives_its_own_size():
    """400 classes: the 400 x 400 matrix alone breaks the bound; the small histograms and the
    per-class table stay, and the note names what was dropped and how big it was."""
    names = [f"class_{i}" for i in range(400)]
    rng = np.random.default_rng(0)
    report = collect.classification_report(rng.integers(0, 400, 20000), rng.integers(0, 400, 20000), names)
    d = {**summary(epochs=3), **report}
    matrix = record.json_size(d["confusion_matrix"])
    assert matrix > record.MAX_SUMMARY_BYTES
    record.fit_to_bound(d)
    assert "confusion_matrix" not in d and {"weights", "per_class", "gradients"} <= set(d)
    [note] = d["trimmed"]
    assert note.startswith(f"confusion matrix dropped: {matrix} bytes, the summary was ") \
        and note.endswith(f"bytes, over the {record.MAX_SUMMARY_BYTES}-byte bound")
    with pytest.raises(ConfigError, match="confusion matrix dropped: .* bytes"):
        data.confusion_info(d, 0)


def test_results_round_trip_through_the_wire_format_within_the_bound():
    diag = summary()
    diag[record.INLINE_KEY] = {record.ACTIVATIONS: record.encode_arrays({"input": np.zeros((3, 8, 8, 1), np.float16)})}
    outcome = TrialOutcome(4, "complete", accuracy=0.9, score=0.9, history={"loss": [1.0]}, diagnostics=diag)
    result = json.loads(json.dumps(wire.encode_result(outcome)))  # what RunPod stores and /status returns
    back = wire.decode_result(result)
    assert isinstance(back, TrialOutcome) and back.diagnostics == diag and back.accuracy == 0.9

    huge = TrialOutcome(5, "complete", diagnostics={"layers": ["x"] * 10, record.INLINE_KEY: {"a": "y" * wire.MAX_RESULT_BYTES}})
    bounded = wire.encode_result(huge)
    assert record.json_size(bounded) <= wire.MAX_RESULT_BYTES
    assert bounded["outcome"]["diagnostics"] == {"layers": ["x"] * 10} and bounded["outcome"]["extra"]["dropped"] == ["inline"]
    assert isinstance(wire.decode_result({"outcome": {"diagnostics": {"x": "y" * wire.MAX_RESULT_BYTES}}}), str)


def test_job_input_carries_the_diagnostics_switch():
    spec = TrialSpec(0, "digits", {"batch_size": 32}, 2, diagnostics=False)
    assert len(spec.to_json()) < wire.MAX_INPUT_BYTES
    assert wire.decode_input(wire.encode_spec(spec)).diagnostics is False
    assert wire.decode_input(wire.encode_spec(TrialSpec(0, "digits", {}, 2))).diagnostics is True
    assert "diagnostics" in wire.validation_problem({**spec.to_dict(), "diagnostics": "no"})


# ------------------------------------------------------------------ live: hub, worker payloads, tracker


def test_hub_keeps_each_running_trials_epoch_gradients_once():
    hub = ProgressHub(1)
    hub.publish(TrialStarted(0, 3))
    for epoch in (1, 2, 2):
        hub.publish(EpochDiagnostics(0, epoch, ("a", "b"), (1.0, 2.0), (1.5, 2.5)))
    assert [g.epoch for g in hub.snapshot().running[0].gradients] == [1, 2]
    hub.publish(EpochDiagnostics(9, 1, ("a",), (1.0,), (1.0,)))  # not running: ignored
    assert [t.trial for t in hub.snapshot().running] == [0]


def test_remote_gradients_travel_in_progress_payloads_and_reach_the_hub():
    from hpo_nb.executors.base import TrialJob
    from hpo_nb.executors.runpod.tracking import Tracker
    from hpo_nb.executors.runpod.worker import ProgressReporter

    sent = []
    spec = TrialSpec(0, "digits", {}, 3)
    reporter = ProgressReporter({"id": "j"}, spec, send=lambda job, payload: sent.append(json.loads(json.dumps(payload))))
    reporter(EpochDiagnostics(0, 1, ("conv_1", "output"), (0.5, 0.25), (0.75, 0.5)))
    reporter(EpochEnded(0, 1, 3, {"loss": 1.0, "val_accuracy": 0.5}))
    assert sent[-1]["gradients"] == [{"epoch": 1, "layers": ["conv_1", "output"], "mean": [0.5, 0.25], "max": [0.75, 0.5]}]

    hub = ProgressHub(1)
    hub.publish(TrialStarted(0, 3))
    import threading

    tracker = Tracker(TrialJob(spec=spec, publish=hub.publish, stop=threading.Event()), hub.publish)
    tracker.follow(sent[-1])
    running = hub.snapshot().running[0]
    assert running.epochs_done == 1 and [(g.epoch, g.layers, g.max) for g in running.gradients] == \
        [(1, ("conv_1", "output"), (0.75, 0.5))]


# ------------------------------------------------------------------ figures and the panel


def test_each_figure_draws_from_data():
    d = summary()
    assert isinstance(plots.gradient_flow(data.gradient_flow(d, 0)), go.Figure)
    fig = plots.weights(data.weight_histograms(d, 0))
    assert len(fig.frames) == 4 and len(fig.layout.sliders[0].steps) == 4 and len(fig.data) == 6
    cm = plots.confusion_matrix(data.confusion_info(d, 0))
    assert cm.data[0].z.shape == (3, 3)
    maps = data.ActivationMaps("image", ["conv_1"], [0, 5], ["a", "b"], np.zeros((2, 8, 8, 1)),
                               {"conv_1": np.ones((2, 8, 8, 4), np.float32)}, {"conv_1": [0, 1, 2, 3]})
    assert len(plots.activations(maps).data) == 2 * (1 + 4)
    text = data.ActivationMaps("text", ["lstm_1"], [0], ["pos"], np.array([[4, 5, 0]]),
                               {"lstm_1": np.ones((1, 3, 6), np.float32)}, {"lstm_1": list(range(6))})
    assert plots.activations(text).data[0].z.shape == (6, 2)  # units x tokens, padding left out


def test_image_activation_rows_are_named_horizontally_left_of_each_row_never_overlapping():
    from hpo_nb.views.ticklabels import label_px

    labels = ["cls000", "Very long category name number 001 (subgroup alpha)", "cls002"]
    maps = data.ActivationMaps("image", ["conv_1"], [0, 4, 8], labels, np.zeros((3, 8, 8, 1)),
                               {"conv_1": np.ones((3, 8, 8, 4), np.float32)}, {"conv_1": [0, 1, 2, 3]})
    fig = plots.activations(maps)
    notes = list(fig.layout.annotations)
    assert [a.text.split("<br>")[0] for a in notes] == ["sample 0", "sample 4", "sample 8"]
    assert all(a.textangle in (None, 0) and a.xanchor == "right" and a.x <= 0 for a in notes)  # horizontal, left
    assert notes[1].hovertext == f"sample 4 (class {labels[1]})" and len(notes[1].text) < 40  # shortened
    assert fig.layout.margin.l >= label_px([line for a in notes for line in a.text.split("<br>")])
    plot_px = fig.layout.height - 180  # plotly's default top and bottom margins
    centres = [a.y * plot_px for a in notes]
    assert all(abs(a - b) >= 2 * 16 for a, b in zip(centres, centres[1:]))  # two lines of 12 px text each
    rows = [fig.layout[f"yaxis{'' if r == 0 else r * 9 + 1}"].domain for r in range(3)]
    assert all(lo < a.y < hi for a, (lo, hi) in zip(notes, rows))  # each beside its own row


class _Source:
    """Stands in for an Experiment: draws from the summary above."""

    def __init__(self) -> None:
        self.calls = []

    def plot_gradient_flow(self, number):
        self.calls.append(("gradient", number))
        return plots.gradient_flow(data.gradient_flow(summary(), number))

    def plot_confusion_matrix(self, number):
        raise ConfigError(f"trial {number} has no diagnostics: it ran with diagnostics=False")


def test_panel_draws_the_picked_trial_and_the_live_gradient_flow_of_a_running_one():
    from hpo_nb.progress import TrialFinished
    from hpo_nb.views.diagnostics import DiagnosticsPanel

    source = _Source()
    closed = DiagnosticsPanel(source, background=False)
    closed.show(0)
    assert closed.output.outputs == () and source.calls == []  # collapsed: nothing drawn, nothing read
    panel = DiagnosticsPanel(source, background=False, opened=True)  # drawn at once (the dashboard's draws on a thread)
    hub = ProgressHub(2)
    hub.publish(TrialStarted(0, 2))
    hub.publish(TrialFinished(0, "complete", accuracy=0.9, score=0.9))
    hub.publish(TrialStarted(1, 3))
    panel.update(hub.snapshot())
    assert [v for _, v in panel.trial.options] == [1, 0]
    panel.show(0)
    assert source.calls == [("gradient", 0)]
    assert "application/vnd.plotly.v1+json" in panel.output.outputs[0]["data"]
    panel.view.value = "Confusion matrix"
    assert "diagnostics=False" in panel.output.outputs[0]["data"]["text/plain"]

    panel.view.value = "Gradient flow"
    panel.trial.value = 1  # the user picks the running trial in the panel: running, no epoch yet
    assert "after the first epoch" in panel.output.outputs[0]["data"]["text/plain"]
    hub.publish(EpochDiagnostics(1, 1, ("a", "b"), (1.0, 2.0), (1.0, 3.0)))
    panel.update(hub.snapshot())
    first = panel.output.outputs[0]["data"]["application/vnd.plotly.v1+json"]["data"][0]
    hub.publish(EpochDiagnostics(1, 2, ("a", "b"), (1.0, 2.0), (1.0, 3.0)))
    panel.update(hub.snapshot())
    second = panel.output.outputs[0]["data"]["application/vnd.plotly.v1+json"]["data"][0]
    assert len(first["x"]) == 1 and len(second["x"]) == 2  # redrawn as the epoch ended
    title = panel.output.outputs[0]["data"]["application/vnd.plotly.v1+json"]["layout"]["title"]["text"]
    assert title == "Trial 1 gradient flow, live"  # not "..., live (live)"
    assert source.calls == [("gradient", 0)]  # the live view never read storage
    panel.show(0)  # the dashboard following its best trial does not take the user's pick away
    assert panel.trial.value == 1
    panel.show(0, force=True)  # a pick in the dashboard does
    assert panel.trial.value == 0 and source.calls == [("gradient", 0)]  # drawn from the cache


def test_the_dashboards_panel_draws_on_its_own_thread():
    import threading
    import time

    from hpo_nb.progress import TrialFinished
    from hpo_nb.views.diagnostics import DiagnosticsPanel

    gate = threading.Event()

    class Slow(_Source):
        def plot_gradient_flow(self, number):
            gate.wait(10)  # a slow storage read
            return super().plot_gradient_flow(number)

    panel = DiagnosticsPanel(Slow(), opened=True)
    hub = ProgressHub(1)
    hub.publish(TrialStarted(0, 2))
    hub.publish(TrialFinished(0, "complete", accuracy=0.9, score=0.9))
    panel.update(hub.snapshot())
    started = time.monotonic()
    panel.show(0)  # returns at once: the caller (the kernel's message routing) never waits for a drawing
    assert time.monotonic() - started < 5 and not gate.is_set()
    gate.set()
    deadline = time.monotonic() + 10
    while not panel.output.outputs or "application/vnd.plotly.v1+json" not in panel.output.outputs[0]["data"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)


@pytest.mark.parametrize("trials", ["01", [], [True], [0.9], True])
def test_learning_curves_take_trial_numbers_only(tmp_path, trials):
    from hpo_nb import Experiment

    exp = Experiment("digits", n_trials=1, max_epochs=1, runs_dir=tmp_path, progress="none", name="lc-args")
    with pytest.raises(ConfigError, match="trials must be a trial number or a list"):
        exp.plot_learning_curves(trials)
    with pytest.raises(ConfigError, match="no trial number 3"):  # one number is a list of one
        exp.plot_learning_curves(3)


# ------------------------------------------------------------------ new-user check (issue 18 follow-up)


def _dense_model(seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(5, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="out")(hidden))


def test_weights_that_outgrow_the_first_epochs_range_are_counted_not_clipped():
    model = _dense_model()
    cb = collect.DiagnosticsCallback(0, replicas=2)  # replicas > 1: no optimizer hook, histograms only
    cb.set_model(model)
    cb.on_train_begin()
    kernel = model.get_layer("hidden").kernel
    original = kernel.numpy()
    grown = original.copy()
    grown[0, :3] = [10.0, -10.0, 10.0]  # far beyond 3 x the initial largest magnitude
    grown[1, 0] = np.nan
    kernel.assign(grown)
    cb._histograms(1)
    entry = cb.per_epoch()["weights"]["layers"]["hidden"]["weights"]
    assert entry["under"] == [0, 1] and entry["over"] == [0, 2] and entry["nan"] == [0, 1]
    assert [sum(c) for c in entry["counts"]] == [20, 16]  # in-range values only: none piled into the end bins
    assert entry["counts"][1][0] <= entry["counts"][0][0] + 1 and entry["stats"][1] == [None] * 4
    json.dumps(cb.per_epoch(), allow_nan=False)

    hists = data.weight_histograms(cb.per_epoch(), trial=0)
    fig = plots.weights(hists)
    epoch1 = [a.text for a in fig.frames[1].layout.annotations]
    r = hists.histograms[0].limit
    assert any(f"3 beyond ±{r:.3g} (1 below, 2 above); 1 NaN" in t for t in epoch1 if t.startswith("hidden · weights"))
    assert not any("beyond" in t for t in (a.text for a in fig.frames[0].layout.annotations))
    assert any("beyond" in a.text for a in fig.layout.annotations)  # the last epoch is the one first shown


def test_batch_normalization_panels_are_titled_gamma_and_beta():
    import keras

    inputs = keras.Input((4,))
    normed = keras.layers.BatchNormalization(name="norm")(keras.layers.Dense(5, name="hidden")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="out")(normed))
    cb = collect.DiagnosticsCallback(0, replicas=2)
    cb.set_model(model)
    cb.on_train_begin()
    d = cb.per_epoch()
    assert d["weights"]["layers"]["norm"]["weights"]["variables"] == ["gamma"]
    titles = [a.text for a in plots.weights(data.weight_histograms(d, 0)).layout.annotations]
    assert titles == ["hidden · weights", "hidden · bias", "norm · gamma (scale)", "norm · beta (offset)",
                      "out · weights", "out · bias"]
    old = summary(layers=["conv_1", "conv_1_bn"])  # a record from before variable names: hpo-nb's "_bn" layers
    assert [h.label for h in data.weight_histograms(old, 0).histograms] == \
        ["weights", "bias", "gamma (scale)", "beta (offset)"]


def test_an_old_record_without_out_of_range_counts_still_plots():
    old = summary(epochs=2)  # version 1: no under / over / nan
    hists = data.weight_histograms(old, trial=0)
    assert hists.histograms[0].under is None and hists.histograms[0].outside_note(1) == ""
    fig = plots.weights(hists)
    assert len(fig.frames) == 3 and not any("beyond" in a.text for f in fig.frames for a in f.layout.annotations)


def test_non_finite_gradient_norms_are_stored_as_null_and_drawn_as_gaps_with_a_note():
    assert record.round_list([1.0, float("nan"), float("inf"), -float("inf")]) == [1.0, None, None, None]
    d = summary(epochs=3)
    d["gradients"]["mean"][1] = [None, 0.5, None]
    d["gradients"]["max"][1] = [None, 0.9, None]
    record.json_size(d)  # strict JSON
    flow = data.gradient_flow(d, trial=0)
    assert np.isnan(flow.mean[0, 1]) and flow.mean[1, 1] == 0.5 and flow.non_finite() == {2: ["conv_1", "output"]}
    fig = plots.gradient_flow(flow)
    assert np.isnan(np.asarray(fig.data[0].z, dtype=float)[0, 1])  # a gap, not a zero norm
    note = fig.layout.title.subtitle.text  # above the plot, not on the x axis's title
    assert "non-finite gradients" in note and "epoch 2: conv_1, output" in note

    live = data.live_gradient_flow([EpochDiagnostics(0, 1, ("a", "b"), (1.0, float("nan")), (1.0, float("inf")))])
    assert "epoch 1: b" in plots.gradient_flow(live).layout.title.subtitle.text


def test_a_diverging_epoch_keeps_the_mean_of_its_finite_batches_and_counts_the_others():
    """Batch 3 holds a NaN input, so its hidden layer's gradient is NaN: that layer's mean and max
    are those of batches 1-2 (a tape on the same weights: learning rate 0) and 1 of its 3 batches
    is counted non-finite. (The output layer's may stay finite in the compiled step, where the
    ReLU can map NaN to 0, so only the hidden layer is compared.)"""
    import keras
    import tensorflow as tf

    x = np.random.default_rng(1).normal(size=(48, 4)).astype("float32")
    x[40, 0] = np.nan
    y = np.arange(48) % 3
    model = _dense_model()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    norms = []  # before fit: the NaN batch's update (0 x NaN) leaves NaN weights
    for i in (0, 16, 32):
        with tf.GradientTape() as tape:
            loss = keras.losses.SparseCategoricalCrossentropy()(y[i:i + 16], model(x[i:i + 16]))
        grads = tape.gradient(loss, [v.value for v in model.trainable_weights])
        norms.append([float(tf.linalg.global_norm(grads[:2])), float(tf.linalg.global_norm(grads[2:]))])
    events = []
    cb = collect.DiagnosticsCallback(0, publish=events.append)
    model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0, callbacks=[cb])
    norms = np.array(norms)
    assert not np.isfinite(norms[2, 0]) and np.isfinite(norms[:2]).all()
    assert cb.grad_mean[0][0] == pytest.approx(norms[:2, 0].mean(), rel=2e-3)
    assert cb.grad_max[0][0] == pytest.approx(norms[:2, 0].max(), rel=2e-3)
    g = cb.per_epoch()["gradients"]
    assert g["batches"] == [3] and g["non_finite"][0][0] == 1 and g["non_finite"][0][1] in (0, 1)
    assert cb.grad_mean[0][1] is not None
    flow = data.gradient_flow(cb.per_epoch(), 0)
    note = plots.gradient_flow(flow).layout.title.subtitle.text
    assert "hidden: 1 of 3 batches non-finite at epoch 1" in note
    assert events[0].non_finite[0] == 1 and events[0].batches == 3  # the live view counts them too
    assert "hidden: 1 of 3 batches" in data.live_gradient_flow(events).non_finite_note()


def test_gradient_flow_keeps_every_layer_row_and_scales_colours_without_zero_norms():
    blank = {"layers": ["conv_1", "output"], "gradients": {"epochs": [1], "mean": [[None, None]],
                                                            "max": [[None, None]]}}
    fig = plots.gradient_flow(data.gradient_flow(blank, 0))
    assert list(fig.layout.yaxis.ticktext) == ["conv_1", "output"] and "non-finite" in fig.layout.title.subtitle.text
    assert not fig.layout.annotations  # nothing drawn over the x axis's title
    d = summary(epochs=2)
    d["gradients"]["mean"] = [[0.0, 1e-3, 1e-1], [0.0, 1e-2, 1.0]]
    fig = plots.gradient_flow(data.gradient_flow(d, 0))
    assert (fig.data[0].zmin, fig.data[0].zmax) == pytest.approx((-3, 0))  # not squeezed down to log10 1e-12
    zero = np.asarray(fig.data[1].z, dtype=float)
    assert zero[0].tolist() == [0, 0] and np.isnan(zero[1:]).all()  # the zero norms: their own grey cells
    assert np.isnan(np.asarray(fig.data[0].z, dtype=float)[0]).all()


def test_non_finite_gradient_norms_cross_the_runpod_payload_as_null():
    import threading

    from hpo_nb.executors.base import TrialJob
    from hpo_nb.executors.runpod.tracking import Tracker
    from hpo_nb.executors.runpod.worker import ProgressReporter

    sent = []
    spec = TrialSpec(0, "digits", {}, 3)
    reporter = ProgressReporter({"id": "j"}, spec,
                                send=lambda job, payload: sent.append(json.loads(json.dumps(payload, allow_nan=False))))
    reporter(EpochDiagnostics(0, 1, ("conv_1", "output"), (float("nan"), 0.25), (float("inf"), 0.5), (45, 3), 45))
    reporter(EpochEnded(0, 1, 3, {"loss": 1.0, "val_accuracy": 0.5}))
    assert sent[-1]["gradients"][0]["mean"] == [None, 0.25] and sent[-1]["gradients"][0]["max"] == [None, 0.5]
    assert sent[-1]["gradients"][0]["non_finite"] == [45, 3] and sent[-1]["gradients"][0]["batches"] == 45
    hub = ProgressHub(1)
    hub.publish(TrialStarted(0, 3))
    Tracker(TrialJob(spec=spec, publish=hub.publish, stop=threading.Event()), hub.publish).follow(sent[-1])
    g = hub.snapshot().running[0].gradients[0]
    assert np.isnan(g.mean[0]) and g.mean[1] == 0.25  # the live panel draws the gap and the note
    assert g.non_finite == (45, 3) and g.batches == 45
    note = data.live_gradient_flow([g]).non_finite_note()
    assert "conv_1: 45 of 45 batches non-finite at epoch 1" in note and "output: 3 of 45 batches" in note


def test_the_live_panel_notes_non_finite_gradients():
    from hpo_nb.views.diagnostics import DiagnosticsPanel

    panel = DiagnosticsPanel(_Source(), background=False, opened=True)
    hub = ProgressHub(1)
    hub.publish(TrialStarted(0, 3))
    hub.publish(EpochDiagnostics(0, 1, ("a", "b"), (1.0, 2.0), (1.0, 3.0)))
    hub.publish(EpochDiagnostics(0, 2, ("a", "b"), (float("nan"), 2.0), (float("nan"), 3.0)))
    panel.update(hub.snapshot())
    panel.trial.value = 0
    spec = panel.output.outputs[0]["data"]["application/vnd.plotly.v1+json"]
    note = spec["layout"]["title"]["subtitle"]["text"]
    assert "non-finite gradients" in note and "epoch 2: a" in note


def test_text_activation_maps_show_words_and_the_kept_unit_numbers():
    assert collect.token_words(np.array([[5, 2, 1, 0]]), ["", "[UNK]", "the", "movie", "is", "good"]) == \
        {"0": "[pad]", "1": "[UNK]", "2": "the", "5": "good"}
    info = {"activations": {"kind": "text", "layers": ["lstm_1"], "samples": [4], "labels": [1],
                            "channels": {"lstm_1": [3, 17, 30]}, "words": {"0": "[pad]", "1": "[UNK]", "5": "good",
                                                                             "2": "the"}},
            "class_names": ["neg", "pos"]}
    arrays = {"input": np.array([[5, 2, 1, 0, 0]]), "lstm_1": np.arange(15, dtype=np.float32).reshape(1, 5, 3)}
    maps = data.activation_maps(info, arrays, trial=0)
    assert maps.token_labels(0) == ["good", "the", "[UNK]", "[pad]", "[pad]"] and maps.labels == ["pos"]
    fig = plots.activations(maps)
    trace = fig.data[0]
    assert np.asarray(trace.z).shape == (3, 3)  # units x tokens, padding left out
    assert [row[0][0] for row in trace.customdata] == [3, 17, 30]  # the layer's unit numbers, not rows 0..2
    assert [cell[1] for cell in trace.customdata[0]] == ["good", "the", "[UNK]"]
    assert list(fig.layout.xaxis.ticktext) == ["good", "the", "[UNK]"] and "customdata[0]" in trace.hovertemplate

    old = {**info, "activations": {k: v for k, v in info["activations"].items() if k != "words"}}
    assert data.activation_maps(old, arrays, trial=0).token_labels(0) == ["5", "2", "1", "[pad]", "[pad]"]


def test_text_activation_rows_keep_their_own_words_apart_and_cap_long_texts():
    words = {str(i): f"word{i}" for i in range(2, 100)}
    info = {"activations": {"kind": "text", "layers": ["lstm_1"], "samples": [0, 7], "labels": [0, 1],
                            "channels": {"lstm_1": [0, 1]}, "words": words}, "class_names": ["ham", "spam"]}
    inputs = np.zeros((2, 90), int)
    inputs[0, :5] = [2, 3, 4, 5, 6]
    inputs[1, :90] = np.arange(2, 92)
    arrays = {"input": inputs, "lstm_1": np.ones((2, 90, 2), np.float32)}
    fig = plots.activations(data.activation_maps(info, arrays, trial=0))
    assert [a.text for a in fig.layout.annotations] == ["sample 0<br>class ham", "sample 7<br>class spam"]
    assert [a.hovertext for a in fig.layout.annotations] == ["sample 0 (class ham)", "sample 7 (class spam)"]
    assert list(fig.layout.xaxis.ticktext) == ["word2", "word3", "word4", "word5", "word6"]
    long = list(fig.layout.xaxis2.ticktext)
    assert long[0] == "word2" and len(long) <= plots.MAX_TOKEN_LABELS  # every k-th word; all are in the hover
    assert [c[1] for c in fig.data[1].customdata[0]] == [f"word{i}" for i in range(2, 92)]
    plot_px = fig.layout.height - 180  # plotly's default top and bottom margins
    gap_px = (fig.layout.yaxis.domain[0] - fig.layout.yaxis2.domain[1]) * plot_px
    assert gap_px >= 90  # room under row 1 for its tilted words, above row 2's heatmap


def _exp_with_trials(tmp_path, name="why"):
    """An Experiment (never run) whose study holds hand-made trials in each state, and their
    numbers by role (the study may already hold the enqueued default configuration)."""
    import optuna

    from hpo_nb import Experiment
    from hpo_nb.records import STATE_ATTR

    exp = Experiment("digits", n_trials=1, max_epochs=1, runs_dir=tmp_path, progress="none", name=name)
    dist = {"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8], "val_accuracy": [0.4, 0.75]}
    C, P, F = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL
    made = {
        "off": (C, {STATE_ATTR: "complete", "diagnostics": {}, "history": history, "epochs_run": 2}, 0.7),
        "old": (C, {STATE_ATTR: "complete", "history": history, "epochs_run": 2}, 0.6),  # before diagnostics
        "pruned": (P, {STATE_ATTR: "pruned", "diagnostics": {}, "epochs_run": 0}, None),
        "failed": (F, {STATE_ATTR: "failed", "diagnostics": {}, "error": "ValueError: bad input"}, None),
        "has": (C, {STATE_ATTR: "complete", "diagnostics": summary(), "epochs_run": 1,
                    "history": {"loss": [0.9], "val_loss": [0.8], "accuracy": [0.6], "val_accuracy": [0.7]}}, 0.7),
        "running": (optuna.trial.TrialState.RUNNING, {}, None),
    }
    numbers = {}
    for role, (state, attrs, value) in made.items():
        exp.study.add_trial(optuna.trial.create_trial(
            state=state, value=value, params={"learning_rate": 1e-3}, distributions=dist, user_attrs=attrs))
        numbers[role] = exp.study.trials[-1].number
    return exp, numbers


def test_a_trial_without_diagnostics_says_why(tmp_path):
    exp, n = _exp_with_trials(tmp_path)
    expected = {n["off"]: "ran with diagnostics=False", n["old"]: "from before per-trial diagnostics",
                n["pruned"]: "pruned before it trained",
                n["failed"]: "failed before its diagnostics were measured (ValueError: bad input)",
                n["running"]: "is still running"}
    for method in ("plot_gradient_flow", "plot_weights", "plot_confusion_matrix", "plot_activations"):
        for number, why in expected.items():
            with pytest.raises(ConfigError, match=why.replace("(", r"\(").replace(")", r"\)")):
                getattr(exp, method)(number)
    with pytest.raises(ConfigError, match="Experiment\\(..., diagnostics=True\\)"):
        exp.plot_weights(n["off"])
    assert isinstance(exp.plot_gradient_flow(n["has"]), go.Figure)


def test_trial_numbers_take_digit_strings_refuse_bools_and_none_names_what_became_of_the_trials(tmp_path):
    import optuna

    exp, n = _exp_with_trials(tmp_path)
    assert f"trial {n['has']} gradient flow" in exp.plot_gradient_flow(str(n["has"])).layout.title.text
    for bad in (True, False, 1.5, "one", [1]):
        with pytest.raises(ConfigError, match="trial must be an int"):
            exp.plot_gradient_flow(bad)
    with pytest.raises(ConfigError, match="trial must be an int"):
        exp.plot_confusion_matrix("0x")
    from hpo_nb import Experiment
    from hpo_nb.records import STATE_ATTR

    none = Experiment("digits", n_trials=1, max_epochs=1, runs_dir=tmp_path, progress="none", name="nonecomplete")
    dist = {"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    for state, label in ((optuna.trial.TrialState.PRUNED, "pruned"), (optuna.trial.TrialState.PRUNED, "stopped"),
                         (optuna.trial.TrialState.PRUNED, "pruned")):
        none.study.add_trial(optuna.trial.create_trial(state=state, params={"learning_rate": 1e-3},
                                                       distributions=dist, user_attrs={STATE_ATTR: label}))
    for method in ("plot_gradient_flow", "plot_learning_curves"):
        with pytest.raises(ConfigError) as err:
            getattr(none, method)()
        assert "run() the experiment first" not in str(err.value)
        assert f"none of the study's {len(none.study.trials)} trials completed" in str(err.value)
        assert "2 pruned" in str(err.value) and "1 stopped" in str(err.value)


def test_the_panel_shows_why_as_a_message_not_a_traceback(tmp_path):
    from hpo_nb.views.diagnostics import DiagnosticsPanel

    exp, n = _exp_with_trials(tmp_path, "why-panel")
    panel = DiagnosticsPanel(exp, background=False, opened=True)
    for role, why in (("off", "diagnostics=False"), ("old", "from before per-trial diagnostics"),
                      ("failed", "failed before")):
        panel.show(n[role], force=True)
        for view in ("Gradient flow", "Weights", "Confusion matrix", "Activations"):
            panel.view.value = view
            out = panel.output.outputs[0]["data"]
            assert "hpo-diag-message" in out["text/html"] and why in out["text/plain"], (role, view, out)
            assert "Traceback" not in out["text/plain"] and "could not be drawn" not in out["text/plain"]


def test_learning_curves_follow_the_asked_order_and_name_the_trials_left_out(tmp_path):
    exp, n = _exp_with_trials(tmp_path, "curves")
    fig = exp.plot_learning_curves([n["has"], n["failed"], n["off"], n["running"], n["has"]])
    legend = [t.name for t in fig.data if t.showlegend]
    assert legend == [f"trial {n['has']} · train", f"trial {n['has']} · validation",
                      f"trial {n['off']} · train", f"trial {n['off']} · validation"]
    title = fig.layout.title.text
    assert f"(trials {n['has']}, {n['off']})" in title and "left out" in title
    assert f"trial {n['failed']} (failed: ValueError: bad input)" in title and f"trial {n['running']} (running)" in title
    with pytest.raises(ConfigError, match=f"no learning curves to draw: trial {n['failed']} \\(failed"):
        exp.plot_learning_curves([n["failed"], n["pruned"]])
    assert "left out" not in exp.plot_learning_curves([n["off"]]).layout.title.text


def test_a_bad_artifact_store_is_refused_before_training(tmp_path):
    from hpo_nb import Experiment

    for bad in (3, object(), " "):
        with pytest.raises(ConfigError, match="artifact_store must be"):
            Experiment("digits", runs_dir=tmp_path, progress="none", name="bad-store", artifact_store=bad)


@pytest.mark.filterwarnings("ignore:hpo-nb. the validation split has only")
def test_an_older_text_record_gets_its_words_from_the_experiments_vocabulary(tmp_path):
    import optuna

    from hpo_nb import Experiment, datasets
    from hpo_nb.records import STATE_ATTR

    texts = [("good fun film" if i % 2 else "bad dull film") + " the end" for i in range(60)]
    ds = datasets.from_arrays(np.array(texts, dtype=object), [i % 2 for i in range(60)], modality="text",
                              name="old-text", max_tokens=30, sequence_length=6)
    exp = Experiment(ds, n_trials=1, max_epochs=1, runs_dir=tmp_path, progress="none", name="old-text")
    vocabulary = ds.vocabulary(exp.validation_fraction, exp.seed, exp.sample_fraction, exp.test_fraction)
    tokens = np.array([[vocabulary.index("good"), vocabulary.index("film"), 1, 0, 0, 0]])
    diag = {"version": 1, "layers": ["lstm_1"], "class_names": ["0", "1"],
            "activations": {"kind": "text", "layers": ["lstm_1"], "samples": [0], "labels": [1],
                            "channels": {"lstm_1": [0, 1]}},  # no "words": recorded before they were kept
            record.INLINE_KEY: {record.ACTIVATIONS: record.encode_arrays(
                {"input": tokens, "lstm_1": np.ones((1, 6, 2), np.float16)})}}
    exp.study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.COMPLETE, value=0.5, params={}, distributions={},
        user_attrs={STATE_ATTR: "complete", "diagnostics": diag, "epochs_run": 1}))
    fig = exp.plot_activations(exp.study.trials[-1].number)
    assert list(fig.layout.xaxis.ticktext) == ["good", "film", "[UNK]"]


def test_the_cli_passes_the_artifact_store_and_refuses_an_unusable_one(tmp_path, capsys):
    from hpo_nb import cli

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert cli.main(["run", "--artifact-store", str(blocked / "sub"), "--trials", "1", "--runs-dir",
                     str(tmp_path / "runs"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"artifact_store folder {blocked / 'sub'} cannot be used" in err
