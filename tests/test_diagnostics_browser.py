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
# The panel as shown: the display is refreshed when the cell ends, leaving an older, hidden copy.
SHOWN = PANEL + ":visible"
TITLE = """sel => { const shown = [...document.querySelectorAll(sel)].filter(e => e.offsetParent !== null);
    const t = shown.length ? shown[shown.length - 1].querySelector('.js-plotly-plot .gtitle') : null;
    return t ? t.textContent : ''; }"""
PICK_TRAINING = """s => {
    const o = [...s.options].find(o => o.text.includes('training'));
    if (!o) return;
    s.value = o.value; s.dispatchEvent(new Event('change', {bubbles: true}));
}"""


def wait_title(page, words: str, number: str) -> None:
    page.wait_for_function(
        f"([sel, words, n]) => {{ const t = ({TITLE})(sel); return t.includes(words) && t.includes('trial ' + n); }}",
        arg=[PANEL, words, number], timeout=60_000)


def panel_title(page) -> str:
    return page.evaluate(TITLE, PANEL)


def test_the_details_panel_shows_live_gradient_flow_then_every_view_of_a_picked_trial(lab, chromium, tmp_path: Path):
    nb = write_notebook(tmp_path / "diag.ipynb", [CELL, "print('searched', len(exp.results))"])
    with open_notebook(lab, chromium, nb, viewport=(1400, 2400)) as session:
        page = session.page
        run_all(page)
        page.wait_for_selector(PANEL, state="attached", timeout=120_000)
        trial_select = page.locator(f"{SHOWN} .hpo-diag-trial select")
        # The panel sits in the dashboard's (collapsed) details section: open it, as a user would.
        page.locator(".hpo-details-section .lm-AccordionPanel-title, .hpo-details-section .jupyter-widget-Collapse-header, "
                     ".hpo-details-section .lm-Collapse-header, .hpo-details-section .p-Collapse-header").first.click()
        page.locator(".hpo-diagnostics-section .lm-AccordionPanel-title, "
                     ".hpo-diagnostics-section .jupyter-widget-Collapse-header").first.click()  # and the panel's
        page.wait_for_selector(SHOWN, timeout=30_000)
        # While a trial trains (exp.run() blocks the kernel), pick it: its gradient flow draws live.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if "is training" in page.locator(f"{SHOWN} .hpo-diag-output").inner_text() or "live" in panel_title(page):
                break
            trial_select.evaluate(PICK_TRAINING)  # one step in the page: options change as trials end
            page.wait_for_timeout(200)
        # Each ended epoch redraws the figure; polled on every animation frame to catch one.
        page.wait_for_function(f"sel => ({TITLE})(sel).includes('gradient flow, live')", arg=PANEL, polling="raf",
                               timeout=120_000)
        page.wait_for_selector(".jp-OutputArea-output:has-text('searched 2')", timeout=240_000)

        # A finished trial picked in the dashboard: the panel follows and draws each view from storage.
        picker = page.locator(".hpo-picker select")
        options = [o for o in picker.locator("option").all_inner_texts() if o.startswith("Trial")]
        picker.select_option(label=options[0])  # two picks: the last is a change whatever was shown
        page.wait_for_timeout(1000)
        picker.select_option(label=options[-1])
        number = options[-1].split()[1].strip("\xa0 ·")
        # Each click changes the view (a figure JupyterLab's Plotly renderer parked as a picture while
        # the display refreshed comes back interactive once redrawn).
        page.locator(SHOWN).scroll_into_view_if_needed()
        expected = {"Learning curves": "learning curves", "Confusion matrix": "confusion matrix",
                    "Weights": "weights and biases", "Gradient flow": "gradient flow",
                    "Activations": "activations"}
        for button, words in expected.items():
            page.locator(f"{SHOWN} .hpo-diag-view button", has_text=button).click()
            seen = lambda: (button, number, panel_title(page), trial_select.evaluate(  # noqa: E731
                "s => s.selectedIndex >= 0 ? s.options[s.selectedIndex].text : ''"),
                page.locator(f"{SHOWN} .hpo-diag-output").inner_text()[:200])
            try:
                wait_title(page, words, number)
            except Exception as exc:
                dom = page.evaluate("""sel => [...document.querySelectorAll(sel)].map(e => [e.offsetParent !== null,
                    e.querySelectorAll('.js-plotly-plot').length, e.querySelectorAll('.gtitle').length,
                    e.innerText.slice(0, 80), e.querySelector('.hpo-diag-output')?.innerHTML.slice(0, 300)])""", PANEL)
                raise AssertionError((seen(), dom)) from exc
        assert page.locator(f"{SHOWN} .js-plotly-plot .slider-group").count() == 0  # activations: no slider
        page.locator(f"{SHOWN} .hpo-diag-view button", has_text="Weights").click()
        page.wait_for_selector(f"{SHOWN} .js-plotly-plot .slider-group", timeout=60_000)  # the epoch slider
        page.locator(SHOWN).screenshot(path=str(tmp_path / "diagnostics-panel.png"))
        assert not session.widget_errors()
