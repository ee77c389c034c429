"""Renderers and drawings: everything that shows something. Views import the core; the core
never imports views (tests/test_layering.py), except ``Experiment``'s drawing conveniences,
which reach here through one documented function (``hpo_nb.results._views``).

Submodules load lazily, so importing this package costs nothing: ``dashboard`` and ``arch3d``
import ipywidgets (and pythreejs), ``console`` imports rich, ``importance`` / ``history`` /
``arch3d`` draw with Plotly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ..experiment import Experiment
    from ..progress import Renderer, Snapshot


def ipython() -> Any:
    """The running IPython shell, or None (plain Python, or IPython not installed)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def in_notebook() -> bool:
    """True inside a live Jupyter kernel (JupyterLab, Notebook, Voila), where widgets render.
    The one such check: progress renderers and the 3D backend both ask it."""
    shell = ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def renderer_for(exp: "Experiment", choice: "str | Callable[[Snapshot], None]") -> "Renderer | None":
    """The renderer for a search, from ``Experiment(progress=...)``: a callable is used as is;
    "none" -> None; "notebook" (or "auto" in a Jupyter kernel) -> the live dashboard, built and
    displayed now from the calling (cell) thread; "console" (or "auto" elsewhere) -> rich bars."""
    if callable(choice):
        return choice
    if choice == "none":
        return None
    if choice == "notebook" or (choice == "auto" and in_notebook()):
        from .dashboard import Dashboard

        return Dashboard.for_experiment(exp)
    from .console import ConsoleRenderer

    return ConsoleRenderer()


# -------------------------------------------------------------- drawing a study's results
# What Experiment's drawing conveniences call (through hpo_nb.results._views).


def dashboard_for(exp: "Experiment", attach: bool = False) -> "Renderer":
    """Build, fill and display the live dashboard for ``exp`` (``exp.dashboard()``)."""
    from .dashboard import Dashboard

    return Dashboard.for_experiment(exp, attach=attach)


def importance_heatmap(table: Any) -> Any:
    """The Plotly heatmap of an ``analysis.importance.ImportanceTable``."""
    from .exportable import exportable
    from .importance import heatmap

    return exportable(heatmap(table))


def history_figure(frame: Any, objective: str, title: str) -> Any:
    """The Plotly optimization-history figure of an ``analysis.history.history_frame``."""
    from .exportable import exportable
    from .history import history_figure as draw

    return exportable(draw(frame, objective, title))


def optuna_kinds() -> dict[str, str]:
    """Optuna's plots ``optuna_figure`` draws: kind -> menu label."""
    from .optuna_plots import KINDS

    return {kind: entry[1] for kind, entry in KINDS.items()}


def optuna_figure(kind: str, view: Any, params: Any, title: str, empty: str | None = None) -> Any:
    """Optuna's ``kind`` plot of an ``analysis.targets.TargetStudy`` (``empty``: why there is none)."""
    from .optuna_plots import optuna_figure as draw

    return draw(kind, view, params, title, empty)


def show_trial(result: Any, backend: str = "auto") -> Any:
    """A trial's network in 3D (pythreejs widget or Plotly figure)."""
    from .arch3d import show_trial as show

    return _exportable_if_plotly(show(result, backend))


def show_pair(a: Any, b: Any, backend: str = "auto") -> Any:
    """Two trials' networks side by side in 3D, at the same scale."""
    from .arch3d import show_pair as show

    return _exportable_if_plotly(show(a, b, backend))


def _exportable_if_plotly(view: Any) -> Any:
    """Plotly figures get a static-HTML representation (``exportable``); widgets stay as they are."""
    import plotly.graph_objects as go

    from .exportable import exportable

    return exportable(view) if isinstance(view, go.Figure) else view


def diagnostic_plot(kind: str, data: Any, title: str) -> Any:
    """A per-trial diagnostics figure (``views.diagnostic_plots.<kind>``: ``learning_curves``,
    ``confusion_matrix``, ``gradient_flow``, ``weights``, ``activations``)."""
    from . import diagnostic_plots

    return _exportable_if_plotly(getattr(diagnostic_plots, kind)(data, title))
