"""The no-code app (``hpo_nb.app()``; served as a web page by ``voila notebooks/app.ipynb``).

Not a view: it builds an ``Experiment`` from a form, so it sits above both the core and
``views/`` (like ``cli.py``). Named ``nocode`` rather than ``app`` so that importing it never
replaces the ``hpo_nb.app()`` function with a module attribute of the same name.

The page: a form (dataset, mode, trials, epochs, concurrency, search space, executor), Start and
Stop, the live dashboard, and when the search ends the results section. Its parts live apart:
what the form offers and the ``Experiment`` arguments it gives, checked, in ``nocode_form.py``
(pure data); the results section (3D architecture, health, importance, Optuna's plots,
diagnostics, model download) in ``views/results_panel.py``. Their public names are re-exported
here, where they always were.

Threads: the form and Start/Stop run on the kernel's thread (widget callbacks; the kernel is
idle while a search runs in the background). The dashboard is fed by the experiment's renderer
thread; the results are built on the search thread once it ends (``_Follow.close``), which only
creates widgets and sets widget values, never ``display()``.
"""

from __future__ import annotations

import html
import threading
from typing import Any

from .errors import ConfigError, HpoNbError
from .nocode_form import (EXECUTORS, MODES, QUICK_SAMPLE_FRACTION, QUICK_SPACES, SPACES, dataset_options,
                          experiment_kwargs, mode_label, study_name)
from .views.results_panel import (HEALTH_HELP, MAX_DOWNLOAD_BYTES, download_html, health_html, plotly_output,
                                  results_panel, study_explorer)

__all__ = ["App", "app", "status_html", "study_explorer", "experiment_kwargs", "study_name", "dataset_options",
           "health_html", "download_html", "plotly_output", "MODES", "EXECUTORS", "SPACES", "QUICK_SPACES",
           "QUICK_SAMPLE_FRACTION", "MAX_DOWNLOAD_BYTES", "HEALTH_HELP"]


def status_html(name: str, states: list[str], n_trials: int, best: int, accuracy: float | None,
                stopped: bool) -> str:
    """The status line once the search ended: 'Done: …' or 'Stopped: …', with what counted.
    Stopped trials are named apart: partly trained, not counted toward the budget, never the best."""
    counted = sum(s in ("complete", "pruned", "failed") for s in states)
    complete = states.count("complete")
    partly = states.count("stopped")
    acc = "–" if accuracy is None else f"{accuracy:.4f}"
    parts = f"{counted} of {n_trials} trials done ({complete} complete"
    parts += f"; {partly} stopped, partly trained and not counted)" if partly else ")"
    if stopped:
        return (f"<span class='hpo-app-stopped'>Stopped: <b>{html.escape(name)}</b>, {parts}; "
                f"best complete trial is {best} (val accuracy {acc}).</span>")
    return (f"<span class='hpo-app-done'>Done: <b>{html.escape(name)}</b>, {parts}; best is trial {best} "
            f"(val accuracy {acc}).</span>")


# ---------------------------------------------------------------------------- widgets


class _Follow:
    """The experiment's renderer: feeds the dashboard; ``close`` (search thread, after the last
    snapshot) shows the results."""

    def __init__(self, app: "App", dashboard: Any) -> None:
        self.app = app
        self.dashboard = dashboard

    def __call__(self, snap: Any) -> None:
        self.dashboard(snap)

    def close(self) -> None:
        self.app._finished()


class App:
    """The no-code app. ``App(**options)`` builds it; display it (or put ``app.root`` in a
    layout). ``options`` preset the form (dataset, mode, n_trials, max_epochs, concurrency,
    executor, space) and pass anything else to ``Experiment`` (runs_dir, seed, search_space…)."""

    def __init__(self, dataset: str = "digits", mode: str = "health", n_trials: int = 10, max_epochs: int = 5,
                 concurrency: int = 1, executor: str = "local", space: str = "quick", backend: str = "pythreejs",
                 header: bool = True, **experiment_options: Any) -> None:
        import ipywidgets as w

        self.defaults = experiment_options
        self.backend = backend
        self.exp: Any = None
        self.dashboard: Any = None
        self._lock = threading.Lock()
        self._stop_requested = False
        label = mode_label(mode)  # ConfigError for an unknown mode, before any widget exists
        style = {"description_width": "110px"}
        wide = w.Layout(width="340px")
        self.dataset = w.Dropdown(options=dataset_options(), value=dataset, description="Dataset", style=style,
                                  layout=wide).add_class("hpo-app-dataset")
        # Its own label, as wide as the other descriptions: a ToggleButtons description would sit on a
        # line of its own once the buttons do not fit beside it.
        self.mode = w.ToggleButtons(options=list(MODES), value=label, style={"button_width": "130px"},
                                    layout=w.Layout(width="auto")).add_class("hpo-app-mode")
        mode_row = w.HBox([w.HTML("<div style='width:110px;text-align:right;padding-right:8px;box-sizing:border-box;"
                                  "color:var(--jp-widgets-label-color, inherit)'>Optimize for</div>",
                                  layout=w.Layout(width="118px", flex="0 0 118px")).add_class("hpo-app-mode-label"),
                           self.mode], layout=w.Layout(align_items="center", flex_flow="row nowrap"))
        self.n_trials = w.BoundedIntText(value=n_trials, min=1, max=1000, description="Trials", style=style,
                                         layout=wide).add_class("hpo-app-trials")
        self.max_epochs = w.BoundedIntText(value=max_epochs, min=1, max=500, description="Max epochs", style=style,
                                           layout=wide).add_class("hpo-app-epochs")
        self.concurrency = w.BoundedIntText(value=concurrency, min=1, max=64, description="At once", style=style,
                                            layout=wide).add_class("hpo-app-concurrency")
        self.space = w.Dropdown(options=[("quick (small nets, half the data)", "quick"),
                                         ("full (default search space)", "full")],
                                value=space, description="Search space", style=style,
                                layout=wide).add_class("hpo-app-space")
        self.executor = w.Dropdown(options=list(EXECUTORS), value=executor, description="Run trials on",
                                   style=style, layout=wide).add_class("hpo-app-executor")
        self.endpoint_id = w.Text(description="Endpoint id", placeholder="RUNPOD_ENDPOINT_ID", style=style,
                                  layout=wide)
        self.api_key = w.Password(description="API key", placeholder="RUNPOD_API_KEY", style=style, layout=wide)
        self.base_url = w.Text(description="Base URL", placeholder="default: RunPod's API (…/v2)", style=style,
                               layout=wide)
        self.runpod_box = w.VBox([w.HTML("<span style='color:var(--jp-ui-font-color2, #555)'>RunPod serverless endpoint (empty fields: "
                                         "the RUNPOD_* environment variables)</span>"),
                                  self.endpoint_id, self.api_key, self.base_url],
                                 layout=w.Layout(display="flex" if executor == "runpod" else "none"))
        self.executor.observe(self._executor_changed, names="value")
        self.start_button = w.Button(description="Start", icon="play", button_style="success").add_class("hpo-app-start")
        # Red only while it can act: a disabled red button reads as an error once the search is over.
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True).add_class("hpo-app-stop")
        self.start_button.on_click(self.start)
        self.stop_button.on_click(lambda _b: self.stop())
        self.status = w.HTML("Pick a dataset and press <b>Start</b>.").add_class("hpo-app-status")
        self.dashboard_box = w.VBox().add_class("hpo-app-dashboard")
        self.results_box = w.VBox().add_class("hpo-app-results")
        form = w.HBox([w.VBox([self.dataset, mode_row, self.space, self.executor, self.runpod_box]),
                       w.VBox([self.n_trials, self.max_epochs, self.concurrency])],
                      layout=w.Layout(flex_flow="row wrap", grid_gap="0 16px"))
        intro = ("<div style='color:var(--jp-ui-font-color2, #555)'>Bayesian search (Optuna TPE) over Keras CNNs "
                 "(images) or LSTMs (text); <i>accuracy + health</i> also rewards sound training (no dead units, "
                 "no overfitting).</div>")
        title = "<h2 style='margin:4px 0'>hpo-nb · hyperparameter search</h2>" + intro if header else intro
        self.root = w.VBox([
            w.HTML(title),
            form,
            w.HBox([self.start_button, self.stop_button, self.status],
                   layout=w.Layout(align_items="center", flex_flow="row wrap", grid_gap="4px 8px")),
            self.dashboard_box,
            self.results_box,
        ]).add_class("hpo-app")

    # ------------------------------------------------------------------ display

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.root._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ actions

    def form(self) -> dict[str, Any]:
        return {"dataset": self.dataset.value, "mode": self.mode.value, "n_trials": self.n_trials.value,
                "max_epochs": self.max_epochs.value, "concurrency": self.concurrency.value,
                "space": self.space.value, "executor": self.executor.value, "endpoint_id": self.endpoint_id.value,
                "api_key": self.api_key.value, "base_url": self.base_url.value}

    def start(self, _button: Any = None) -> None:
        """Build an experiment from the form and start it in the background."""
        from .experiment import Experiment
        from .views.dashboard import Dashboard

        with self._lock:
            if self.exp is not None and self.exp.running:
                return
            self._set_status("Loading the dataset and opening the study …")
            self.start_button.disabled = True
            try:
                kwargs = experiment_kwargs(self.form(), self.defaults)
                dashboard = Dashboard(title=f"{kwargs['name']} · {kwargs['mode']} mode",
                                      slots=kwargs["concurrency"], on_stop=self.stop)
                dashboard.stop_button.layout.display = "none"  # the app's own Stop button does this
                exp = Experiment(**kwargs, progress=_Follow(self, dashboard))
                dashboard.diagnostics.source = exp
            except HpoNbError as exc:
                self._set_status(f"<span style='color:#c62828'>Cannot start: {html.escape(str(exc))}</span>")
                self.start_button.disabled = False
                return
            from .space import searched

            dashboard.set_params(searched(exp.space))
            self.exp, self.dashboard = exp, dashboard
            self._stop_requested = False
            self.results_box.children = ()
            self.dashboard_box.children = (dashboard.root,)
            self.stop_button.disabled, self.stop_button.button_style = False, "danger"
            self._set_status(f"Running <b>{html.escape(exp.name)}</b>: {exp.n_trials} trials on "
                             f"{html.escape(exp.dataset.name)} …")
            exp.start()

    def stop(self) -> None:
        """Stop the search: no new trials; running ones end within one batch."""
        exp = self.exp
        if exp is not None and exp.running:
            self._stop_requested = True
            self.stop_button.disabled, self.stop_button.button_style = True, ""
            self._set_status("Stopping: running trials end within one batch …")
            exp.stop(wait=False)

    def _executor_changed(self, change: dict[str, Any]) -> None:
        self.runpod_box.layout.display = "flex" if change["new"] == "runpod" else "none"

    def _set_status(self, text: str) -> None:
        self.status.value = text

    # ------------------------------------------------------------------ results (search thread)

    def _finished(self) -> None:
        exp = self.exp
        try:
            self._show_results(exp)
        except Exception as exc:  # shown, never raised into the search thread
            self._set_status(f"<span style='color:#c62828'>Finished, but the results could not be shown: "
                             f"{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</span>")
        finally:
            self.stop_button.disabled, self.stop_button.button_style = True, ""
            self.start_button.disabled = False

    def _show_results(self, exp: Any) -> None:
        try:
            best = exp.best
        except ConfigError:
            name = html.escape(exp.name)
            self._set_status(f"<span class='hpo-app-stopped'>Stopped: <b>{name}</b>, before any trial completed "
                             "(stopped trials are partly trained: see the dashboard).</span>" if self._stop_requested
                             else f"<b>{name}</b> ended without a complete trial (pruned or failed: see the dashboard).")
            return
        children, self.diagnostics = results_panel(exp, best, self.backend)
        self.results_box.children = children
        self._set_status(status_html(exp.name, exp.results["state"].tolist(), exp.n_trials, best.number,
                                     best.accuracy, self._stop_requested))


def app(**options: Any) -> App:
    """The no-code app: pick a dataset and a mode, Start, watch, download the best model.
    Display the returned object (the last line of a cell), or serve
    ``voila notebooks/app.ipynb`` for a page without code."""
    return App(**options)
