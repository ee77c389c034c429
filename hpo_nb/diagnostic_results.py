"""``Experiment``'s per-trial diagnostics drawings, as a base class: each reads the trial's
stored record (its ``history`` and ``diagnostics`` user attributes, and the activation arrays in
the run folder's Optuna artifact store), so it works after a kernel restart, from another
process sharing the study, and for RunPod trials; nothing is retrained."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .analysis import diagnostics as data
from .errors import ConfigError
from .results import StudyResults, _views

if TYPE_CHECKING:
    import plotly.graph_objects


class DiagnosticsResults(StudyResults):
    """The diagnostics plots, for ``Experiment`` (which sets ``run_dir`` and the study)."""

    run_dir: Path

    def plot_learning_curves(self, trials: Sequence[int] | None = None) -> "plotly.graph_objects.Figure":
        """Train and validation loss and accuracy per epoch, several trials overlaid.

        Args:
            trials: trial numbers (or one number); None: the five best complete trials (by score).

        Returns:
            plotly.graph_objects.Figure: loss and accuracy panels; solid train, dashed validation,
            one colour per trial.

        Raises:
            ConfigError: an unknown trial number, an empty list, or (None) no trial has completed.
        """
        if isinstance(trials, numbers.Integral) and not isinstance(trials, bool):
            trials = [trials]
        if trials is not None and (isinstance(trials, (str, bytes, bool)) or not hasattr(trials, "__iter__")
                                   or not list(trials)
                                   or any(isinstance(n, bool) or not isinstance(n, numbers.Integral) for n in trials)):
            raise ConfigError(f"trials must be a trial number or a list of them (e.g. [0, 3]), not {trials!r}.")
        if trials is None:
            complete = sorted((t for t in self.trials if t.state == "complete" and t.score is not None),
                              key=lambda t: -t.score)[:5]
            if not complete:
                raise ConfigError("no trial has completed yet; run() the experiment first.")
            chosen = complete
        else:
            chosen = [self.trial(int(n)) for n in trials]
        names = ", ".join(str(t.number) for t in chosen)
        return _views().diagnostic_plot("learning_curves", data.learning_curves_frame(chosen),
                                        f"{self.name}: learning curves (trial {names})")

    def plot_confusion_matrix(self, trial: int | None = None) -> "plotly.graph_objects.Figure":
        """The validation confusion matrix of a trial, with per-class precision and recall.

        Args:
            trial: a trial number; None: the best trial.

        Returns:
            plotly.graph_objects.Figure: heatmap (rows true class, columns predicted; colour the
            share of the true class, text the counts) and per-class bars.

        Raises:
            ConfigError: no such trial, or it has no diagnostics (``diagnostics=False``).
        """
        t = self.trial(trial)
        return _views().diagnostic_plot("confusion_matrix", data.confusion_info(t.diagnostics, t.number),
                                        f"{self.name}: trial {t.number} validation confusion matrix")

    def plot_gradient_flow(self, trial: int | None = None) -> "plotly.graph_objects.Figure":
        """Gradient norm of each trainable layer per epoch (layers x epochs).

        Args:
            trial: a trial number; None: the best trial.

        Returns:
            plotly.graph_objects.Figure: heatmap of log10 L2 norms; buttons switch between the mean
            and the max over each epoch's batches.

        Raises:
            ConfigError: no such trial, or it has no diagnostics.
        """
        t = self.trial(trial)
        return _views().diagnostic_plot("gradient_flow", data.gradient_flow(t.diagnostics, t.number),
                                        f"{self.name}: trial {t.number} gradient flow")

    def plot_weights(self, trial: int | None = None) -> "plotly.graph_objects.Figure":
        """Weight and bias distributions of each trainable layer, with an epoch slider.

        Args:
            trial: a trial number; None: the best trial.

        Returns:
            plotly.graph_objects.Figure: one histogram panel per layer and kind (fixed bins); the
            slider picks the epoch (0: the initialization).

        Raises:
            ConfigError: no such trial, or it has no diagnostics.
        """
        t = self.trial(trial)
        return _views().diagnostic_plot("weights", data.weight_histograms(t.diagnostics, t.number),
                                        f"{self.name}: trial {t.number} weights and biases")

    def plot_activations(self, trial: int | None = None) -> "plotly.graph_objects.Figure":
        """Activation maps of a few fixed validation samples (images: each conv block's most
        active channels; text: each LSTM layer's output at every token).

        Args:
            trial: a trial number; None: the best trial.

        Returns:
            plotly.graph_objects.Figure: one row per sample; a menu picks the layer.

        Raises:
            ConfigError: no such trial, it has no diagnostics, or its arrays are not in this run
                folder's artifact store (``<run_dir>/artifacts``).
        """
        t = self.trial(trial)
        return _views().diagnostic_plot("activations", self._activation_maps(t),
                                        f"{self.name}: trial {t.number} activations")

    def _activation_maps(self, t: Any) -> data.ActivationMaps:
        from .diagnostics import record, store

        data.require(t.diagnostics, "activations", t.number)
        arrays = store.load_arrays(t.diagnostics, record.ACTIVATIONS, self._artifact_store())
        return data.activation_maps(t.diagnostics, arrays, t.number)

    def _artifact_store(self) -> Any:
        from .diagnostics.store import artifact_store

        return artifact_store(self.run_dir)
