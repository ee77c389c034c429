"""hpo-nb's Plotly figures survive ``jupyter nbconvert --to html``: a notebook executed in a real
kernel (nbclient), exported with nbconvert's HTML exporter, then opened from disk in headless
chromium with no network: every hpo-nb figure is drawn (an SVG per plot), while a plain Plotly
figure in the same notebook (Plotly's default renderer) is not, which is the failure this fixes.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.lab_support import chromium, fake_study_cell  # noqa: F401 (fixture)

SETUP = fake_study_cell("export")
FIGURES = ["exp.importance_heatmap()", "exp.plot_history()", "exp.plot_param_importances(target='dead_units')",
           "exp.plot_contour()", "exp.plot_intermediate_values()"]
PLAIN = "import plotly.graph_objects as go\ngo.Figure(go.Bar(x=['a', 'b'], y=[1, 2]), layout_title_text='plain')"


@pytest.mark.slow
@pytest.mark.browser
def test_hpo_nb_figures_are_drawn_in_an_exported_html_page(tmp_path, chromium):  # noqa: F811
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP), *(nbformat.v4.new_code_cell(c) for c in FIGURES),
                nbformat.v4.new_code_cell(PLAIN)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    body, _ = HTMLExporter().from_notebook_node(nb)
    page_file = tmp_path / "exported.html"
    page_file.write_text(body)
    assert body.count("window.PlotlyConfig") <= 1  # plotly.js inlined once, not once per figure

    context = chromium.new_context(viewport={"width": 1200, "height": 900}, offline=True)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_file.as_uri())
        page.wait_for_function(f"document.querySelectorAll('.plotly-graph-div .main-svg').length >= {len(FIGURES)}",
                               timeout=30_000)
        titles = page.eval_on_selector_all(".plotly-graph-div .gtitle", "els => els.map(e => e.textContent)")
        heights = page.eval_on_selector_all(".plotly-graph-div", "els => els.map(e => e.getBoundingClientRect().height)")
        page.screenshot(path=str(tmp_path / "exported.png"), full_page=True)
    finally:
        context.close()
    assert not errors, errors
    assert len(titles) == len(FIGURES) and all(h > 200 for h in heights), (titles, heights)
    for words in ("importance", "optimization history", "parameter importance · dead units", "contour",
                  "intermediate values"):
        assert any(words in t.lower() for t in titles), (words, titles)
    assert not any(t == "plain" for t in titles)  # Plotly's default output alone does not survive export
