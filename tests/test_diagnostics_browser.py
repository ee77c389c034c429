"""The dashboard's diagnostics panel as a user sees it (real JupyterLab, Debian chromium): the
live gradient flow of a trial still training, picked while ``exp.run()`` blocks the kernel, then
each view of a finished trial picked in the dashboard."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.lab_support import chromium, lab, open_notebook, run_all, write_notebook  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELL = """
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
from hpo_nb import Experiment
exp = Experiment(dataset="digits", n_trials=2, max_epochs=16, name="diagpanel", pruning=False, save_models=False,
                 search_space={"conv_blocks": 2, "filters": 8, "dense_layers": 0, "batch_size": 8})
exp.run();
"""

PANEL = ".hpo-diagnostics"
PICK_TRAINING = """s => {
    const o = [...s.options].find(o => o.text.includes('training'));
    if (!o) return;
    s.value = o.value; s.dispatchEvent(new Event('change', {bubbles: true}));
}"""


def panel_title(page) -> str:
    return page.evaluate(f"() => document.querySelector('{PANEL} .js-plotly-plot .gtitle')?.textContent || ''")


def test_the_details_panel_shows_live_gradient_flow_then_every_view_of_a_picked_trial(lab, chromium, tmp_path: Path):
    nb = write_notebook(tmp_path / "diag.ipynb", [CELL, "print('searched', len(exp.results))"])
    with open_notebook(lab, chromium, nb, viewport=(1400, 2400)) as session:
        page = session.page
        run_all(page)
        page.wait_for_selector(PANEL, timeout=120_000)
        trial_select = page.locator(f"{PANEL} .hpo-diag-trial select")
        # While a trial trains (exp.run() blocks the kernel), pick it: its gradient flow draws live.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if "is training" in page.locator(f"{PANEL} .hpo-diag-output").inner_text() or "live" in panel_title(page):
                break
            trial_select.evaluate(PICK_TRAINING)  # one step in the page: options change as trials end
            page.wait_for_timeout(200)
        # Each ended epoch redraws the figure; polled on every animation frame to catch one.
        page.wait_for_function(
            """sel => (document.querySelector(sel + ' .js-plotly-plot .gtitle')?.textContent || '')
                       .includes('gradient flow, live')""", arg=PANEL, polling="raf", timeout=120_000)
        page.wait_for_selector(".jp-OutputArea-output:has-text('searched 2')", timeout=240_000)

        # A finished trial picked in the dashboard: the panel follows and draws each view from storage.
        picker = page.locator(".hpo-picker select")
        options = [o for o in picker.locator("option").all_inner_texts() if o.startswith("Trial")]
        picker.select_option(label=options[-1])
        number = options[-1].split()[1].strip("\xa0 ·")
        expected = {"Gradient flow": "gradient flow", "Learning curves": "learning curves",
                    "Confusion matrix": "confusion matrix", "Weights": "weights and biases",
                    "Activations": "activations"}
        for button, words in expected.items():
            page.locator(f"{PANEL} .hpo-diag-view button", has_text=button).click()
            page.wait_for_function(
                """([sel, words, n]) => { const t = document.querySelector(sel + ' .js-plotly-plot .gtitle');
                     return t && t.textContent.includes(words) && t.textContent.includes('trial ' + n); }""",
                arg=[PANEL, words, number], timeout=60_000)
        assert page.locator(f"{PANEL} .js-plotly-plot .slider-group").count() == 0  # activations: no slider
        page.locator(f"{PANEL} .hpo-diag-view button", has_text="Weights").click()
        page.wait_for_selector(f"{PANEL} .js-plotly-plot .slider-group", timeout=60_000)  # the epoch slider
        page.locator(PANEL).screenshot(path=str(tmp_path / "diagnostics-panel.png"))
        assert not session.widget_errors()
