"""``Experiment.plot_*``: Optuna's plots of the study, for any of hpo-nb's targets.

The data is ``analysis.targets`` (the study seen through one target); the drawing is Optuna's own
``optuna.visualization`` (``views.optuna_plots``), reached through ``results._views()`` like
every drawing ``Experiment`` offers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import optuna

from . import space as spaces
from .errors import ConfigError

if TYPE_CHECKING:
    import plotly.graph_objects

TARGET_DOC = ('"score" (the search\'s objective), "accuracy" (validation), "health_score", a health metric '
              '(``hpo_nb.health.METRICS``) or "duration_s"')


class StudyPlots:
    """Mixed into ``StudyResults``; needs ``study``, ``space``, ``name`` and ``mode``."""

    study: optuna.Study
    space: dict[str, Any]
    name: str
    mode: str

    def plot(self, kind: str, target: str = "score", params: list[str] | None = None,
             epoch_metric: str = "val_accuracy") -> "plotly.graph_objects.Figure":
        """One of Optuna's plots of this study (what optuna-dashboard shows), for one target.

        Args:
            kind: "history", "importance", "parallel", "slice", "contour" or "intermediate".
            target: what to plot: "score" (the search's objective), "accuracy" (validation),
                "health_score", a health metric (``hpo_nb.health.METRICS``) or "duration_s".
            params: hyperparameters to show; None: the searched ones (fixed ones say nothing).
            epoch_metric: for "intermediate": the Keras history key per epoch ("val_accuracy",
                "val_loss", "accuracy", "loss").

        Returns:
            plotly.graph_objects.Figure: Optuna's figure (survives static HTML export). What
            Optuna would log or warn about (a parameter with one value so far leaves its contour
            panels empty, ...) is said in the title instead. "importance" follows the rule of
            ``importance`` and ``importance_heatmap``: with too few complete trials (fewer than
            10), a constant target or no signal, the figure has no bars and says why.

        Raises:
            ConfigError: an unknown kind, target or parameter, a contour of fewer than two
                parameters, or no complete trial has a value for the target yet.
        """
        from .analysis.targets import target_by_key, target_study
        from .results import _views

        kinds = _views().optuna_kinds()
        if kind not in kinds:
            raise ConfigError(f"unknown plot {kind!r}; choose one of {', '.join(kinds)}.")
        chosen = target_by_key(target, "val accuracy" if self.mode == "simple" else "score (accuracy + health)")
        view = target_study(self.study, chosen, epoch_metric)
        if view.n_trials == 0:
            raise ConfigError(f"no complete trial has a {chosen.label} yet; run() the experiment first.")
        if kind == "intermediate" and view.n_curves == 0:
            raise ConfigError(f"no trial stored a per-epoch {view.epoch_metric} history yet.")
        searched = spaces.searched(self.space) if self.space else None
        if params is not None:
            unknown = [p for p in params if searched is not None and p not in self.space]
            if unknown:
                raise ConfigError(f"unknown parameter(s) {unknown}; the space has {', '.join(self.space)}.")
        shown = params if params is not None else searched
        if kind == "contour" and shown is not None and len(shown) < 2:
            raise ConfigError(f"a contour plot needs two or more parameters, not {shown}.")
        title = f"{self.name}: {kinds[kind]}" + ("" if kind == "intermediate" else f" · {chosen.label}")
        empty = self._importance_note(chosen, shown) if kind == "importance" else None
        return _views().optuna_figure(kind, view, shown, title, empty)

    def _importance_note(self, chosen: Any, shown: list[str] | None) -> str | None:
        """Why the importance of ``chosen`` would be noise (too few trials, constant, no signal), by
        the rule of ``exp.importance`` and its heatmap, so the two views never disagree; else None."""
        from .analysis.importance import importance_table

        wanted = shown if shown is not None else sorted({p for t in self.study.get_trials(deepcopy=False)
                                                          for p in t.distributions})
        if not wanted:
            return "no hyperparameter is searched (every one is fixed)"
        return importance_table(self.study, wanted, targets=(chosen,)).notes.get(chosen.key)

    def plot_optimization_history(self, target: str = "score") -> "plotly.graph_objects.Figure":
        """Optuna's optimization history (each trial's value and the best so far) for a target.

        Args:
            target: as for ``plot``.

        Returns:
            plotly.graph_objects.Figure: ``optuna.visualization.plot_optimization_history``.

        Raises:
            ConfigError: as for ``plot``.
        """
        return self.plot("history", target)

    def plot_param_importances(self, target: str = "score") -> "plotly.graph_objects.Figure":
        """Optuna's parameter-importance bars (PED-ANOVA, Optuna's default) for a target.

        Args:
            target: as for ``plot``.

        Returns:
            plotly.graph_objects.Figure: ``optuna.visualization.plot_param_importances``.

        Raises:
            ConfigError: as for ``plot``.
        """
        return self.plot("importance", target)

    def plot_parallel_coordinate(self, target: str = "score",
                                 params: list[str] | None = None) -> "plotly.graph_objects.Figure":
        """Optuna's parallel-coordinates plot: every trial as a line through its parameters.

        Args:
            target: as for ``plot``.
            params: as for ``plot``.

        Returns:
            plotly.graph_objects.Figure: ``optuna.visualization.plot_parallel_coordinate``.

        Raises:
            ConfigError: as for ``plot``.
        """
        return self.plot("parallel", target, params)

    def plot_slice(self, target: str = "score", params: list[str] | None = None) -> "plotly.graph_objects.Figure":
        """Optuna's slice plot: the target against each parameter.

        Args:
            target: as for ``plot``.
            params: as for ``plot``.

        Returns:
            plotly.graph_objects.Figure: ``optuna.visualization.plot_slice``.

        Raises:
            ConfigError: as for ``plot``.
        """
        return self.plot("slice", target, params)

    def plot_contour(self, target: str = "score", params: list[str] | None = None) -> "plotly.graph_objects.Figure":
        """Optuna's contour plot: the target over pairs of parameters.

        Args:
            target: as for ``plot``.
            params: as for ``plot`` (two or more).

        Returns:
            plotly.graph_objects.Figure: ``optuna.visualization.plot_contour``.

        Raises:
            ConfigError: as for ``plot``.
        """
        return self.plot("contour", target, params)

    def plot_intermediate_values(self, epoch_metric: str = "val_accuracy") -> "plotly.graph_objects.Figure":
        """Optuna's intermediate-values plot: each trial's curve, one point per epoch.

        Args:
            epoch_metric: "val_accuracy", "val_loss", "accuracy" or "loss" (0-1 or nats).

        Returns:
            plotly.graph_objects.Figure: ``optuna.visualization.plot_intermediate_values``.

        Raises:
            ConfigError: as for ``plot``.
        """
        return self.plot("intermediate", "score", epoch_metric=epoch_metric)
