"""Snapshot in, displayed strings and numbers out: the dashboard's view model, without widgets."""

import html
import re

from hpo_nb.progress import EpochEnded, EpochProgress, Notice, ProgressHub, TrialFinished, TrialStarted
from hpo_nb.views import dashboard_html as H, viewmodel as vm

ARCH = {"total_params": 13_700, "layers": [
    {"name": "conv_0", "type": "Conv2D", "output_shape": [None, 8, 8, 16], "params": 160, "activation": "relu"},
    {"name": "output", "type": "Dense", "output_shape": [None, 10], "params": 650, "activation": "softmax"}],
    "summary": {"conv_layers": 1, "filters": [16], "dense_layers": 1, "dense_units": [64],
                "activations": ["relu"]}}
HEALTH = {"gradient_health": 1.0, "dead_units": 0.125, "saturated_units": 0.0, "overfitting_gap": 0.05,
          "loss_stability": 0.9, "health_score": 0.87}


def search_snapshot(mode: str = "health"):
    """A real hub after: trial 0 complete, 1 pruned, 2 failed, 3 complete (best), 4 and 5 running."""
    hub = ProgressHub(total_trials=8, mode=mode, concurrency=2)
    results = [(0, "complete", 0.90, 0.85), (1, "pruned", 0.5, None), (2, "failed", None, None),
               (3, "complete", 0.95, 0.91)]
    for n, state, acc, score in results:
        hub.publish(TrialStarted(n, 10, {"learning_rate": 0.0031, "batch_size": 64}))
        hub.publish(TrialFinished(n, state, accuracy=acc, score=score, duration_s=10.0 + n,
                                  params={"learning_rate": 0.0031, "batch_size": 64, "batch_norm": True},
                                  health=HEALTH if state == "complete" else {},
                                  architecture=ARCH if state == "complete" else {},
                                  error="ValueError: boom" if state == "failed" else None))
    hub.publish(TrialStarted(4, 10))
    hub.publish(EpochEnded(4, 3, 10, {"loss": 0.4, "accuracy": 0.8, "val_accuracy": 0.75}))
    hub.publish(EpochProgress(4, 4, 10, 74, 100, loss=0.35, accuracy=0.82))
    hub.publish(TrialStarted(5, 10))
    hub.publish(Notice("RunPod unreachable: running locally"))
    return hub.snapshot()


def test_running_rows_label_and_bar_say_the_same_share_and_name_the_build_phase():
    snap = search_snapshot()
    rows, more = vm.running_rows(snap, slots=2)
    assert rows[0][0] == "Trial 4 · epoch 4/10 · 37 %"  # the bar's share of the whole trial, not of the epoch
    assert rows[0][1] == "loss 0.350 · acc 0.820 · val_acc 0.750"
    assert abs(rows[0][2] - 0.374) < 1e-9  # 3 epochs done + 74 % of the 4th, of 10
    assert rows[1][0] == "Trial 5 · building and compiling the model" and rows[1][2] == 0.0
    assert more == ""
    rows, more = vm.running_rows(snap, slots=1)
    assert len(rows) == 1 and more == "+1 more running"


def test_overall_counts_tiles_and_score_label_follow_the_mode():
    snap = search_snapshot("health")
    assert vm.overall_fraction(snap) == 4 / 8  # complete + pruned + failed count; running do not
    label = vm.overall_label(snap)
    assert label.startswith("4/8 trials (2 running, 2 complete, 1 pruned, 1 failed)")
    assert "ETA" in label
    tiles = vm.tiles(snap)
    assert [(t.label, t.value) for t in tiles] == [
        ("Trials done", "4/8"), ("Best accuracy", "95.00 %"), ("Best score (accuracy + health)", "0.9100"),
        ("Mean duration per trial", "11s")]
    assert tiles[1].note == "trial 3"
    assert "Best score (accuracy)" in [t.label for t in vm.tiles(search_snapshot("simple"))]


def test_overall_label_adds_up_what_runpod_trials_cost_and_says_nothing_for_local_runs():
    assert "RunPod" not in vm.overall_label(search_snapshot())
    hub = ProgressHub(total_trials=3)
    for n, cost in ((0, 0.0131), (1, 0.0002)):
        hub.publish(TrialStarted(n, 2))
        hub.publish(TrialFinished(n, "complete", accuracy=0.9, score=0.9, duration_s=30.0,
                                  extra={"executor": "runpod", "cost_usd": cost, "worker": "w1"}))
    hub.publish(TrialStarted(2, 2))
    hub.publish(TrialFinished(2, "complete", accuracy=0.8, score=0.8, duration_s=20.0,
                              extra={"executor": "local", "fallback": "RunPod unreachable"}))
    assert " · RunPod $0.0133" in vm.overall_label(hub.snapshot())
    assert vm.fmt_usd(12.4) == "$12.40"


def test_gallery_sorts_by_score_with_missing_values_last_and_by_other_keys():
    snap = search_snapshot()
    assert [r["Trial"] for r in vm.gallery_rows(snap, "score")] == ["3", "0", "1", "2"]
    assert [r["Trial"] for r in vm.gallery_rows(snap, "accuracy")] == ["3", "0", "1", "2"]
    assert [r["Trial"] for r in vm.gallery_rows(snap, "trial #")] == ["0", "1", "2", "3"]
    assert [r["Trial"] for r in vm.gallery_rows(snap, "trial #", descending=True)] == ["3", "2", "1", "0"]
    assert [r["Trial"] for r in vm.gallery_rows(snap, "duration")] == ["0", "1", "2", "3"]
    best = vm.gallery_rows(snap, params=["learning_rate", "batch_norm"])[0]
    assert best == {
        "Trial": "3", "State": "complete", "learning_rate": "3.1e-03", "batch_norm": "yes",
        "Accuracy": "95.00 %", "Score": "0.9100", "Health": "0.87",
        "Duration": "13s", "Architecture": "1 conv (16) · 1 dense (64) · relu · 13.7k params",
    }
    failed = vm.gallery_rows(snap, "trial #")[2]
    assert failed["State"] == "failed" and failed["Architecture"] == "ValueError: boom"


def _varied_snapshot():
    """Three trials that differ in learning_rate and optimizer: 0 and 1 complete, 2 stopped with the
    highest (partial) score."""
    hub = ProgressHub(total_trials=6, concurrency=2)
    for n, state, lr, opt, acc in ((0, "complete", 0.01, "adam", 0.90), (1, "complete", 0.001, "sgd", 0.80),
                                   (2, "stopped", 0.1, "adam", 0.99)):
        hub.publish(TrialStarted(n, 3))
        hub.publish(TrialFinished(n, state, accuracy=acc, score=acc, duration_s=5.0 + n,
                                  params={"learning_rate": lr, "optimizer": opt, "kernel_size": 3}))
    hub.set_stopping()
    hub.close()
    return hub.snapshot()


def test_gallery_has_one_sortable_column_per_searched_parameter():
    snap = _varied_snapshot()
    assert vm.gallery_params(snap) == ["learning_rate", "optimizer"]  # kernel_size never varied
    assert vm.gallery_params(snap, ["optimizer"]) == ["optimizer"]
    assert vm.sort_options(["learning_rate", "optimizer"])[-2:] == ["learning_rate", "optimizer"]
    assert [r["Trial"] for r in vm.gallery_rows(snap, "learning_rate")] == ["1", "0", "2"]  # low first
    assert [r["Trial"] for r in vm.gallery_rows(snap, "learning_rate", descending=True)] == ["2", "0", "1"]
    assert [r["Trial"] for r in vm.gallery_rows(snap, "optimizer")] == ["0", "2", "1"]
    table = H.gallery_html(vm.gallery_rows(snap, "learning_rate"), vm.gallery_columns(["learning_rate", "optimizer"]),
                           vm.sort_column("learning_rate"), descending=False)
    assert "learning_rate ▲</th>" in table and "<th" in table and table.count("<th") == 10


def test_stopped_trials_are_counted_apart_and_never_outrank_complete_ones():
    snap = _varied_snapshot()
    assert [r["Trial"] for r in vm.gallery_rows(snap, "score")] == ["0", "1", "2"]  # 2 scored highest, partly
    assert snap.best_trial.trial == 0 and vm.best_of(snap) == (snap.finished[0], False)
    label = vm.overall_label(snap)
    assert label.startswith("2/6 trials (0 running, 2 complete, 0 pruned, 0 failed; 1 stopped, not counted)")
    assert label.endswith(" · stopped")
    done = vm.tiles(snap)[0]
    assert (done.label, done.value, done.note) == ("Trials done", "2/6", "+1 stopped, not counted")
    # Only when nothing completed does a stopped trial stand in for the best, said so.
    hub = ProgressHub(total_trials=4)
    hub.publish(TrialStarted(0, 3))
    hub.publish(TrialFinished(0, "stopped", accuracy=0.7, score=0.7, duration_s=2.0))
    hub.set_stopping()
    hub.close()
    tiles = vm.tiles(hub.snapshot())
    assert tiles[1].value == "70.00 %" and tiles[1].note == "trial 0 (stopped, partly trained)"
    assert tiles[2].value == "–" and tiles[2].note == "no complete trial yet"


def test_gallery_and_details_html_are_escaped_and_complete():
    snap = search_snapshot()
    table = H.gallery_html(vm.gallery_rows(snap))
    assert table.count('class="hpo-row"') == 4
    assert "No finished trials yet" in H.gallery_html([])
    best = snap.best_trial
    details = H.details_html(best)
    for text in ("Trial 3", "95.00 %", "0.9100", "learning_rate", "3.1e-03", "dead_units", "conv_0",
                 "Conv2D", "?×8×8×16", "softmax"):
        assert text in details, text
    assert H.details_title(best) == "Details · trial 3 · complete · accuracy 95.00 % · score 0.9100"
    evil = TrialFinished(9, "failed", error="<script>alert(1)</script>")
    hub = ProgressHub(1)
    hub.publish(evil)
    out = H.details_html(hub.snapshot().finished[0])
    assert "<script>" not in out and html.escape("<script>") in out


def test_html_takes_its_colours_from_the_jupyterlab_theme():
    snap = _varied_snapshot()
    pieces = [H.summary_html(snap, "x"), H.details_html(snap.finished[2]), H.notices_html(["n"]),
              H.test_html("t")] + [H.tile_html(t) for t in vm.tiles(snap)]
    for piece in pieces:
        assert "var(--jp-" in piece
        fixed = re.findall(r"#[0-9a-fA-F]{3,6}\b", re.sub(r"var\(--jp-[^)]*\)", "", piece))
        assert not fixed, (fixed, piece)  # hard-coded colours vanish in a dark theme


def test_stop_button_and_state_badge():
    snap = search_snapshot()
    assert vm.stop_button(snap) == ("Stop search", False, True)
    assert vm.state_chip(snap) == ("running", "running")
    hub = ProgressHub(2)
    hub.set_stopping()
    assert vm.stop_button(hub.snapshot()) == ("Stopping…", True, True)
    hub.close()
    assert vm.stop_button(hub.snapshot())[1:] == (True, False)  # hidden once nothing runs
    assert vm.state_chip(hub.snapshot()) == ("stopped", "stopped")
    fresh = ProgressHub(3)  # an experiment's hub before start(): nothing stored yet
    fresh.close()
    assert vm.search_state(fresh.snapshot()) == "not started" and vm.stop_button(fresh.snapshot())[2] is False
    assert "ETA" not in vm.overall_label(fresh.snapshot())
    done = ProgressHub(1)
    done.publish(TrialStarted(0, 1))
    done.publish(TrialFinished(0, "complete", accuracy=0.9, score=0.9))
    done.close()
    assert vm.state_chip(done.snapshot()) == ("finished", "finished")
    assert vm.overall_label(done.snapshot()).endswith(" · done")


def test_eta_from_the_first_epoch_before_any_trial_finished():
    hub = ProgressHub(total_trials=4, concurrency=1)
    hub.publish(TrialStarted(0, 4, time=1000.0))
    hub.publish(EpochProgress(0, 1, 4, 1, 10))
    assert hub.snapshot().eta_s is None  # building and first batches: no honest estimate yet
    hub.publish(EpochEnded(0, 1, 4, {"loss": 1.0}))
    snap = hub.snapshot()
    trial = snap.running[0]
    expected = trial.projected_duration_s(snap.now)
    assert expected is not None and expected > 0
    assert abs(snap.eta_s - (3 * expected + expected - (snap.now - 1000.0))) < 1e-6
    assert "ETA –" not in vm.overall_label(snap)


def test_static_summary_shows_the_final_result_and_notices():
    snap = search_snapshot()
    text = vm.summary_text(snap, "digits-health")
    lines = text.splitlines()
    assert lines[0] == "hpo-nb · digits-health"
    assert lines[1] == vm.overall_label(snap)
    assert "! RunPod unreachable: running locally" in lines
    assert any(line.startswith("Trial 3 complete · acc 95.00 %") for line in lines)
    page = H.summary_html(snap, "digits-health")
    assert "RunPod unreachable" in page and "width:50%" in page and page.count('class="hpo-row"') == 4


def test_fmt_value_is_short():
    assert [vm.fmt_value(v) for v in (0.0031, 0.25, 0.0, 64, True, "adam")] == \
        ["3.1e-03", "0.25", "0", "64", "yes", "adam"]
