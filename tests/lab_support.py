"""A real JupyterLab driven by Debian chromium, for browser tests (mark them ``browser``).

Why a module and not a conftest: several test modules share it explicitly, by import::

    import pytest
    from tests.lab_support import chromium, lab, open_notebook, run_all, write_notebook  # noqa: F401 (fixtures)

    @pytest.mark.browser
    def test_widget_shows(lab, chromium, tmp_path):
        nb = write_notebook(tmp_path / "demo.ipynb", ["import ipywidgets as w; w.IntSlider(3)"])
        with open_notebook(lab, chromium, nb) as session:   # opens it, waits for an idle kernel
            run_all(session.page)                           # Run > Run All Cells
            session.page.wait_for_selector(".widget-slider", timeout=60_000)
            session.screenshot(tmp_path / "slider.png")
            assert not session.widget_errors()

- ``lab`` (session fixture): one JupyterLab server on 127.0.0.1 (free port, random token,
  ``--allow-root``) whose root is a temp dir, with isolated config/settings/workspaces
  (news and update checks off, notebook windowing off so every cell's output is in the DOM).
- ``chromium`` (session fixture): a headless Debian chromium (``/usr/bin/chromium``) launched through
  Python playwright with the flags that work as root (see /work/shared/notes/browser.md).
- ``open_notebook(lab, chromium, path)``: copies the notebook into its own folder under the lab root
  (the kernel's working directory: files the notebook writes, e.g. ``runs/``, land in ``session.dir``),
  opens it in a fresh browser context and workspace, and waits until its kernel is idle. On exit it
  shuts the kernel down and closes the context.
- ``run_all(page)``, ``wait_kernel_idle(page)``, ``write_notebook(path, cells)`` are plain helpers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
# Notebook cells render lazily by default (windowing): outputs of cells out of view are not in the
# DOM. Tests read outputs from the DOM, so render everything. News/update toasts would cover the page.
_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none",
                                                               "autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}


@dataclass
class LabServer:
    """A running JupyterLab: ``url(path)`` builds an authenticated address."""

    root: Path
    port: int
    token: str
    process: subprocess.Popen
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "lab", **query: str) -> str:
        q = "&".join([f"{k}={v}" for k, v in query.items()] + [f"token={self.token}"])
        return f"{self.base}/{path.lstrip('/')}?{q}"

    def api(self, method: str, path: str) -> Any:
        req = urllib.request.Request(f"{self.base}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class NotebookSession:
    """An open notebook: ``page`` (playwright Page), ``dir`` (the kernel's working directory),
    ``path`` (the notebook file on the server), ``console`` (browser console messages)."""

    lab: LabServer
    page: Any
    dir: Path
    path: Path
    console: list[str] = field(default_factory=list)

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def widget_errors(self) -> list[str]:
        """Texts of 'Error displaying widget' outputs (a widget the front end could not render)."""
        return [t for t in self.page.locator(".jp-OutputArea-output").all_inner_texts()
                if "Error displaying widget" in t]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A notebook of code cells on the ``python3`` kernel (the venv's own)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


@contextmanager
def jupyter_lab(root: Path, startup_timeout: float = 90.0) -> Iterator[LabServer]:
    """Start JupyterLab serving ``root``; stop it (by its PID) on exit."""
    root.mkdir(parents=True, exist_ok=True)
    state = root.parent / f"{root.name}-jupyter-state"
    env = dict(os.environ)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")):
        env[var] = str(state / sub)
        (state / sub).mkdir(parents=True, exist_ok=True)
    for rel, values in _SETTINGS.items():
        target = state / "settings" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    env.pop("JUPYTER_TOKEN", None)
    env["PYTHONUNBUFFERED"] = "1"
    port, token = free_port(), uuid.uuid4().hex
    log_path = state / "lab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
           f"--port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
           "--ServerApp.port_retries=0", "--LabApp.news_url=", "--ServerApp.disable_check_xsrf=True"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = LabServer(root=root, port=port, token=token, process=proc, log_path=log_path)
    try:
        _wait_ready(server, startup_timeout)
        yield server
    finally:
        _stop(proc)


def _wait_ready(server: LabServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {server.process.returncode}:\n{server.log()[-3000:]}")
        try:
            server.api("GET", "status")
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{server.log()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its kernels
        except ProcessLookupError:
            return
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """Headless Debian chromium through playwright (never ``playwright install``)."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run scripts/system-deps.sh (make test does).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def wait_kernel_idle(page: Any, timeout_ms: int = 120_000) -> None:
    """Wait until the notebook's kernel indicator reads idle (kernel started, no cell running)."""
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_ms)


def run_all(page: Any) -> None:
    """Run > Run All Cells, from the menu bar, as a user would."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


@contextmanager
def open_notebook(lab: LabServer, browser: Any, notebook: Path,
                  viewport: tuple[int, int] = (1400, 1000)) -> Iterator[NotebookSession]:
    """Copy ``notebook`` into a fresh folder under the lab root and open it; yields a NotebookSession."""
    folder = lab.root / f"{notebook.stem}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    target = folder / notebook.name
    shutil.copy(notebook, target)
    rel = target.relative_to(lab.root).as_posix()
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    session = NotebookSession(lab=lab, page=page, dir=folder, path=target)
    page.on("console", lambda msg: session.console.append(f"{msg.type}: {msg.text}"))
    try:
        # A workspace of its own: no tabs left over from an earlier test.
        page.goto(lab.url(f"lab/workspaces/t{uuid.uuid4().hex[:8]}/tree/{rel}"), timeout=120_000)
        page.wait_for_selector(".jp-Notebook", timeout=120_000)
        _accept_kernel_dialog(page)
        wait_kernel_idle(page)
        yield session
    finally:
        _shutdown_kernels(lab, rel)
        context.close()


def _accept_kernel_dialog(page: Any, timeout_ms: int = 1_500) -> None:
    """Confirm a 'Select Kernel' dialog if one shows (it should not with autoStartDefaultKernel)."""
    button = page.locator(".jp-Dialog .jp-mod-accept")
    try:
        button.wait_for(timeout=timeout_ms)
    except Exception:
        return
    button.click()


def _shutdown_kernels(lab: LabServer, rel_path: str) -> None:
    try:
        for s in lab.api("GET", "sessions"):
            if s.get("path") == rel_path:
                lab.api("DELETE", f"sessions/{s['id']}")
    except (urllib.error.URLError, OSError):
        pass  # the server is gone already; its process group goes with it


class _Shared:
    """One instance per session even when several test modules import the fixtures (pytest then
    makes one fixture per module): the first user starts it, the last one's teardown stops it.
    Two playwright sync sessions cannot even run at once in one thread."""

    def __init__(self) -> None:
        self.value: Any = None
        self.users = 0
        self.stack: ExitStack | None = None

    @contextmanager
    def use(self, make: Any) -> Iterator[Any]:
        if self.users == 0:
            self.stack = ExitStack()
            self.value = self.stack.enter_context(make())
        self.users += 1
        try:
            yield self.value
        finally:
            self.users -= 1
            if self.users == 0 and self.stack is not None:
                self.stack.close()
                self.stack, self.value = None, None


_LAB, _CHROMIUM = _Shared(), _Shared()


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """One JupyterLab for the whole session (startup costs ~10-20 s on a busy machine)."""
    with _LAB.use(lambda: jupyter_lab(tmp_path_factory.mktemp("lab") / "root")) as server:
        yield server


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Debian chromium for the whole session; each notebook gets its own context."""
    with _CHROMIUM.use(launch_chromium) as browser:
        yield browser


def fake_study_cell(name: str) -> str:
    """Notebook source that runs a 10-trial study in milliseconds (an in-memory executor whose
    accuracy peaks at learning rate 10^-2.5), for browser tests that need finished trials."""
    return FAKE_STUDY.replace("NAME", repr(name))


FAKE_STUDY = """
import math
from hpo_nb import Experiment
from hpo_nb.executors import InMemoryExecutor
from hpo_nb.spec import TrialOutcome

def outcome(job):
    p = job.spec.params
    acc = 0.95 - 0.12 * abs(math.log10(p["learning_rate"]) + 2.5)
    health = {"gradient_health": 1.0, "dead_units": p["dropout"], "saturated_units": 0.0, "overfitting_gap": 0.05,
              "learning_progress": 1.0, "loss_stability": 0.9, "health_score": 1.0 - p["dropout"] / 6}
    return TrialOutcome(job.spec.trial_number, "complete", accuracy=acc, score=acc, health=health, duration_s=1.0,
                        history={"val_accuracy": [acc - 0.1, acc]}, epochs_run=2)

exp = Experiment("digits", n_trials=10, executor=InMemoryExecutor(outcome), progress="none", name=NAME,
                 search_space={"conv_blocks": 1, "filters": 8, "dense_layers": 0, "batch_norm": False,
                               "learning_rate": (1e-4, 1e-1), "batch_size": [16, 32], "dropout": (0.0, 0.5)})
exp.run()
"""
