"""Optuna's own plots (``optuna.visualization``, Plotly) of an hpo-nb study, for any target.

Nothing is redrawn here: each view is Optuna's function on ``analysis.targets.target_study``'s
copy, titled with the study and target, and made to survive static HTML export
(``exportable``). The same figures optuna-dashboard shows, in the notebook and the app.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import optuna.visualization as ov

from ..analysis.targets import TargetStudy
from .exportable import ExportableFigure, exportable

# kind -> (Optuna's function, label for menus, takes a target name, takes params)
KINDS: dict[str, tuple[Callable[..., Any], str, bool, bool]] = {
    "history": (ov.plot_optimization_history, "optimization history", True, False),
    "importance": (ov.plot_param_importances, "parameter importance", True, True),
    "parallel": (ov.plot_parallel_coordinate, "parallel coordinates", True, True),
    "slice": (ov.plot_slice, "slice", True, True),
    "contour": (ov.plot_contour, "contour", True, True),
    "intermediate": (ov.plot_intermediate_values, "intermediate values (per epoch)", False, False),
}


def optuna_figure(kind: str, view: TargetStudy, params: list[str] | None, title: str) -> ExportableFigure:
    """Optuna's ``kind`` plot of a target study.

    Args:
        kind: a key of ``KINDS``.
        view: from ``analysis.targets.target_study``.
        params: the hyperparameters to show (None: all in the study).
        title: the figure title.

    Returns:
        ExportableFigure: Optuna's figure, titled.
    """
    draw, _, named, with_params = KINDS[kind]
    kwargs: dict[str, Any] = {}
    if named:
        kwargs["target_name"] = view.label
    if with_params and params is not None:
        kwargs["params"] = params
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-feature and few-trials warnings: the figure says enough
        fig = draw(view.study, **kwargs)
    fig.update_layout(title=title)
    if kind == "intermediate":
        fig.update_layout(yaxis_title=view.epoch_metric, xaxis_title="epoch", xaxis_dtick=1)  # whole epochs
    return exportable(fig)
