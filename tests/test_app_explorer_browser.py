"""The app's "Explore the study" selector in real Voila and chromium: Optuna's plots of a study,
switched by view and target from the page. The study is real (SQLite); training is replaced
(``InMemoryExecutor``), so the page serves a small notebook that builds it and shows the selector
exactly as the app's results section does (``nocode.study_explorer``)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.lab_support import chromium  # noqa: F401 (fixture)
from tests.test_app_browser import voila

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELL = """
import math
from hpo_nb import Experiment
from hpo_nb.executors import InMemoryExecutor
from hpo_nb.nocode import study_explorer
from hpo_nb.spec import TrialOutcome

def outcome(job):
    p = job.spec.params
    acc = 0.95 - 0.12 * abs(math.log10(p["learning_rate"]) + 2.5)
    health = {"gradient_health": 1.0, "dead_units": p["dropout"], "saturated_units": 0.0, "overfitting_gap": 0.05,
              "learning_progress": 1.0, "loss_stability": 0.9, "health_score": 1.0 - p["dropout"] / 6}
    return TrialOutcome(job.spec.trial_number, "complete", accuracy=acc, score=acc, health=health, duration_s=1.0,
                        history={"val_accuracy": [acc - 0.1, acc]}, epochs_run=2)

exp = Experiment("digits", n_trials=10, executor=InMemoryExecutor(outcome), progress="none", name="explore",
                 search_space={"conv_blocks": 1, "filters": 8, "dense_layers": 0, "batch_norm": False,
                               "learning_rate": (1e-4, 1e-1), "batch_size": [16, 32], "dropout": (0.0, 0.5)})
exp.run()
study_explorer(exp)
"""


def _title(page) -> str:
    return page.locator(".hpo-app-plot .gtitle").first.text_content() or ""  # an SVG <text>


def test_the_selector_switches_optunas_views_in_voila(chromium, tmp_path: Path):  # noqa: F811
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = tmp_path / "explore.ipynb"
    nbformat.write(nb, source)
    with voila(source, tmp_path / "served") as url:
        context = chromium.new_context(viewport={"width": 1100, "height": 1200})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url, timeout=180_000)
        page.wait_for_selector(".hpo-app-plot .js-plotly-plot .main-svg", timeout=180_000)
        assert "optimization history" in _title(page)

        page.select_option(".hpo-app-plot-kind select", label="parameter importance")
        page.select_option(".hpo-app-plot-target select", label="dead units")
        page.wait_for_function("() => { const t = document.querySelector('.hpo-app-plot .gtitle');"
                               " return t && t.textContent.includes('dead units'); }", timeout=30_000)
        assert "parameter importance" in _title(page)
        ticks = page.locator(".hpo-app-plot .ytick text").all_text_contents()
        assert page.locator(".hpo-app-plot .barlayer .point").count() == len(ticks) >= 3
        assert "dropout" in ticks and "filters" not in ticks  # searched parameters only

        page.select_option(".hpo-app-plot-kind select", label="intermediate values (per epoch)")
        page.wait_for_function("() => document.querySelector('.hpo-app-plot .gtitle')"
                               ".textContent.includes('intermediate values')", timeout=30_000)
        assert page.locator(".hpo-app-plot-target select").is_disabled()
        page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
        context.close()
    assert not errors, errors
