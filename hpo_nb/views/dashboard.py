"""The live notebook dashboard: ipywidgets bars, tiles, gallery and a Stop button.

Threads: the widgets are built and displayed from the cell's thread; afterwards only a hub
subscription's renderer thread calls ``__call__``, which copies view-model values into existing
widgets inside ``hold_sync()`` (value changes are safe from any thread with ipykernel 7; displaying
is not).

Two jobs live beside it: how it sits in the notebook's output (the widget view plus a static
summary, refreshed once the search is over: ``dashboard_display.py``), and how its controls work
while ``exp.run()`` blocks the kernel's main thread (``early_messages.py``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Sequence

import ipywidgets as w

from ..progress import FinishedTrial, Snapshot
from . import dashboard_html as H, viewmodel as vm
from .dashboard_display import WIDGET_VIEW, CellDisplay, summary_bundle
from .diagnostics import DiagnosticsPanel
from .early_messages import handle_early

if TYPE_CHECKING:
    from ..experiment import Experiment

__all__ = ["Dashboard", "WIDGET_VIEW"]
log = logging.getLogger("hpo_nb")


class _TrialBar:
    """One reusable row for a running trial; hidden while unused (widgets are never created late).
    The row wraps: label, bar and metrics each shrink or move to the next line in a narrow output."""

    def __init__(self) -> None:
        self.label = w.HTML(layout=w.Layout(flex="0 1 330px", min_width="200px")).add_class("hpo-trial-label")
        self.bar = w.FloatProgress(min=0.0, max=1.0, layout=w.Layout(flex="1 1 160px", width="auto", min_width="120px",
                                                                      max_width="320px")).add_class("hpo-trial-bar")
        self.metrics = w.HTML(layout=w.Layout(flex="1 1 200px")).add_class("hpo-trial-metrics")
        self.box = w.HBox([self.label, self.bar, self.metrics],
                          layout=w.Layout(display="none", flex_flow="row wrap", align_items="center",
                                          grid_gap="0 8px"))
        self.box.add_class("hpo-trial")

    def plan(self, row: tuple[str, str, float] | None) -> list[tuple[w.Widget, dict[str, Any]]]:
        if row is None:
            return [(self.box.layout, {"display": "none"})]
        label, metrics, fraction = row
        return [(self.label, {"value": _line(label)}),
                (self.metrics, {"value": _line(metrics, H.MUTED)}),
                (self.bar, {"value": fraction}), (self.box.layout, {"display": "flex"})]


# Flex items default to their content's width; a wide table would then push the whole output
# sideways. Let HTML widgets shrink to the output, so the gallery scrolls inside its own box.
_FIT_CSS = ("<style>.hpo-dashboard .widget-html,.hpo-dashboard .widget-html-content,.hpo-dashboard .widget-box"
            "{min-width:0;max-width:100%}</style>")


def _line(text: str, colour: str = H.TEXT) -> str:
    """Text for an HTML widget that wraps in a narrow output (a Label would clip it)."""
    return f'<div style="line-height:1.4;white-space:normal;color:{colour}">{H.esc(text)}</div>'


def _wrap(children: list[w.Widget], gap: str = "4px 8px", **layout: Any) -> w.HBox:
    """A row that wraps onto more lines instead of overflowing a narrow output."""
    return w.HBox(children, layout=w.Layout(flex_flow="row wrap", align_items="center", grid_gap=gap, **layout))


class Dashboard:
    """Overall bar, one bar per running trial, tiles, trial gallery with collapsible details, and
    a Stop button shown only while the search runs (a quiet state badge otherwise).

    Use as a hub renderer: ``hub.subscribe(dashboard)``; ``Dashboard.for_experiment(exp)`` builds,
    fills and displays one for an experiment. ``params``: the searched parameters, one gallery
    column each (None: those that differ between trials)."""

    def __init__(self, title: str = "", slots: int = 1, on_stop: Callable[[], Any] | None = None,
                 params: Sequence[str] | None = None) -> None:
        self.title = title
        self.params = None if params is None else list(params)
        self._on_stop = on_stop
        self._lock = threading.RLock()  # renderer thread vs. the user's sort/pick on the kernel thread
        self._snap: Snapshot | None = None
        self._gallery_key: tuple[Any, ...] | None = None
        self._picked_by_user = False
        self._output = CellDisplay(self.mimebundle, self._done)
        self._muted = False
        # The final test line (vm.test_line) once the search's pick is evaluated; set by for_experiment.
        self.evaluation: Callable[[], str | None] | None = None
        self.majority_rate: float | None = None  # beside the best accuracy (Experiment.baseline)
        self.metric = "accuracy"  # what the score is made of (Experiment.metric)
        self._build(max(1, slots))

    # ------------------------------------------------------------------ widgets

    def _build(self, slots: int) -> None:
        self.header = w.HTML(self._header_html(("", ""))).add_class("hpo-title")
        self.stop_button = w.Button(description="Stop search", icon="stop", button_style="danger",
                                    tooltip="Stop the search: running trials end within one batch; "
                                            "completed trials stay in storage.").add_class("hpo-stop")
        self.stop_button.on_click(self._clicked)
        self.notices = w.HTML(layout=w.Layout(display="none")).add_class("hpo-notices")
        self.overall_bar = w.IntProgress(min=0, max=1, value=0, description="Search",
                                         layout=w.Layout(flex="1 1 260px", width="auto", max_width="460px")
                                         ).add_class("hpo-overall-bar")
        self.overall_label = w.HTML(layout=w.Layout(flex="1 1 300px")).add_class("hpo-overall-label")
        self.tiles = [w.HTML(layout=w.Layout(flex="1 1 150px", max_width="260px")).add_class("hpo-tile")
                      for _ in range(4)]
        self.test = w.HTML(layout=w.Layout(display="none")).add_class("hpo-test-accuracy")
        self.trial_bars = [_TrialBar() for _ in range(slots)]
        self.more = w.Label(layout=w.Layout(display="none")).add_class("hpo-more")
        options = vm.sort_options(self.params or [])
        self.sort = w.Dropdown(options=options, value="score", description="Sort by",
                               layout=w.Layout(width="200px", max_width="100%")).add_class("hpo-sort")
        self.order = w.Dropdown(options=[("high → low", True), ("low → high", False)], value=True,
                                layout=w.Layout(width="120px")).add_class("hpo-order")
        self.sort.observe(self._resorted, names="value")
        self.order.observe(self._resorted, names="value")
        self.picker = w.Dropdown(options=[], value=None, description="Details of",
                                 layout=w.Layout(width="320px", max_width="100%")).add_class("hpo-picker")
        self.picker.observe(self._picked, names="value")
        handle_early(self.stop_button, self._lock, on_click=lambda: self.stop())
        for widget in (self.sort, self.order, self.picker):
            handle_early(widget, self._lock)
        self.gallery = w.HTML(H.gallery_html([])).add_class("hpo-gallery-html")
        self.details = w.HTML(H.details_html(None)).add_class("hpo-details-html")
        # The details of the picked trial. Further per-trial panels (e.g. views/diagnostics.py)
        # go into ``details_box`` after ``details`` and follow the pick in ``_show_details``.
        self.diagnostics = DiagnosticsPanel()  # the picked trial's plots; live gradient flow while it trains
        for widget in self.diagnostics.controls:
            handle_early(widget, self._lock)
        self.details_box = w.VBox([self.details, self.diagnostics.root]).add_class("hpo-details-box")
        self.details_section = w.Accordion(children=[self.details_box], titles=("Details",),
                                           selected_index=None).add_class("hpo-details-section")
        self.root = w.VBox([
            _wrap([self.header, self.stop_button], justify_content="space-between"),
            self.notices,
            _wrap([self.overall_bar, self.overall_label]),
            _wrap(self.tiles, gap="8px"),
            self.test,
            w.VBox([b.box for b in self.trial_bars] + [self.more]),
            _wrap([self.sort, self.order, self.picker]),
            self.gallery,
            self.details_section,
        ], layout=w.Layout(max_width="100%")).add_class("hpo-dashboard")

    def set_params(self, params: Sequence[str]) -> None:
        """The searched parameters, one gallery column and sort key each (before the first snapshot)."""
        with self._lock:
            self.params = list(params)
            with self._quiet_picker():
                self.sort.options = vm.sort_options(self.params)
                self.sort.value = "score"
            self._gallery_key = None

    def _header_html(self, chip: tuple[str, str]) -> str:
        badge = f" {H.chip_html(*chip)}" if chip[0] else ""
        return f"{_FIT_CSS}<b>hpo-nb</b> · {H.esc(self.title)}{badge}"

    # ------------------------------------------------------------------ renderer

    def __call__(self, snap: Snapshot) -> None:
        """Show ``snap``: only widget values change (safe from the renderer thread)."""
        with self._lock:
            self._snap = snap
            _apply(self._plan(snap))
            self._update_gallery(snap)
            self.diagnostics.update(snap)

    def _plan(self, s: Snapshot) -> list[tuple[w.Widget, dict[str, Any]]]:
        """The value of every live widget for this snapshot (the gallery has its own path)."""
        description, disabled, shown = vm.stop_button(s)
        total = max(1, s.total_trials)
        rows, more = vm.running_rows(s, len(self.trial_bars))
        plan: list[tuple[w.Widget, dict[str, Any]]] = [
            (self.header, {"value": self._header_html(vm.state_chip(s))}),
            (self.stop_button, {"description": description, "disabled": disabled}),
            (self.stop_button.layout, {"display": "flex" if shown else "none"}),
            (self.notices, {"value": H.notices_html(s.notices)}),
            (self.notices.layout, {"display": "block" if s.notices else "none"}),
            (self.overall_bar, {"max": total, "value": min(s.performed, total)}),
            (self.overall_label, {"value": _line(vm.overall_label(s))}),
            *((tile, {"value": H.tile_html(t)}) for tile, t in zip(self.tiles, vm.tiles(s, self.majority_rate, self.metric))),
            (self.more, {"value": more}),
            (self.more.layout, {"display": "block" if more else "none"}),
        ]
        for i, bar in enumerate(self.trial_bars):
            plan += bar.plan(rows[i] if i < len(rows) else None)
        return plan

    def _columns(self, s: Snapshot) -> list[str]:
        return vm.gallery_params(s, self.params)

    def _update_gallery(self, s: Snapshot) -> None:
        key = (self.sort.value, self.order.value, s.finished)
        if key == self._gallery_key:
            return
        self._gallery_key = key
        params = self._columns(s)
        if self.params is None:  # columns found from the trials: offer them as sort keys too
            options = vm.sort_options(params)
            if list(self.sort.options) != options:
                with self._quiet_picker():
                    self.sort.options = options
                    self.sort.value = self.sort.value if self.sort.value in options else "score"
        ordered = vm.sort_finished(s.finished, self.sort.value, self.order.value)
        current = self.picker.value
        if not self._picked_by_user:  # follow the best trial until the user picks one
            best, _ = vm.best_of(s)
            current = best.trial if best else (ordered[0].trial if ordered else None)
        options = [(vm.trial_option(t), t.trial) for t in ordered]
        with self._quiet_picker(), self.picker.hold_sync():
            self.picker.options = options
            self.picker.value = current if any(n == current for _, n in options) else None
        rows = vm.gallery_rows(s, self.sort.value, self.order.value, params)
        _apply([(self.gallery, {"value": H.gallery_html(rows, vm.gallery_columns(params),
                                                       vm.sort_column(self.sort.value), self.order.value)})])
        self._show_details(self.picker.value)

    def _show_details(self, number: int | None) -> None:
        """Show the picked trial in the details section (and in any panel added to ``details_box``)."""
        trial = self._finished(number)
        _apply([(self.details, {"value": H.details_html(trial)}),
                (self.details_section, {"titles": (H.details_title(trial),)})])
        self.diagnostics.show(number)  # unless the user picked another trial in the panel itself

    def _finished(self, number: int | None) -> FinishedTrial | None:
        if self._snap is None or number is None:
            return None
        return next((t for t in self._snap.finished if t.trial == number), None)

    @contextlib.contextmanager
    def _quiet_picker(self) -> Any:
        self._muted = True
        try:
            yield
        finally:
            self._muted = False

    # ------------------------------------------------------------------ user actions

    def _resorted(self, change: dict) -> None:
        if self._muted:
            return
        with self._lock:
            if change["owner"] is self.sort:  # a new column: its natural direction first
                with self._quiet_picker():
                    self.order.value = vm.default_descending(change["new"])
            if self._snap is not None:
                self._gallery_key = None
                self._update_gallery(self._snap)

    def _picked(self, change: dict) -> None:
        if self._muted:
            return
        with self._lock:
            self._picked_by_user = change["new"] is not None
            self._show_details(change["new"])
            self.diagnostics.show(change["new"], force=True)
            if change["new"] is not None:
                self.details_section.selected_index = 0  # a pick is a request to see it

    def stop(self) -> None:
        """What the Stop button does (any thread): ask the search to stop, without waiting."""
        if self._on_stop is not None:
            self._on_stop()

    def _clicked(self, _button: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ display

    def mimebundle(self) -> dict[str, Any]:
        """The widget view plus HTML and text summaries of the latest snapshot."""
        with self._lock:
            snap = self._snap
        line = self._final_test_line() if snap is not None and snap.done else None
        return summary_bundle(self.root.model_id, snap, self.title, line, self.params, self.majority_rate,
                              self.metric)

    def display(self) -> "Dashboard":
        """Display (another view of) the dashboard; call from the cell's thread."""
        self._output.show()
        return self

    def _ipython_display_(self) -> None:
        if not self._output.shown_by_this_cell():  # ``exp.dashboard()`` as a cell's last line: shown
            self.display()

    def _done(self) -> bool:
        with self._lock:
            return self._snap is not None and self._snap.done

    def _final_test_line(self) -> str | None:
        """The test line, also copied into the widget view (cell thread, after the search)."""
        try:
            line = self.evaluation() if self.evaluation else None
        except Exception as exc:  # a summary never fails the cell
            log.warning("no test line for the dashboard: %s", exc)
            line = None
        if line:
            _apply([(self.test, {"value": H.test_html(line)}), (self.test.layout, {"display": "block"})])
        return line

    def close(self) -> None:
        """The search ended (called from its thread after the last snapshot). Widgets stay shown
        with their final values; the static summary refreshes after the current cell."""

    # ------------------------------------------------------------------ factory

    @classmethod
    def for_experiment(cls, exp: "Experiment", attach: bool = False) -> "Dashboard":
        """Build, fill and display a dashboard for ``exp`` from the calling (cell) thread.
        ``attach``: also follow ``exp.hub`` (for ``exp.dashboard()``; at ``exp.start()`` the
        experiment subscribes the dashboard itself)."""
        from ..space import searched

        dash = cls(title=f"{exp.name} · {exp.mode} mode", slots=exp.concurrency,
                   on_stop=lambda: exp.stop(wait=False), params=searched(exp.space))

        def evaluation() -> str | None:
            r = exp.selected_test_report()
            return None if r is None else vm.test_line(r.trial, r.test_accuracy, r.validation_accuracy, r.n_test,
                                                       r.metric, r.validation_value, r.test_balanced_accuracy)

        dash.evaluation = evaluation
        dash.majority_rate = getattr(getattr(exp, "baseline", None), "majority_rate", None)
        dash.metric = getattr(exp, "metric", "accuracy")
        dash.diagnostics.source = exp
        snap = exp.hub.snapshot()
        dash(snap)
        dash.display()
        if attach and exp.running and not snap.done:
            exp.hub.subscribe(dash, max_hz=5.0)
        return dash


def _apply(plan: list[tuple[w.Widget, dict[str, Any]]]) -> None:
    """Set the values that changed, each widget's changes batched into one message (hold_sync)."""
    for widget, values in plan:
        changed = {k: v for k, v in values.items() if getattr(widget, k) != v}
        if changed:
            with widget.hold_sync():
                for key, value in changed.items():
                    setattr(widget, key, value)

