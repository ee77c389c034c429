"""Optuna's own plots (``optuna.visualization``, Plotly) of an hpo-nb study, for any target.

Nothing is redrawn here: each view is Optuna's function on ``analysis.targets.target_study``'s
copy, titled with the study and target, and made to survive static HTML export
(``exportable``). The same figures optuna-dashboard shows, in the notebook and the app.

Optuna logs and warns while drawing ("Param dropout unique value length is less than 2.",
ExperimentalWarning, ...), which a notebook shows as a red block beside a normal figure. Inside
the call, Optuna's experimental-feature warnings are dropped (we chose those features), and what
Optuna's plotting modules log or warn is collected and said in the figure's title, in words about
the study; other warnings pass through unchanged.
"""

from __future__ import annotations

import logging
import re
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import optuna
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


def optuna_figure(kind: str, view: TargetStudy, params: list[str] | None, title: str,
                  empty: str | None = None) -> ExportableFigure:
    """Optuna's ``kind`` plot of a target study.

    Args:
        kind: a key of ``KINDS``.
        view: from ``analysis.targets.target_study``.
        params: the hyperparameters to show (None: all in the study).
        title: the figure title.
        empty: why this view has nothing honest to show (e.g. importance with too few trials):
            then no Optuna plot is drawn, and the figure says so.

    Returns:
        ExportableFigure: Optuna's figure, titled; what Optuna logged or warned, as a subtitle.
    """
    if empty is not None:
        return exportable(_nothing_to_show(title, empty))
    draw, _, named, with_params = KINDS[kind]
    kwargs: dict[str, Any] = {}
    if named:
        kwargs["target_name"] = view.label
    if with_params and params is not None:
        kwargs["params"] = params
    with _optuna_said() as said:
        fig = draw(view.study, **kwargs)
    notes = _in_words(said, view.n_trials)
    fig.update_layout(title=title + "".join(f"<br><sup>{n}</sup>" for n in notes))
    if notes:  # room for the subtitle lines
        fig.update_layout(margin_t=max(100, 60 + 20 * len(notes)))
    if kind == "intermediate":
        fig.update_layout(yaxis_title=view.epoch_metric, xaxis_title="epoch", xaxis_dtick=1)  # whole epochs
    return exportable(fig)


_PLOTTING = "optuna.visualization"


class _Collect(logging.Filter):
    """Keeps the messages of Optuna's plotting loggers and drops the records (no stderr)."""

    def __init__(self, into: list[str]) -> None:
        super().__init__()
        self.into = into

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(_PLOTTING) and record.levelno < logging.ERROR:
            self.into.append(record.getMessage())
            return False
        return True


@contextmanager
def _optuna_said() -> Iterator[list[str]]:
    """Collect, instead of printing, what Optuna's plotting code logs (below ERROR) and warns
    while the block runs; drop its ExperimentalWarning; re-raise any other warning as it was."""
    said: list[str] = []
    collect = _Collect(said)
    # Optuna's loggers hand their records to the handler on the "optuna" logger: a handler filter
    # there sees the plotting modules' records (a logger filter would see only its own logger's).
    handlers = logging.getLogger("optuna").handlers
    for h in handlers:
        h.addFilter(collect)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield said
    finally:
        for h in handlers:
            h.removeFilter(collect)
    for w in caught:
        if issubclass(w.category, optuna.exceptions.ExperimentalWarning):
            continue
        if _PLOTTING.replace(".", "/") in w.filename.replace("\\", "/") or w.category.__module__.startswith("optuna"):
            said.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


_ONE_VALUE = re.compile(r"Param (\S+) unique value length is less than 2\.")
_APART = re.compile(r"because `(\S+)` and `(\S+)` cannot co-exist")


def _in_words(messages: list[str], n_trials: int) -> list[str]:
    """Optuna's plotting messages as sentences about this study, one per kind, in order."""
    single: list[str] = []
    notes: list[str] = []
    for message in messages:
        one, apart = _ONE_VALUE.search(message), _APART.search(message)
        if one:
            single.append(one.group(1))
        elif apart:
            notes.append(f"no trial has both {apart.group(1)} and {apart.group(2)}: no contour for that pair")
        else:
            notes.append(message)
    if single:
        names = list(dict.fromkeys(single))
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        trials = f"{n_trials} complete trial{'s' if n_trials != 1 else ''}"
        notes.insert(0, f"{listed} {'has' if len(names) == 1 else 'have'} taken a single value in the {trials} "
                        f"so far: no contour across {'it' if len(names) == 1 else 'them'} yet")
    return list(dict.fromkeys(notes))


def _nothing_to_show(title: str, why: str) -> Any:
    """An empty figure that says why (the same words as the importance heatmap's empty column)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(
        title=dict(text=f"{title}<br><sup>not enough signal: {why}</sup>"),
        xaxis=dict(visible=False), yaxis=dict(visible=False), height=320, plot_bgcolor="white",
        annotations=[dict(text=f"Not enough signal to rank the parameters.<br>{why}", showarrow=False,
                          xref="paper", yref="paper", x=0.5, y=0.5, font=dict(size=14))],
    )
    return fig
