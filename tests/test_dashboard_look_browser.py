"""The dashboard and 3D view of a stored study as a user sees them in a fresh kernel: a real
JupyterLab in Debian chromium reopens a study that this test process built (a real
``Experiment``; training replaced by known outcomes with real Keras architecture metadata, two
of them stopped part-way), so the kernel never ran it. One notebook session checks, from the DOM:

- the reopened study is shown (counts, tiles, gallery), with no Stop button while nothing runs;
- stopped trials are counted apart and ranked after every complete trial;
- a calm finished view: a quiet state badge, one column per searched parameter, sorting by a
  parameter column, details folded until asked for;
- at 800 and 1400 px nothing overflows its output (tiles wrap, the 3D canvas shrinks);
- in JupyterLab's dark theme the text keeps its contrast (theme CSS variables);
- the 3D view's Reset view puts a dragged camera back;
- no JavaScript console error that hpo-nb causes.
Screenshots land in the test's temp folder (shots/: finished, 800 and 1400 px, dark theme, 3D)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.lab_support import chromium, lab, open_notebook, run_all, write_notebook  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

SPACE = {"conv_blocks": 2, "filters": 16, "dense_layers": 1, "batch_norm": True, "kernel_size": 3,
         "activation": "relu", "pooling": "max", "dense_units": 32, "optimizer": "adam",
         "learning_rate": (1e-4, 1e-1), "batch_size": [16, 32, 64, 128], "dropout": (0.0, 0.5)}
SEARCHED = ["learning_rate", "batch_size", "dropout"]
STOPPED = {2, 5}  # these trials stop part-way (stopped trials do not count: 6 counted + 2 stopped)
# Known upstream noise (/work/shared/notes/browser.md). pythreejs' "t.on is not a function" is not
# here: views/arch3d.py avoids it (an explicit light shadow), so it counts as an error.
UPSTREAM = ("Unsatisfied version",)


def build_study(runs_dir: Path, arch: dict) -> None:
    from hpo_nb import Experiment
    from hpo_nb.executors import InMemoryExecutor
    from hpo_nb.spec import TrialOutcome

    def outcome(job):
        p, n = job.spec.params, job.spec.trial_number
        acc = 0.95 - 0.12 * abs(__import__("math").log10(p["learning_rate"]) + 2.5)
        health = {"gradient_health": 1.0, "dead_units": 0.1 * p["dropout"], "saturated_units": 0.0,
                  "overfitting_gap": 0.05, "loss_stability": 0.9, "health_score": 1.0 - p["dropout"]}
        if n in STOPPED:  # the best numbers of all, but only part of the training: never the best
            return TrialOutcome(n, "stopped", accuracy=0.999, score=0.999, duration_s=1.0, architecture=arch)
        return TrialOutcome(n, "complete", accuracy=acc, score=acc, health=health,
                            duration_s=200.0 / p["batch_size"], architecture=arch)

    Experiment("digits", n_trials=6, executor=InMemoryExecutor(outcome), progress="none", name="reopened",
               runs_dir=runs_dir, pruning=False, search_space=SPACE).run()


def cells(runs_dir: Path) -> list[str]:
    return [f"""
from hpo_nb import Experiment
exp = Experiment("digits", n_trials=6, name="reopened", runs_dir={str(runs_dir)!r}, pruning=False,
                 search_space={SPACE!r})
print("rows", len(exp.results))
exp.dashboard()
""", "exp.architecture_3d()"]


def overflow(page, selector: str) -> list[str]:
    """Descendants of ``selector`` whose right edge is past their output area's (clipped or
    scrolled out of view), and output areas that scroll sideways."""
    return page.evaluate("""sel => {
        const bad = [];
        for (const root of document.querySelectorAll(sel)) {
            const out = root.closest('.jp-OutputArea-output');
            if (out.scrollWidth > out.clientWidth + 1) bad.push('output scrolls: ' + out.scrollWidth + ' > ' + out.clientWidth);
            const right = out.getBoundingClientRect().right + 1;
            for (const el of root.querySelectorAll('*')) {
                if (el.parentElement && el.parentElement.closest('.hpo-scroll')) continue;  // scrolls in its own box
                const r = el.getBoundingClientRect();
                if (r.width > 0 && r.right > right) bad.push((el.className || el.tagName) + ' ends at ' + Math.round(r.right) + ' > ' + Math.round(right));
            }
        }
        return bad;
    }""", selector)


def luminance(css: str) -> float:
    r, g, b, *a = (float(x) for x in re.findall(r"[\d.]+", css))
    lin = [(c / 255) / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(page, selector: str) -> float:
    """Contrast ratio of an element's text against the notebook's background (alpha blended)."""
    fg, bg = page.evaluate("""sel => {
        const el = document.querySelector(sel);
        const bg = getComputedStyle(document.querySelector('.jp-Notebook')).backgroundColor;
        return [getComputedStyle(el).color, bg];
    }""", selector)
    f = [float(x) for x in re.findall(r"[\d.]+", fg)]
    b = [float(x) for x in re.findall(r"[\d.]+", bg)][:3]
    alpha = f[3] if len(f) > 3 else 1.0
    blended = "rgb(" + ",".join(str(alpha * c + (1 - alpha) * d) for c, d in zip(f[:3], b)) + ")"
    hi, lo = sorted((luminance(blended), luminance("rgb(" + ",".join(map(str, b)) + ")")), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def set_theme(page, name: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
    page.locator(".lm-Menu-itemLabel", has_text=name).first.click()
    light = "true" if "Light" in name else "false"
    page.wait_for_selector(f"body[data-jp-theme-light='{light}']", state="attached", timeout=30_000)
    page.wait_for_timeout(800)


def canvas_png(page) -> bytes:
    return page.locator(".hpo-nb-3d canvas").first.screenshot()


def pixel_change(a: bytes, b: bytes) -> float:
    import io

    from PIL import Image, ImageChops

    ia, ib = (Image.open(io.BytesIO(x)).convert("L") for x in (a, b))
    if ia.size != ib.size:
        return 1.0
    diff = ImageChops.difference(ia, ib).point(lambda v: 255 if v > 40 else 0)
    return sum(1 for v in diff.getdata() if v) / (ia.size[0] * ia.size[1])


def test_a_reopened_study_looks_finished_fits_any_width_and_theme(lab, chromium, tmp_path: Path) -> None:
    from hpo_nb import models

    params = {"conv_blocks": 2, "filters": 16, "batch_norm": True, "dropout": 0.2, "dense_layers": 1,
              "dense_units": 32}
    arch = models.architecture(models.build_model(params, modality="image", input_shape=(8, 8, 1), num_classes=10))
    runs = lab.root / "stored-runs"
    build_study(runs, json.loads(json.dumps(arch)))
    nb = write_notebook(tmp_path / "reopen.ipynb", cells(runs))
    shots = tmp_path / "shots"
    shots.mkdir()
    with open_notebook(lab, chromium, nb, viewport=(1400, 1400)) as session:
        page = session.page
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        run_all(page)
        page.wait_for_selector(".jp-OutputArea-output:has-text('rows 8')", timeout=180_000)
        page.wait_for_selector(".hpo-dashboard .hpo-row >> nth=7", timeout=60_000)

        # 1: the stored study, not an empty dashboard; nothing runs, so no Stop button.
        label = page.locator(".hpo-overall-label").inner_text()
        assert label.startswith("6/6 trials (0 running, 6 complete, 0 pruned, 0 failed; 2 stopped, not counted)"), label
        assert "ETA" not in label and label.endswith("· done"), label
        assert not page.locator(".hpo-stop").is_visible()
        assert page.locator(".hpo-state").inner_text().strip() == "finished"
        assert "No finished trials" not in page.locator(".hpo-dashboard").inner_text()
        tiles = [t.replace("\n", " ") for t in page.locator(".hpo-tile").all_inner_texts()]
        assert tiles[0].startswith("Trials done 6/6") and "+2 stopped, not counted" in tiles[0], tiles

        # 5: stopped trials (the highest partial accuracy) rank after every complete one, never best.
        states = page.eval_on_selector_all(".hpo-row", "rows => rows.map(r => r.dataset.state)")
        assert states == ["complete"] * 6 + ["stopped"] * 2, states
        best = page.eval_on_selector_all(".hpo-row", "rows => rows.map(r => r.dataset.trial)")[0]
        assert int(best) not in STOPPED and "99.90 %" not in tiles[1], tiles

        # 6: one column per searched parameter; sorting by one; details folded until asked for.
        headers = [h.strip(" ▼▲") for h in page.locator(".hpo-gallery th").all_inner_texts()]
        assert headers[:6] == ["Trial", "State", "Accuracy", "Score", "Health", "Duration"], headers
        assert sorted(headers[6:9]) == sorted(SEARCHED) and headers[9:] == ["Architecture"], headers
        assert not page.locator(".hpo-details").first.is_visible()
        page.locator(".hpo-dashboard").screenshot(path=str(shots / "dashboard-finished.png"))
        page.locator(".hpo-sort select").select_option("learning_rate")
        page.wait_for_selector(".hpo-gallery th:has-text('learning_rate ▲')", timeout=30_000)
        column = headers.index("learning_rate")
        rates = page.eval_on_selector_all(".hpo-row", f"rows => rows.map(r => r.cells[{column}].innerText)")
        assert [float(v) for v in rates] == sorted(float(v) for v in rates), rates
        page.locator(".hpo-details-section .lm-AccordionPanel-title, .hpo-details-section .jupyter-widget-Collapse-header, "
                     ".hpo-details-section .lm-Collapse-header, .hpo-details-section .p-Collapse-header").first.click()
        page.wait_for_selector(".hpo-details:visible", timeout=30_000)
        assert "Hyperparameters" in page.locator(".hpo-details").first.inner_text()

        # 3: nothing overflows at 1400 and at 800 px (tiles wrap, the canvas scales down).
        page.locator(".hpo-nb-3d canvas").first.wait_for(timeout=90_000)
        page.wait_for_timeout(1500)
        for width in (1400, 800):
            page.set_viewport_size({"width": width, "height": 1400})
            page.wait_for_timeout(1200)
            assert not overflow(page, ".hpo-dashboard"), (width, overflow(page, ".hpo-dashboard"))
            assert not overflow(page, ".hpo-nb-3d"), (width, overflow(page, ".hpo-nb-3d"))
            tile_box = page.locator(".hpo-tile").nth(3).bounding_box()
            assert tile_box["x"] + tile_box["width"] <= width, (width, tile_box)
            details = page.locator(".hpo-nb-layer-details").first.bounding_box()
            assert details["x"] + details["width"] <= width, (width, details)  # the 3D details stay in view
            session.screenshot(shots / f"lab-{width}.png")
        page.set_viewport_size({"width": 1400, "height": 1400})
        page.wait_for_timeout(1200)

        # 7: Reset view puts a dragged camera back (pixels of the canvas, before / dragged / reset).
        page.locator(".hpo-nb-3d").first.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        before = canvas_png(page)
        box = page.locator(".hpo-nb-3d canvas").first.bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx + 120, cy + 40, steps=8)
        page.mouse.up()
        page.wait_for_timeout(800)
        dragged = canvas_png(page)
        page.locator(".hpo-nb-reset-view").first.click()
        page.wait_for_timeout(1200)
        reset = canvas_png(page)
        moved, back = pixel_change(before, dragged), pixel_change(before, reset)
        assert moved > 0.01 and back < moved / 4, (moved, back)
        page.locator(".hpo-nb-3d").first.screenshot(path=str(shots / "arch3d.png"))

        # 7: the dark theme: text keeps its contrast (theme variables, not fixed greys).
        try:
            set_theme(page, "JupyterLab Dark")
            for sel in (".hpo-tile-label", ".hpo-tile-value", ".hpo-gallery td", ".hpo-overall-label"):
                assert contrast(page, sel) >= 4.5, (sel, contrast(page, sel))
            page.locator(".hpo-dashboard").screenshot(path=str(shots / "dashboard-dark.png"))
        finally:
            set_theme(page, "JupyterLab Light")

        assert not session.widget_errors()
        console_errors = [m for m in session.console if m.startswith("error") and not any(u in m for u in UPSTREAM)]
        assert not console_errors + errors, console_errors + errors
