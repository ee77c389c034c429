"""The no-code app (``hpo_nb.app()``; served as a web page by ``voila notebooks/app.ipynb``).

Not a view: it builds an ``Experiment`` from a form, so it sits above both the core and
``views/`` (like ``cli.py``). Named ``nocode`` rather than ``app`` so that importing it never
replaces the ``hpo_nb.app()`` function with a module attribute of the same name.

A form (dataset, mode, trials, epochs, concurrency, search space, executor), Start and Stop,
the live dashboard, and when the search ends: the best architecture in 3D beside its health
metrics, the importance heatmap and a link that downloads the best model (``.keras``).

Threads: the form and Start/Stop run on the kernel's thread (widget callbacks; the kernel is
idle while a search runs in the background). The dashboard is fed by the experiment's renderer
thread; the results are built on the search thread once it ends (``_Follow.close``), which only
creates widgets and sets widget values, never ``display()``. The pure helpers at the top hold
everything worth testing without a browser.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from . import datasets, health
from .errors import ConfigError, HpoNbError
from .executors.base import names as executor_names
from .values import short_value

MODES = {"accuracy": "simple", "accuracy + health": "health"}
EXECUTORS = tuple(executor_names())
SPACES = ("quick", "full")
# "quick": small networks on half the training data, so a search takes minutes on a laptop CPU.
QUICK_SPACES: dict[str, dict[str, Any]] = {
    "image": {"conv_blocks": [1, 2], "filters": [8, 16], "kernel_size": 3, "dense_layers": [0, 1],
              "dense_units": [32, 64], "batch_size": 64, "learning_rate": (5e-3, 2e-2)},
    "text": {"embedding_dim": [16, 32], "lstm_layers": 1, "lstm_units": [16, 32], "bidirectional": False,
             "dense_layers": 0, "batch_size": 64, "learning_rate": (5e-3, 2e-2)},
}
QUICK_SAMPLE_FRACTION = 0.5
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024  # a data: link holds the file; beyond this, show the path
HEALTH_HELP = health.DESCRIPTIONS


# ---------------------------------------------------------------------------- pure helpers


def dataset_options() -> list[tuple[str, str]]:
    """(label, name) for every registered dataset; the ones that need a download say so."""
    options = []
    for name in datasets.names():
        meta = datasets.info(name)
        suffix = " (downloads)" if meta.needs_network else ""
        options.append((f"{name} · {meta.modality}{suffix}", name))
    return options


def experiment_kwargs(form: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``Experiment`` arguments for a filled-in form. ``defaults`` (from ``app(**options)``)
    fill in what the form does not set. Raises ``ConfigError`` for impossible choices."""
    kwargs = dict(defaults or {})
    mode = MODES.get(form["mode"], form["mode"])
    if form["executor"] not in EXECUTORS:
        raise ConfigError(f"executor must be one of {EXECUTORS}, not {form['executor']!r}.")
    if form["space"] not in SPACES:
        raise ConfigError(f"search space must be one of {SPACES}, not {form['space']!r}.")
    dataset = form["dataset"]
    kwargs.update(dataset=dataset, mode=mode, n_trials=int(form["n_trials"]), max_epochs=int(form["max_epochs"]),
                  concurrency=int(form["concurrency"]), executor=form["executor"])
    if form["space"] == "quick":
        modality = datasets.info(dataset).modality if datasets.is_registered(dataset) else "image"
        kwargs["search_space"] = {**QUICK_SPACES[modality], **dict(kwargs.get("search_space") or {})}
        kwargs.setdefault("sample_fraction", QUICK_SAMPLE_FRACTION)
    if form["executor"] == "runpod":
        runpod = dict(kwargs.get("runpod") or {})
        for key in ("endpoint_id", "api_key", "base_url"):
            value = (form.get(key) or "").strip()
            if value:
                runpod[key] = value
        kwargs["runpod"] = runpod
    kwargs.setdefault("name", study_name(dataset, mode))
    return kwargs


def study_name(dataset: str, mode: str, now: float | None = None) -> str:
    """A fresh study per Start: ``app-<dataset>-<mode>-<yyyymmdd-hhmmss>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"app-{dataset}-{mode}-{stamp}")


def health_html(result: Any) -> str:
    """The best trial's health metrics as a small table with what each one means."""
    values = dict(result.health or {})
    if not values:
        return "<div class='hpo-app-health'><i>no health metrics stored for this trial</i></div>"
    good = health.stored_goodness(values)
    rows = []
    for key in (*health.METRICS, "health_score"):
        if key not in values:
            continue
        g = good.get(key, values[key] if key == "health_score" else None)
        colour = "#2e7d32" if g is not None and g >= 0.75 else "#c62828" if g is not None and g < 0.4 else "#ef6c00"
        rows.append(f"<tr><td style='padding-right:10px'>{key.replace('_', ' ')}</td>"
                    f"<td style='color:{colour};font-weight:bold;padding-right:10px'>{values[key]:.3f}</td>"
                    f"<td style='color:#666'>{html.escape(HEALTH_HELP.get(key, ''))}</td></tr>")
    acc = "–" if result.accuracy is None else f"{result.accuracy:.4f}"
    score = "–" if result.score is None else f"{result.score:.4f}"
    params = ", ".join(f"{k}={short_value(v, exponent=False)}" for k, v in sorted(result.params.items()))
    return (f"<div class='hpo-app-health'><b>Best trial {result.number}</b>: val accuracy {acc} · score {score}"
            f"<table style='margin-top:6px'>{''.join(rows)}</table>"
            f"<div style='color:#555;margin-top:6px;max-width:520px'>{html.escape(params)}</div></div>")


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


def download_html(path: str | Path | None, filename: str) -> str:
    """A link that downloads the model file from the page itself (a ``data:`` URL), so it works
    under Voila, JupyterLab and Binder alike without a file server."""
    if not path or not Path(path).is_file():
        return "<div class='hpo-app-download-missing'><i>the best trial saved no model file</i></div>"
    size = Path(path).stat().st_size
    if size > MAX_DOWNLOAD_BYTES:
        return (f"<div>The best model is {size / 2**20:.0f} MB, too big for an in-page download; "
                f"it is saved at <code>{html.escape(str(path))}</code>.</div>")
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f"<a class='hpo-app-download-link' download='{html.escape(filename)}' "
            f"href='data:application/octet-stream;base64,{data}' "
            "style='display:inline-block;padding:6px 14px;background:#1976d2;color:white;border-radius:4px;"
            f"text-decoration:none'>⬇ Download best model ({html.escape(filename)}, {size / 1024:.0f} KB)</a>")


def plotly_output(fig: Any, text: str = "importance heatmap") -> dict[str, Any]:
    """A display_data output that JupyterLab and Voila render with plotly's mime renderer
    (setting an Output widget's ``outputs`` is a value change: safe from any thread)."""
    spec = json.loads(fig.to_json())
    return {"output_type": "display_data", "metadata": {},
            "data": {"application/vnd.plotly.v1+json": {"data": spec["data"], "layout": spec["layout"],
                                                        "config": {"displaylogo": False}},
                     "text/plain": text}}


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
        mode_label = next((label for label, m in MODES.items() if m == mode or label == mode), None)
        if mode_label is None:
            raise ConfigError(f"mode must be 'simple' or 'health', not {mode!r}.")
        style = {"description_width": "110px"}
        wide = w.Layout(width="340px")
        self.dataset = w.Dropdown(options=dataset_options(), value=dataset, description="Dataset", style=style,
                                  layout=wide).add_class("hpo-app-dataset")
        # Its own label, as wide as the other descriptions: a ToggleButtons description would sit on a
        # line of its own once the buttons do not fit beside it.
        self.mode = w.ToggleButtons(options=list(MODES), value=mode_label, style={"button_width": "130px"},
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

    def _architecture(self, best: Any) -> Any:
        """The best network in 3D, sized to leave room for its health table beside it."""
        from .views import arch3d

        if arch3d.choose_backend(self.backend) == "plotly":
            import ipywidgets as w

            out = w.Output()
            out.outputs = (plotly_output(arch3d.show_trial(best, "plotly"), "3D architecture"),)
            return out
        return arch3d.view_3d(arch3d.trial_scene(best), title=arch3d.trial_title(best), width=480, height=360)

    def _diagnostics(self, exp: Any, number: int) -> tuple[Any, ...]:
        """The best trial's diagnostics panel (any trial can be picked in it)."""
        import ipywidgets as w

        from .views.diagnostics import DiagnosticsPanel

        panel = DiagnosticsPanel(exp, title=f"Diagnostics · trial {number}", opened=True)
        panel.update(exp.hub.snapshot())
        panel.show(number)
        self.diagnostics = panel
        return (w.HTML("<h3 style='margin:8px 0 2px'>How the best trial trained</h3>"), panel.root)

    def _show_results(self, exp: Any) -> None:
        import ipywidgets as w

        try:
            best = exp.best
        except ConfigError:
            name = html.escape(exp.name)
            self._set_status(f"<span class='hpo-app-stopped'>Stopped: <b>{name}</b>, before any trial completed "
                             "(stopped trials are partly trained: see the dashboard).</span>" if self._stop_requested
                             else f"<b>{name}</b> ended without a complete trial (pruned or failed: see the dashboard).")
            return
        complete = int((exp.results["state"] == "complete").sum())
        view = self._architecture(best)
        # A wide heatmap scrolls inside its own box rather than widening the page.
        importance = w.Output(layout=w.Layout(min_height="200px", max_width="100%", overflow="auto hidden")
                              ).add_class("hpo-app-importance")
        min_trials = max(2, min(10, complete))
        importance.outputs = (plotly_output(exp.importance_heatmap(min_trials=min_trials)),)
        note = "" if complete >= 10 else (f"<div style='color:#777'>Only {complete} complete trials: read the "
                                          "heatmap as a demo; 10+ trials give columns worth trusting.</div>")
        filename = f"{exp.name}-trial{best.number}.keras"
        self.results_box.children = (
            w.HTML(f"<h3 style='margin:8px 0 2px'>Best architecture · trial {best.number}</h3>"),
            w.HBox([view, w.HTML(health_html(best)).add_class("hpo-app-health-box")],
                   layout=w.Layout(flex_flow="row wrap", align_items="flex-start", grid_gap="16px")),
            w.HTML("<h3 style='margin:8px 0 2px'>Which hyperparameters mattered</h3>" + note),
            importance,
            study_explorer(exp),
            *self._diagnostics(exp, best.number),
            w.HTML(download_html(best.model_path, filename)).add_class("hpo-app-download"),
        )
        self._set_status(status_html(exp.name, exp.results["state"].tolist(), exp.n_trials, best.number,
                                     best.accuracy, self._stop_requested))


def study_explorer(exp: Any) -> Any:
    """Optuna's plots of the study (``exp.plot``) behind two compact menus: which view, which target.

    Returns:
        ipywidgets.VBox: the menus and an Output with the chosen figure (or why there is none).
    """
    import ipywidgets as w

    from .analysis.importance import TARGETS
    from .views import optuna_kinds

    kinds = [(label, kind) for kind, label in optuna_kinds().items()]
    targets = [("score (the objective)", "score"), *((t.label, t.key) for t in TARGETS)]
    small = w.Layout(width="auto", min_width="170px")
    kind = w.Dropdown(options=kinds, value="history", description="View", layout=small).add_class("hpo-app-plot-kind")
    target = w.Dropdown(options=targets, value="score", description="Target", layout=small
                        ).add_class("hpo-app-plot-target")
    out = w.Output(layout=w.Layout(min_height="200px", max_width="100%", overflow="auto hidden")
                   ).add_class("hpo-app-plot")  # a wide figure scrolls in its box, not the page

    def draw(_change: Any = None) -> None:
        target.disabled = kind.value == "intermediate"  # per-epoch validation accuracy, whatever the target
        try:
            fig = exp.plot(kind.value, target.value)
            out.outputs = (plotly_output(fig, f"{kind.label}: {target.label}"),)
        except HpoNbError as exc:
            out.outputs = ({"output_type": "display_data", "metadata": {},
                            "data": {"text/html": f"<div class='hpo-app-plot-note' style='color:#777'>"
                                                  f"{html.escape(str(exc))}</div>", "text/plain": str(exc)}},)

    kind.observe(draw, names="value")
    target.observe(draw, names="value")
    draw()
    return w.VBox([w.HTML("<h3 style='margin:8px 0 2px'>Explore the study (Optuna's plots)</h3>"),
                   w.HBox([kind, target], layout=w.Layout(flex_flow="row wrap", grid_gap="8px")), out]
                  ).add_class("hpo-app-explorer")


def app(**options: Any) -> App:
    """The no-code app: pick a dataset and a mode, Start, watch, download the best model.
    Display the returned object (the last line of a cell), or serve
    ``voila notebooks/app.ipynb`` for a page without code."""
    return App(**options)
