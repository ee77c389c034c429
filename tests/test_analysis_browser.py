"""The analysis views as a user sees them: a real JupyterLab in Debian chromium runs a notebook
whose study was built by a real ``Experiment`` (training replaced by known outcomes carrying real
Keras architecture metadata). The 3D view's <canvas> is drawn (pixels differ from the background)
and a click on a layer shows its details; the heatmap's SVG has one cell per (parameter, target)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from hpo_nb import models
from hpo_nb.analysis.importance import TARGETS
from hpo_nb.views.arch3d import BACKGROUND
from tests.lab_support import chromium, lab, open_notebook, run_all, write_notebook  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

SEARCHED = ("learning_rate", "batch_size", "dropout")


def _notebook_cells(arch: dict) -> list[str]:
    setup = f"""
import json, math
from hpo_nb import Experiment
from hpo_nb.executors import InMemoryExecutor
from hpo_nb.spec import TrialOutcome

ARCH = json.loads({json.dumps(json.dumps(arch))})

def outcome(job):
    p = job.spec.params
    acc = 0.95 - 0.12 * abs(math.log10(p["learning_rate"]) + 2.5)
    health = {{"gradient_health": 1.0, "dead_units": 0.1 * p["dropout"], "saturated_units": 0.0,
              "overfitting_gap": 0.05, "learning_progress": 1.0, "loss_stability": 0.9,
              "health_score": 1.0 - p["dropout"]}}
    return TrialOutcome(job.spec.trial_number, "complete", accuracy=acc, score=acc, health=health,
                        duration_s=200.0 / p["batch_size"], architecture=ARCH)

exp = Experiment("digits", n_trials=14, executor=InMemoryExecutor(outcome), progress="none", name="views",
                 pruning=False, search_space={{"conv_blocks": 2, "filters": 16, "dense_layers": 1, "batch_norm": True,
                 "kernel_size": 3, "activation": "relu", "pooling": "max", "dense_units": 32, "optimizer": "adam",
                 "learning_rate": (1e-4, 1e-1), "batch_size": [16, 32, 64, 128], "dropout": (0.0, 0.5)}})
exp.run()
print("trials", len(exp.results))
"""
    return [setup, "exp.importance_heatmap()", "exp.architecture_3d()"]


def _non_background_share(png: bytes) -> tuple[float, int]:
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    bg = tuple(int(BACKGROUND[i:i + 2], 16) for i in (1, 3, 5))
    pixels = list(img.getdata())
    drawn = [p for p in pixels if max(abs(a - b) for a, b in zip(p, bg)) > 24]
    return len(drawn) / len(pixels), len(set(drawn))


def test_heatmap_cells_and_3d_canvas_render_in_jupyterlab(lab, chromium, tmp_path: Path) -> None:
    params = {"conv_blocks": 2, "filters": 16, "batch_norm": True, "dropout": 0.2, "dense_layers": 1,
              "dense_units": 32}
    arch = models.architecture(models.build_model(params, modality="image", input_shape=(8, 8, 1), num_classes=10))
    nb = write_notebook(tmp_path / "views.ipynb", _notebook_cells(arch))
    with open_notebook(lab, chromium, nb) as session:
        page = session.page
        run_all(page)
        page.wait_for_selector(".jp-OutputArea-output:has-text('trials 14')", timeout=180_000)

        # Heatmap: one annotated cell per (searched parameter, target), named evaluator.
        plot = page.locator(".js-plotly-plot").first
        plot.wait_for(timeout=60_000)
        page.wait_for_function(
            "n => document.querySelectorAll('.js-plotly-plot g.annotation').length >= n",
            arg=len(SEARCHED) * len(TARGETS), timeout=60_000)
        assert plot.locator("g.annotation").count() == len(SEARCHED) * len(TARGETS)
        assert "PED-ANOVA" in plot.locator(".gtitle").text_content()
        assert plot.locator(".heatmaplayer .hm").count() == 1
        plot.screenshot(path=str(tmp_path / "heatmap.png"))

        # 3D view: a WebGL canvas that is actually drawn, a legend, and click-to-details.
        canvas = page.locator(".jp-OutputArea-output canvas").first
        canvas.wait_for(timeout=90_000)
        page.wait_for_selector(".hpo-nb-legend", timeout=60_000)
        page.wait_for_timeout(1500)  # first frames
        png = canvas.screenshot(path=str(tmp_path / "arch3d.png"))
        share, colours = _non_background_share(png)
        assert share > 0.02 and colours > 20, (share, colours)

        details = page.locator(".hpo-nb-layer-details").first
        assert "click a layer" in details.inner_text()
        box = canvas.bounding_box()
        picked = False
        for fx in (0.5, 0.45, 0.55, 0.4, 0.6, 0.35, 0.65, 0.3, 0.7):
            page.mouse.click(box["x"] + fx * box["width"], box["y"] + 0.5 * box["height"])
            try:
                page.wait_for_function(
                    "() => !document.querySelector('.hpo-nb-layer-details').innerText.includes('click a layer')",
                    timeout=3000)
                picked = True
                break
            except Exception:  # missed every solid at this point: try the next one
                continue
        assert picked, "no click on the canvas picked a layer"
        text = details.inner_text()
        assert "type" in text and "output shape" in text and "parameters" in text
        assert not session.widget_errors()
        session.screenshot(tmp_path / "lab.png")

