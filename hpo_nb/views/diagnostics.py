"""The diagnostics panel: one trial's learning curves, confusion matrix, gradient flow, weight
distributions and activation maps, for the dashboard's details and the no-code app's results.

It draws with ``Experiment.plot_*`` (stored data only) for a finished trial, and, while the
trial it shows is still training, the gradient flow from the live snapshot (``EpochDiagnostics``
events, one per ended epoch), redrawn as epochs end. Figures go into an ``Output`` widget by
setting its ``outputs`` (a value change: safe from the renderer thread). ``controls`` are the
widgets whose messages the dashboard routes early while ``exp.run()`` blocks the kernel.
"""

from __future__ import annotations

import html
import json
import logging
import threading
from typing import Any

import ipywidgets as w

from ..analysis.diagnostics import ENABLE_HINT, live_gradient_flow
from ..errors import HpoNbError

log = logging.getLogger("hpo_nb")

VIEWS = {
    "Gradient flow": "plot_gradient_flow",
    "Learning curves": "plot_learning_curves",
    "Confusion matrix": "plot_confusion_matrix",
    "Weights": "plot_weights",
    "Activations": "plot_activations",
}


def figure_output(fig: Any, text: str) -> dict[str, Any]:
    """A display_data output that JupyterLab and Voila render with Plotly's mime renderer."""
    spec = json.loads(fig.to_json())
    data = {"data": spec["data"], "layout": spec["layout"], "config": {"displaylogo": False}}
    if spec.get("frames"):
        data["frames"] = spec["frames"]
    return {"output_type": "display_data", "metadata": {},
            "data": {"application/vnd.plotly.v1+json": data, "text/plain": text}}


def _message_output(message: str) -> dict[str, Any]:
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/html": f"<div class='hpo-diag-message' style='color:#666'>{html.escape(message)}</div>",
                     "text/plain": message}}


class DiagnosticsPanel:
    """A trial picker, a view switch and the figure.

    Args:
        source: what draws stored diagnostics (an ``Experiment``: ``trial(n)`` and ``plot_*``);
            None until an experiment exists (``panel.source = exp`` later).
        title: the panel's heading (the title of its collapsible section).
        background: draw on the panel's own thread (False: at once, in the caller's thread).
        opened: start expanded; collapsed, it draws nothing until opened.
    """

    def __init__(self, source: Any = None, title: str = "Diagnostics", background: bool = True,
                 opened: bool = False) -> None:
        self.source = source
        self._lock = threading.RLock()
        # Drawing reads storage and builds a figure: done on the panel's own thread, so the kernel's
        # message routing (Stop, picks) and the progress renderer never wait for it.
        self._background = background
        self._wanted: tuple[Any, ...] | None = None
        self._wake = threading.Condition()
        self._drawer: threading.Thread | None = None
        self.drawn = 0  # drawings finished (tests wait on it)
        self._running: dict[int, Any] = {}  # trial -> RunningTrial (latest snapshot)
        self._finished: list[int] = []
        self._shown_key: Any = None
        self._muted = False
        self._cache: dict[tuple[int, str], dict[str, Any]] = {}  # a finished trial's drawings do not change
        self.trial = w.Dropdown(options=[], value=None, description="Trial",
                                layout=w.Layout(width="220px")).add_class("hpo-diag-trial")
        self.view = w.ToggleButtons(options=list(VIEWS), value="Gradient flow",
                                    style={"button_width": "136px"}).add_class("hpo-diag-view")
        self.output = w.Output(layout=w.Layout(min_height="120px")).add_class("hpo-diag-output")
        self._own_pick = False  # the user chose the shown trial in the panel itself
        self._setting = False
        self.trial.observe(self._trial_changed, names="value")
        self.view.observe(lambda _c: self.refresh(), names="value")
        self.body = w.VBox([w.HBox([self.trial, self.view]), self.output]).add_class("hpo-diagnostics")
        # Collapsed until opened: nothing is drawn (no storage read, no Plotly in the page) unless
        # the user asks to see it; opening draws the current trial and view.
        self.root = w.Accordion(children=[self.body], titles=(title,),
                                selected_index=0 if opened else None).add_class("hpo-diagnostics-section")
        self.root.observe(lambda _c: self.refresh(), names="selected_index")
        self.controls = (self.trial, self.view, self.root)

    # ------------------------------------------------------------------ inputs (any thread)

    def show(self, number: int | None, force: bool = False) -> None:
        """Show trial ``number`` (the dashboard's picked trial); None leaves the choice as is.

        Args:
            number: the trial number.
            force: also when the user picked another trial in the panel itself (a pick made in the
                dashboard); without it, a trial the user chose here (e.g. to watch it train) stays.
        """
        with self._lock:
            if number is None or (self._own_pick and not force):
                return
            self._ensure_option(number)
            self._setting = True
            try:
                if self.trial.value != number:
                    self.trial.value = number  # observe -> refresh
                else:
                    self.refresh()
            finally:
                self._setting = False
            self._own_pick = False

    def update(self, snap: Any) -> None:
        """Follow a progress snapshot: running trials join the picker; a shown running trial's
        gradient flow is redrawn when an epoch ends."""
        with self._lock:
            self._running = {t.trial: t for t in snap.running}
            self._finished = [t.trial for t in snap.finished if t.state in ("complete", "pruned", "stopped", "failed")]
            options = [(f"#{n} (training)", n) for n in sorted(self._running)]
            options += [(f"#{n}", n) for n in sorted(self._finished, reverse=True) if n not in self._running]
            if [v for _, v in options] != [v for _, v in self.trial.options] or \
                    [l for l, _ in options] != [l for l, _ in self.trial.options]:
                current = self.trial.value
                self._muted = True
                try:
                    with self.trial.hold_sync():
                        self.trial.options = options
                        self.trial.value = current if any(v == current for _, v in options) else None
                finally:
                    self._muted = False
            self.refresh()

    def _trial_changed(self, change: dict[str, Any]) -> None:
        if not self._muted and not self._setting and change["new"] is not None:
            self._own_pick = True
        self.refresh()

    def _ensure_option(self, number: int) -> None:
        if all(v != number for _, v in self.trial.options):
            self._muted = True
            try:
                self.trial.options = [*self.trial.options, (f"#{number}", number)]
            finally:
                self._muted = False

    # ------------------------------------------------------------------ drawing

    def refresh(self) -> None:
        """Redraw if the trial, the view or (live) the trial's ended epochs changed."""
        if self._muted:
            return
        with self._lock:
            if self.root.selected_index is None:  # collapsed: draw when opened
                self._shown_key = None
                return
            number, view = self.trial.value, self.view.value
            running = self._running.get(number) if number is not None else None
            live = tuple(g.epoch for g in running.gradients) if running is not None else None
            key = (number, view, live)
            if key == self._shown_key:
                return
            self._shown_key = key
        if not self._background:
            self._draw(key, number, view, running)
            return
        with self._wake:
            self._wanted = (key, number, view, running)
            if self._drawer is None:
                self._drawer = threading.Thread(target=self._draw_loop, name="hpo-nb-diagnostics", daemon=True)
                self._drawer.start()
            self._wake.notify()

    def _draw_loop(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._wanted is not None)
                wanted, self._wanted = self._wanted, None
            self._draw(*wanted)  # type: ignore[misc]

    def _draw(self, key: Any, number: int | None, view: str, running: Any) -> None:
        try:
            output = self._render(number, view, running)
        except Exception as exc:  # never let the drawer thread die
            output = _message_output(f"{view} of trial {number} could not be drawn: {type(exc).__name__}: {exc}")
        with self._lock:
            if key == self._shown_key:  # still what is wanted (a newer pick may have come meanwhile)
                self.output.outputs = (output,)
            self.drawn += 1

    def _render(self, number: int | None, view: str, running: Any) -> dict[str, Any]:
        if number is None:
            return _message_output("Pick a trial to see its diagnostics.")
        if running is not None:
            if view != "Gradient flow":
                return _message_output(f"Trial {number} is training: its {view.lower()} appear when it ends; "
                                       "the gradient flow is live.")
            flow = live_gradient_flow(running.gradients)
            if flow is None and getattr(self.source, "diagnostics", True) is False:
                return _message_output(f"Trial {number} is training with diagnostics=False: it has no gradient flow. "
                                       f"{ENABLE_HINT}")
            if flow is None:
                return _message_output(f"Trial {number} is training: its gradient flow appears after the first epoch.")
            from .diagnostic_plots import gradient_flow

            return figure_output(gradient_flow(flow, f"Trial {number} gradient flow, live"), "gradient flow")
        if self.source is None:
            return _message_output("No experiment yet.")
        if (number, view) in self._cache:
            return self._cache[(number, view)]
        try:
            method = getattr(self.source, VIEWS[view])
            fig = method([number]) if view == "Learning curves" else method(number)
        except HpoNbError as exc:
            return _message_output(str(exc))
        except Exception as exc:  # a broken drawing never breaks the dashboard
            log.warning("diagnostics panel: %s of trial %s failed: %s", view, number, exc)
            return _message_output(f"{view} of trial {number} could not be drawn: {type(exc).__name__}: {exc}")
        if len(self._cache) >= 32:
            self._cache.pop(next(iter(self._cache)))
        self._cache[(number, view)] = figure_output(fig, f"{view.lower()}, trial {number}")
        return self._cache[(number, view)]
