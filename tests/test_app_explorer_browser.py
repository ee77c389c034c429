"""The app's "Explore the study" selector in real Voila and chromium: Optuna's plots of a study,
switched by view and target from the page. The study is real (SQLite); training is replaced
(``InMemoryExecutor``), so the page serves a small notebook that builds it and shows the selector
exactly as the app's results section does (``nocode.study_explorer``)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.lab_support import chromium, fake_study_cell  # noqa: F401 (fixture)
from tests.test_app_browser import voila

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELL = fake_study_cell("explore") + "from hpo_nb.nocode import study_explorer\nstudy_explorer(exp)\n"


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
