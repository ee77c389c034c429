"""The no-code app without a browser: form -> Experiment arguments, the result pieces (health
table, download link, plotly output), and one real tiny search driven through the app object."""

from __future__ import annotations

import base64
import io
import json
import re
import time
import zipfile
from pathlib import Path

import pytest

import hpo_nb
from hpo_nb.records import TrialResult
from hpo_nb import nocode as appmod

FORM = {"dataset": "digits", "mode": "accuracy + health", "n_trials": 3, "max_epochs": 2, "concurrency": 1,
        "space": "quick", "executor": "local", "endpoint_id": "", "api_key": "", "base_url": ""}


def test_quick_form_gives_a_small_search_and_keeps_user_overrides():
    kwargs = appmod.experiment_kwargs(FORM, {"runs_dir": "/tmp/x", "search_space": {"filters": 32}})
    assert kwargs["mode"] == "health" and kwargs["n_trials"] == 3 and kwargs["executor"] == "local"
    assert kwargs["sample_fraction"] == appmod.QUICK_SAMPLE_FRACTION
    assert kwargs["search_space"]["conv_blocks"] == [1, 2]
    assert kwargs["search_space"]["filters"] == 32  # the caller's override wins over the quick preset
    assert kwargs["runs_dir"] == "/tmp/x"
    assert re.fullmatch(r"app-digits-health-\d{8}-\d{6}", kwargs["name"])


def test_full_form_leaves_the_default_space_and_text_data_gets_the_lstm_preset():
    full = appmod.experiment_kwargs({**FORM, "space": "full", "mode": "accuracy"})
    assert "search_space" not in full and "sample_fraction" not in full and full["mode"] == "simple"
    text = appmod.experiment_kwargs({**FORM, "dataset": "imdb"})
    assert text["search_space"]["lstm_layers"] == 1


def test_runpod_fields_go_into_the_runpod_options_only_when_filled():
    kwargs = appmod.experiment_kwargs({**FORM, "executor": "runpod", "endpoint_id": " ep1 ", "api_key": "k",
                                       "base_url": ""}, {"runpod": {"budget_usd": 2.0}})
    assert kwargs["runpod"] == {"budget_usd": 2.0, "endpoint_id": "ep1", "api_key": "k"}
    with pytest.raises(hpo_nb.ConfigError, match="executor"):
        appmod.experiment_kwargs({**FORM, "executor": "cloud"})


def test_dataset_options_name_every_registered_dataset_and_flag_downloads():
    options = dict((value, label) for label, value in appmod.dataset_options())
    assert set(options) == set(hpo_nb.datasets.names())
    assert "downloads" not in options["digits"] and "downloads" in options["mnist"]


def test_health_table_shows_every_metric_with_its_meaning():
    result = TrialResult(number=4, state="complete", params={"filters": 8, "learning_rate": 0.00312},
                         accuracy=0.91, score=0.88,
                         health={"gradient_health": 1.0, "dead_units": 0.7, "saturated_units": 0.0,
                                 "overfitting_gap": 0.02, "loss_stability": 0.9, "health_score": 0.8})
    page = appmod.health_html(result)
    for metric in ("gradient health", "dead units", "saturated units", "overfitting gap", "loss stability",
                   "health score"):
        assert metric in page
    assert "Best trial 4" in page and "0.9100" in page and "learning_rate=0.00312" in page
    assert "#c62828" in page  # most units dead: shown as bad
    assert "no health metrics" in appmod.health_html(TrialResult(1, "complete", {}, 0.5, 0.5))


def test_download_link_carries_the_file_and_missing_files_say_so(tmp_path: Path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"PK\x03\x04 not really a model")
    page = appmod.download_html(model, "best.keras")
    payload = re.search(r"base64,([A-Za-z0-9+/=]+)'", page).group(1)
    assert base64.b64decode(payload) == model.read_bytes()
    assert "download='best.keras'" in page
    assert "saved no model" in appmod.download_html(None, "x.keras")
    assert "saved no model" in appmod.download_html(tmp_path / "gone.keras", "x.keras")


def test_plotly_output_is_a_json_display_bundle():
    import plotly.graph_objects as go

    out = appmod.plotly_output(go.Figure(go.Bar(x=["a"], y=[1])))
    spec = out["data"]["application/vnd.plotly.v1+json"]
    assert spec["data"][0]["type"] == "bar"
    json.dumps(out)  # what the Output widget sends to the page


def test_a_config_error_is_shown_in_the_page_and_nothing_starts(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    monkeypatch.delenv("RUNPOD_ENDPOINT_ID", raising=False)
    ui = hpo_nb.app(runs_dir=tmp_path / "runs", executor="runpod")
    ui.start()
    assert "Cannot start" in ui.status.value and "endpoint id" in ui.status.value
    assert ui.exp is None and not ui.start_button.disabled and ui.runpod_box.layout.display == "flex"


def test_status_says_how_the_search_ended_and_names_stopped_trials_apart():
    done = appmod.status_html("s", ["complete", "pruned", "complete"], 3, 2, 0.91234, stopped=False)
    assert "hpo-app-done" in done and "Done: <b>s</b>, 3 of 3 trials done (2 complete); best is trial 2" in done
    stopped = appmod.status_html("s", ["complete", "stopped", "complete", "stopped"], 6, 0, 0.8, stopped=True)
    assert "hpo-app-stopped" in stopped and "hpo-app-done" not in stopped
    assert "Stopped: <b>s</b>, 2 of 6 trials done (2 complete; 2 stopped, partly trained and not counted)" in stopped
    assert "best complete trial is 0" in stopped


@pytest.mark.slow
def test_start_runs_a_search_and_shows_the_results(tmp_path: Path):
    ui = hpo_nb.app(runs_dir=tmp_path / "runs", n_trials=2, max_epochs=1, mode="simple",
                    search_space={"conv_blocks": 1, "filters": 8, "dense_layers": 0})
    ui.start()
    assert ui.stop_button.disabled is False and ui.dashboard_box.children == (ui.dashboard.root,)
    deadline = time.monotonic() + 240
    while "hpo-app-done" not in ui.status.value and "without a complete" not in ui.status.value:
        assert time.monotonic() < deadline, ui.status.value
        time.sleep(0.2)
    assert "2 of 2 trials done (2 complete)" in ui.status.value, ui.status.value
    assert ui.stop_button.disabled and not ui.start_button.disabled
    heading, arch, _, importance, explorer, _, diagnostics, download = ui.results_box.children
    assert "hpo-app-explorer" in explorer._dom_classes
    best = ui.exp.best.number  # the diagnostics panel shows the best trial's gradient flow, from storage
    assert ui.diagnostics.root is diagnostics and ui.diagnostics.trial.value == best
    deadline = time.monotonic() + 60  # drawn on the panel's own thread
    while not any("application/vnd.plotly.v1+json" in o["data"] for o in ui.diagnostics.output.outputs):
        assert time.monotonic() < deadline, ui.diagnostics.output.outputs
        time.sleep(0.1)
    assert type(arch.children[0]).__name__ == "Architecture3D"
    assert "Best trial" in arch.children[1].value
    assert "application/vnd.plotly.v1+json" in importance.outputs[0]["data"]
    payload = re.search(r"base64,([A-Za-z0-9+/=]+)'", download.value).group(1)
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(payload))) as keras_file:
        assert "config.json" in keras_file.namelist()  # a real .keras archive


def test_the_form_takes_a_mode_by_name_or_label_and_refuses_others_before_any_widget():
    assert hpo_nb.app(mode="simple").mode.value == "accuracy"
    assert hpo_nb.app(mode="accuracy + health").mode.value == "accuracy + health"
    with pytest.raises(hpo_nb.ConfigError, match="'simple' or 'health', not 'fast'"):
        hpo_nb.app(mode="fast")
