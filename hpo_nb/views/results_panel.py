"""What the no-code app shows once a search has ended: the best architecture in 3D beside its
health metrics, the importance heatmap, Optuna's plots of the study behind two menus, the best
trial's diagnostics and a link that downloads the best model (``.keras``).

Built on the search thread after the last snapshot (``nocode.App``), so it only creates widgets
and sets their values (an ``Output``'s ``outputs`` too: a value change, safe from any thread),
never ``display()``. The HTML pieces are pure functions, testable without a browser.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from .. import health
from ..errors import HpoNbError
from ..values import short_value
from .diagnostics import DiagnosticsPanel, figure_output

MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024  # a data: link holds the file; beyond this, show the path
HEALTH_HELP = health.DESCRIPTIONS
_HEADING = "<h3 style='margin:8px 0 2px'>{}</h3>"


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
    """A display_data output that JupyterLab and Voila render with Plotly's mime renderer (the
    diagnostics panel's ``figure_output``, with the heatmap's text by default)."""
    return figure_output(fig, text)


def architecture_view(best: Any, backend: str) -> Any:
    """The best network in 3D, sized to leave room for its health table beside it."""
    import ipywidgets as w

    from . import arch3d

    if arch3d.choose_backend(backend) == "plotly":
        out = w.Output()
        out.outputs = (plotly_output(arch3d.show_trial(best, "plotly"), "3D architecture"),)
        return out
    return arch3d.view_3d(arch3d.trial_scene(best), title=arch3d.trial_title(best), width=480, height=360)


def study_explorer(exp: Any) -> Any:
    """Optuna's plots of the study (``exp.plot``) behind two compact menus: which view, which target.

    Returns:
        ipywidgets.VBox: the menus and an Output with the chosen figure (or why there is none).
    """
    import ipywidgets as w

    from ..analysis.importance import TARGETS
    from . import optuna_kinds

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
    return w.VBox([w.HTML(_HEADING.format("Explore the study (Optuna's plots)")),
                   w.HBox([kind, target], layout=w.Layout(flex_flow="row wrap", grid_gap="8px")), out]
                  ).add_class("hpo-app-explorer")


def results_panel(exp: Any, best: Any, backend: str) -> tuple[tuple[Any, ...], DiagnosticsPanel]:
    """The results section for a finished search whose best trial is ``best``.

    Args:
        exp: the ``Experiment`` that ran (its study is read, nothing trains).
        best: ``exp.best`` (a ``TrialResult``), read once by the caller.
        backend: the 3D view's backend ("pythreejs" | "plotly" | "auto").

    Returns:
        tuple: the section's widgets in page order, and the diagnostics panel among them (showing
        the best trial; any trial can be picked in it).
    """
    import ipywidgets as w

    complete = int((exp.results["state"] == "complete").sum())
    view = architecture_view(best, backend)
    # A wide heatmap scrolls inside its own box rather than widening the page.
    importance = w.Output(layout=w.Layout(min_height="200px", max_width="100%", overflow="auto hidden")
                          ).add_class("hpo-app-importance")
    min_trials = max(2, min(10, complete))
    importance.outputs = (plotly_output(exp.importance_heatmap(min_trials=min_trials)),)
    note = "" if complete >= 10 else (f"<div style='color:#777'>Only {complete} complete trials: read the "
                                      "heatmap as a demo; 10+ trials give columns worth trusting.</div>")
    explorer = study_explorer(exp)  # draws now, in this thread; then the panel draws on its own
    panel = DiagnosticsPanel(exp, title=f"Diagnostics · trial {best.number}", opened=True)
    panel.update(exp.hub.snapshot())
    panel.show(best.number)
    filename = f"{exp.name}-trial{best.number}.keras"
    children = (
        w.HTML(_HEADING.format(f"Best architecture · trial {best.number}")),
        w.HBox([view, w.HTML(health_html(best)).add_class("hpo-app-health-box")],
               layout=w.Layout(flex_flow="row wrap", align_items="flex-start", grid_gap="16px")),
        w.HTML(_HEADING.format("Which hyperparameters mattered") + note),
        importance,
        explorer,
        w.HTML(_HEADING.format("How the best trial trained")),
        panel.root,
        w.HTML(download_html(best.model_path, filename)).add_class("hpo-app-download"),
    )
    return children, panel
