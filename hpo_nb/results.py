"""Reading a study back: ``Experiment``'s results, analysis and drawings, as a base class.

Everything here reads the study's stored trials (so it covers resumed studies and trials of
other processes sharing the study) and never changes them. The data comes from ``records``
and ``analysis/``; drawings come from ``views/`` through ``_views()``, the one place the core
reaches into views (see its docstring; tests/test_layering.py checks it stays the only one).
"""

from __future__ import annotations

import logging
import numbers
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from . import datasets, records, space as spaces, tf_stderr
from .baseline import all_failed, not_beaten
from .errors import ConfigError
from .study_plots import StudyPlots

log = logging.getLogger("hpo_nb")

if TYPE_CHECKING:
    import ipywidgets
    import keras
    import pandas
    import plotly.graph_objects

    from .analysis.importance import ImportanceTable


class StudyResults(StudyPlots):
    """Results of a study, for ``Experiment`` (which sets ``study``, ``space``, ``name`` and
    ``mode``); Optuna's plots of it come from ``StudyPlots`` (``plot_*``)."""

    study: optuna.Study
    space: dict[str, Any]
    name: str
    mode: str

    # ------------------------------------------------------------------ results

    @property
    def trials(self) -> list[records.TrialResult]:
        """Every trial of the study, in order (from storage: resumed and shared trials too)."""
        trials = self._stored_trials()
        died = records.died_errors(trials)
        return [records.TrialResult.from_trial(t, died) for t in trials]

    @property
    def results(self) -> "pandas.DataFrame":
        """One row per trial, from storage (includes resumed and shared trials): ``number``,
        ``state`` (complete | pruned | stopped | failed | running), each hyperparameter,
        ``accuracy`` (validation, 0-1), ``score``, each health metric and ``health_score``
        (0-1), ``duration_s`` (seconds), ``epochs_run``, ``param_count``, ``replicas``,
        ``devices``, ``executor``, ``model_path``, ``error`` (plus ``cost_usd``, ``delay_s``,
        ``execution_s``, ``worker`` for RunPod trials), ``resumed_from_epoch`` (epochs a retried
        trial restored from its dead process's checkpoint; 0: trained from the start), and
        ``test_accuracy`` for trials that
        ``evaluate()`` scored on the test split. Beside ``accuracy``: ``balanced_accuracy`` (with
        ``metric="balanced_accuracy"``) and ``majority_rate``, the validation accuracy of always
        answering the most common class (the same on every row: what a trial must beat; also in
        ``.attrs["majority_rate"]``)."""
        frame = records.results_frame(self._stored_trials(), list(self.space), records.stored_evaluations(self.study))
        base = getattr(self, "baseline", None)
        if base is not None:
            at = list(frame.columns).index("accuracy") + 1
            if "balanced_accuracy" in frame.columns:
                frame.insert(at, "balanced_accuracy", frame.pop("balanced_accuracy"))
                at += 1
            frame.insert(at, "majority_rate", base.majority_rate)
            frame.attrs["majority_rate"] = base.majority_rate
            frame.attrs["majority_class"] = base.majority_class
        return frame

    @property
    def best(self) -> records.TrialResult:
        """The complete trial with the highest score (``score`` is accuracy in simple mode).

        Raises:
            ConfigError: no trial has completed yet; after a search where every trial failed, the
                message says so and quotes the first error.
        """
        trials = self._stored_trials()
        complete = [t for t in trials if records.state_of(t) == "complete" and t.value is not None]
        if not complete:
            failed = self._failed_errors(trials)
            if failed and all(records.state_of(t) in ("failed", "waiting") for t in trials):
                raise ConfigError(f"{all_failed(failed)}. Fix that and run() again (results['error'] has every "
                                  "trial's error; run.log the tracebacks).")
            raise ConfigError(_none_complete(trials)
                              + (f" ({len(failed)} failed so far; the first error: {failed[0][1]})" if failed else ""))
        return records.TrialResult.from_trial(max(complete, key=lambda t: t.value))

    def trial(self, number: int | None = None) -> records.TrialResult:
        """A trial by number.

        Args:
            number: the trial number (``results["number"]``); None: the best trial.

        Returns:
            TrialResult: its params, metrics, health, history and architecture.

        Raises:
            ConfigError: ``number`` is not an int (a digit string such as "3" is taken), no such
                trial in this study, or (None) none completed.
        """
        if number is None:
            return self.best
        number = _trial_number(number)
        for t in self._stored_trials():
            if t.number == number:
                return records.TrialResult.from_trial(t)
        raise ConfigError(f"no trial number {number} in study {self.name!r}.")

    def best_model(self, trial: int | None = None, raw_inputs: bool = False) -> "keras.Model":
        """The saved Keras model of the best (or a given) trial.

        Args:
            trial: a trial number; None: the best trial.
            raw_inputs: False: the network as the search trained it, taking the arrays of
                ``exp.splits()`` (images float32 in [0, 1], shape (n, h, w, c); text int32 token
                ids, shape (n, sequence_length)). True: the model as saved in ``model_path``, with
                the dataset's preprocessing inside: images take raw pixel values (e.g. uint8
                0..255), raw text takes a string tensor of shape (n,) (a numpy object array or
                ``tf.constant``; ``model.predict`` refuses a Python list).

        Returns:
            keras.Model: compiled (sparse categorical cross-entropy, accuracy).

        Raises:
            ConfigError: no trial has completed, or the trial has no saved model here.
        """
        import keras

        result = self.trial(trial)
        if not result.model_path or not Path(result.model_path).exists():
            hint = "; results lists the complete trials" if trial is not None else ""
            raise ConfigError(f"{records.no_model_reason(result)}{hint}.")
        from .models import silence_mask_drop_warning

        silence_mask_drop_warning()  # a fresh kernel may load a max-pooling text model before building one
        model = keras.models.load_model(result.model_path)
        tf_stderr.settle_onednn_notice()  # a text model's first predict would print it as an "E" line
        network = datasets.network_of(model)
        if raw_inputs:
            if network is model:  # saved before models carried their preprocessing
                model = self.dataset.with_preprocessing(model, self.validation_fraction, self.seed,
                                                        self.sample_fraction, self.test_fraction)
            model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            return model
        if network is not model:
            from .models import compile_model

            compile_model(network, result.params)
        return network


    # ------------------------------------------------------------------ analysis (data here, drawing in views/)

    def importance(self, evaluator: str = "ped-anova", min_trials: int = 10) -> "pandas.DataFrame":
        """Which hyperparameters mattered, for each target.

        Args:
            evaluator: "ped-anova" (Optuna's default, fast) or "fanova" (40-70x slower).
            min_trials: complete trials a target needs before its column is computed, >= 2.

        Returns:
            pandas.DataFrame: searched hyperparameters x targets (val accuracy, health score,
            each health metric, duration); each column normalized to sum 1, NaN where not
            computed. ``.attrs`` holds the raw values and, for empty columns, why (too few
            trials, constant, no signal); when every column is empty, ``.attrs["reason"]`` says
            why (the words of ``plot("importance")``) and a ``UserWarning`` repeats it.

        Raises:
            ConfigError: unknown evaluator, bad ``min_trials``, or nothing is searched.
        """
        frame = self._importance_table(evaluator, min_trials).frame()
        if frame.attrs.get("reason"):  # an all-NaN table must not pass for an answer
            log.info("importance: %s", frame.attrs["reason"])
            warnings.warn(f"hpo-nb: importance() is empty. {frame.attrs['reason']}.", UserWarning, stacklevel=2)
        return frame

    def importance_heatmap(self, evaluator: str = "ped-anova", min_trials: int = 10) -> "plotly.graph_objects.Figure":
        """``importance()`` as a heatmap, with raw values and notes on hover.

        Args:
            evaluator: "ped-anova" or "fanova".
            min_trials: complete trials a target needs, >= 2.

        Returns:
            plotly.graph_objects.Figure: the heatmap.

        Raises:
            ConfigError: as ``importance()``.
        """
        return _views().importance_heatmap(self._importance_table(evaluator, min_trials))

    def _importance_table(self, evaluator: str, min_trials: int) -> "ImportanceTable":
        from .analysis.importance import importance_table

        return importance_table(self.study, spaces.searched(self.space), evaluator=evaluator, min_trials=min_trials)

    def plot_history(self) -> "plotly.graph_objects.Figure":
        """The objective per trial, coloured by state, with the best-so-far line.

        Returns:
            plotly.graph_objects.Figure: the optimization history.
        """
        from .analysis.history import history_frame

        objective = "val accuracy" if self.mode == "simple" else "score (accuracy + health)"
        return _views().history_figure(history_frame(self._stored_trials()), objective,
                                       f"{self.name}: optimization history")

    def architecture_3d(self, trial: int | None = None,
                        backend: str = "auto") -> "ipywidgets.Widget | plotly.graph_objects.Figure":
        """A 3D view of a trial's network, from its stored metadata (no model rebuilt).

        Args:
            trial: a trial number; None: the best trial.
            backend: "pythreejs" (an interactive widget), "plotly" (a figure that survives
                static export) or "auto" (pythreejs in a live kernel, else plotly).

        Returns:
            ipywidgets.Widget | plotly.graph_objects.Figure: the view (the widget holds the
            pythreejs renderer, a legend and a details panel).

        Raises:
            ConfigError: no such trial, it has no architecture (ended before its model was
                built), or an unknown backend.
        """
        return _views().show_trial(self.trial(trial), backend)

    def compare_architectures(self, a: int, b: int | None = None,
                              backend: str = "auto") -> "ipywidgets.Widget | plotly.graph_objects.Figure":
        """Two trials' networks side by side in 3D, at the same scale.

        Args:
            a: a trial number.
            b: another trial number; None: the best trial.
            backend: as for ``architecture_3d``.

        Returns:
            ipywidgets.Widget | plotly.graph_objects.Figure: the pair.

        Raises:
            ConfigError: as for ``architecture_3d``.
        """
        return _views().show_pair(self.trial(a), self.trial(b), backend)

    @staticmethod
    def _failed_errors(trials: list[optuna.trial.FrozenTrial]) -> list[tuple[int, str | None]]:
        died = records.died_errors(trials)
        return [(t.number, records.TrialResult.from_trial(t, died).error) for t in trials
                if records.state_of(t) == "failed"]

    def _search_warnings(self) -> list[str]:
        """What a finished search must tell the user (dashboard notices, console, log): every
        trial failed (with the first error), or the best trial does not beat the majority class."""
        trials = self._stored_trials()
        complete = [t for t in trials if records.state_of(t) == "complete" and t.value is not None]
        if not complete:
            failed = self._failed_errors(trials)
            return [all_failed(failed)] if failed and len(failed) == sum(
                records.state_of(t) != "waiting" for t in trials) else []
        base, metric = getattr(self, "baseline", None), getattr(self, "metric", "accuracy")
        if base is None:
            return []
        best = records.TrialResult.from_trial(max(complete, key=lambda t: t.value))
        value = best.accuracy if metric == "accuracy" else best.extra.get(metric)
        message = not_beaten(value, base, metric)
        return [message] if message else []

    def _stored_trials(self) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False)


def _views() -> Any:
    """``hpo_nb.views``, imported on first use: the one place the core reaches into views/.

    Why it exists: drawing a result (``dashboard()``, ``importance_heatmap()``,
    ``plot_history()``, ``architecture_3d()``, ``compare_architectures()``) and the live
    renderer for ``progress="auto"`` are part of ``Experiment``'s public contract (README,
    notebooks). Everything else points one way, views -> core; tests/test_layering.py checks
    that this function is the only exception."""
    from . import views

    return views


def _none_complete(trials: list[Any]) -> str:
    """Why there is no best trial: nothing ran yet, or what became of the trials that did."""
    if not trials:
        return "no trial has completed yet; run() the experiment first."
    from collections import Counter

    states = Counter(records.state_of(t) for t in trials)
    listed = ", ".join(f"{n} {state}" for state, n in sorted(states.items(), key=lambda kv: -kv[1]))
    return (f"none of the study's {len(trials)} trials completed ({listed}), so there is no best trial; "
            "pass a trial number, or run() more trials.")


def _trial_number(number: Any) -> int:
    """A trial number as an int: ints (not bools) and digit strings ("3"); else a ConfigError."""
    if isinstance(number, str) and number.strip().isdigit():
        return int(number.strip())
    if isinstance(number, bool) or not isinstance(number, numbers.Integral):
        raise ConfigError(f"trial must be an int trial number (results['number']), e.g. 0, not {number!r}.")
    return int(number)
