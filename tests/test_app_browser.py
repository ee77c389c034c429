"""The no-code app as a user sees it: real Voila serving ``notebooks/app.ipynb``, Debian chromium.
From the page: set a tiny search, press Start, watch trials progress, see the finished state
(3D view, health table, heatmap) and download the best model."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from tests.lab_support import chromium, free_port  # noqa: F401 (fixture: one chromium per session)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

APP = Path(__file__).resolve().parents[1] / "notebooks" / "app.ipynb"
DOCS_SHOT = Path(__file__).resolve().parents[1] / "docs" / "app.png"  # refreshed with HPO_NB_DOCS_SHOTS=1


@contextmanager
def voila(notebook: Path, root: Path, startup_timeout: float = 120.0) -> Iterator[str]:
    """Serve a copy of ``notebook`` from ``root`` (the kernel's working directory: its runs/ lands
    there); yield the page URL; stop the server's process group on exit."""
    root.mkdir(parents=True, exist_ok=True)
    target = root / notebook.name
    shutil.copy(notebook, target)
    port = free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(root / ".runtime"), "JUPYTER_CONFIG_DIR": str(root / ".config"),
           "PYTHONUNBUFFERED": "1"}
    log_path = root / "voila.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "voila", str(target), f"--port={port}", "--no-browser",
                                 "--Voila.ip=127.0.0.1", "--ServerApp.port_retries=0"],
                                cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"voila exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:  # listening means ready (a GET of the page itself would start a kernel)
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"voila did not answer:\n{log_path.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its kernel
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def set_number(page, css: str, value: int) -> None:
    box = page.locator(f"{css} input")
    box.fill(str(value))
    box.press("Tab")  # the widget syncs its value on change


def test_start_watch_finish_and_download_from_the_page(chromium, tmp_path: Path) -> None:
    browser = chromium  # shared: two playwright sync sessions cannot run in one thread
    with voila(APP, tmp_path / "served") as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1400}, accept_downloads=True)
        page = context.new_page()
        errors: list[str] = []
        cdn: list[str] = []  # what the offline page could not fetch (reported, not hpo-nb's)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(f"console: {msg.text} ({msg.location.get('url')})")
                if msg.type == "error" and "Unsatisfied version" not in msg.text
                and "ERR_NAME_NOT_RESOLVED" not in msg.text else None)  # offline: Voila's CDN links
        page.on("requestfailed", lambda req: cdn.append(req.url))
        page.goto(url, timeout=180_000)
        page.wait_for_selector(".hpo-app-start", timeout=180_000)  # the notebook ran; the app is shown
        assert "hpo-nb" in page.locator("body").inner_text()
        assert not page.locator(".jp-OutputArea-output pre, .lm-Widget pre").filter(has_text="Traceback").count()
        # No notebook wording on a page without cells; "Optimize for" sits on the line of its buttons.
        assert "cell below" not in page.locator("body").inner_text()
        label = page.locator(".hpo-app-mode-label").bounding_box()
        buttons = page.locator(".hpo-app-mode button").first.bounding_box()
        assert label["x"] + label["width"] <= buttons["x"] + 1, (label, buttons)
        assert abs((label["y"] + label["height"] / 2) - (buttons["y"] + buttons["height"] / 2)) < 6, (label, buttons)

        set_number(page, ".hpo-app-trials", 2)
        set_number(page, ".hpo-app-epochs", 2)
        page.locator(".hpo-app-mode button", has_text="accuracy + health").click()
        page.wait_for_timeout(500)
        page.locator(".hpo-app-start").click()
        page.wait_for_selector(".hpo-dashboard", timeout=120_000)

        labels: list[str] = []  # the overall progress line over time
        deadline = time.monotonic() + 300
        while not page.locator(".hpo-app-done").count():
            assert time.monotonic() < deadline, page.locator(".hpo-app-status").inner_text()
            label = page.locator(".hpo-overall-label").inner_text()
            if not labels or labels[-1] != label:
                labels.append(label)
            running = [t for t in page.locator(".hpo-trial-label").all_inner_texts() if "epoch" in t]
            if running:
                labels.append("bar: " + running[0])
            page.wait_for_timeout(250)
        assert any(re.search(r"[12] running", label) for label in labels), labels  # seen while it ran
        assert any(label.startswith("bar: ") and "epoch" in label for label in labels), labels
        final = page.locator(".hpo-overall-label").inner_text()
        assert "2/2 trials" in final and "done" in final, final
        status = page.locator(".hpo-app-status").inner_text()
        assert status.startswith("Done:") and "2 of 2 trials done (2 complete)" in status, status
        assert page.locator("button.hpo-app-stop").is_disabled()

        results = page.locator(".hpo-app-results")
        results.locator("canvas").first.wait_for(timeout=60_000)  # the pythreejs 3D view
        results.locator(".js-plotly-plot").first.wait_for(timeout=60_000)  # the importance heatmap
        assert "dead units" in results.locator(".hpo-app-health").inner_text()
        page.wait_for_timeout(1000)
        if os.environ.get("HPO_NB_DOCS_SHOTS") == "1" or not DOCS_SHOT.exists():
            DOCS_SHOT.parent.mkdir(exist_ok=True)
            page.set_viewport_size({"width": 1400, "height": 2400})  # Voila scrolls inside the page
            page.wait_for_timeout(1000)
            app = page.locator(".hpo-app").bounding_box()  # the page from its title to the download link
            page.screenshot(path=str(DOCS_SHOT), clip={"x": 0, "y": 0, "width": 1400,
                                                       "height": app["y"] + app["height"] + 12})

        with page.expect_download(timeout=60_000) as download_info:
            results.locator(".hpo-app-download-link").click()
        download = download_info.value
        assert re.fullmatch(r"app-digits-health-\d{8}-\d{6}-trial\d+\.keras", download.suggested_filename)
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        with zipfile.ZipFile(saved) as keras_file:
            assert {"config.json", "model.weights.h5"} <= set(keras_file.namelist())
        models = list((tmp_path / "served" / "runs").glob("*/models/*.keras"))
        assert any(m.read_bytes() == saved.read_bytes() for m in models)  # exactly the saved best model
        # Narrow: nothing but the heatmap's own scroll box is wider than an 800 px window.
        page.set_viewport_size({"width": 800, "height": 1400})
        page.wait_for_timeout(1500)
        assert not page_overflow(page), page_overflow(page)
        page.screenshot(path=str(tmp_path / "app-800.png"), full_page=True)

        # Stop: a second search, stopped once a trial completed; the status says so, the results stay.
        page.set_viewport_size({"width": 1400, "height": 1400})
        set_number(page, ".hpo-app-trials", 4)
        page.locator(".hpo-app-start").click()
        page.wait_for_selector(".hpo-app-dashboard .hpo-overall-label:has-text('/4 trials')", timeout=120_000)
        page.wait_for_selector(".hpo-app-dashboard .hpo-row", timeout=240_000)  # a trial of this search completed
        page.locator(".hpo-app-stop").click()
        page.wait_for_selector(".hpo-app-stopped", timeout=120_000)
        status = page.locator(".hpo-app-status").inner_text()
        assert status.startswith("Stopped:") and "of 4 trials done" in status, status
        assert "done" not in page.locator(".hpo-overall-label").inner_text().rsplit("·", 1)[-1]
        page.screenshot(path=str(tmp_path / "app-stopped.png"), full_page=True)
        assert not errors, errors
        assert all(not u.startswith("http://127.0.0.1") for u in cdn), cdn  # only outside links failed
        context.close()


def page_overflow(page) -> list[str]:
    """Elements whose right edge is past the window (skipping what scrolls inside its own box)."""
    return page.evaluate("""() => {
        const bad = [];
        const width = document.documentElement.clientWidth + 1;
        const scrolls = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
        for (const el of document.querySelectorAll('.hpo-app *')) {
            let p = el.parentElement, inside = false;
            while (p && !p.classList.contains('hpo-app')) { if (scrolls(p)) { inside = true; break; } p = p.parentElement; }
            if (inside) continue;
            const r = el.getBoundingClientRect();
            if (r.width > 0 && r.right > width) bad.push((el.className || el.tagName) + ' ends at ' + Math.round(r.right));
        }
        return bad.slice(0, 10);
    }""")
