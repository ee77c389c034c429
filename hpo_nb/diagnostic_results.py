"""``Experiment``'s per-trial diagnostics drawings, as a base class: each reads the trial's
stored record (its ``history`` and ``diagnostics`` user attributes, and the activation arrays in
the Optuna artifact store given as ``artifact_store=``, else the file-system stores the study
recorded, else the run folder's), so it works after a kernel restart, from another process
sharing the study, and for RunPod trials; nothing is retrained. A trial without them says why
(``analysis.diagnostics.missing_reason``)."""

from __future__ import annotations

import dataclasses
import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .analysis import diagnostics as data
from .analysis.confusion import MAX_CLASSES
from .errors import ConfigError
from .results import StudyResults, _none_complete, _views

if TYPE_CHECKING:
    import plotly.graph_objects


class DiagnosticsResults(StudyResults):
    """The diagnostics plots, for ``Experiment`` (which sets ``run_dir`` and the study)."""

    run_dir: Path
    dataset: Any
    seed: int
    validation_fraction: float
    sample_fraction: float
    test_fraction: float
    _artifact_location: Any = None  # Experiment(artifact_store=...): None is the run folder's

    def plot_learning_curves(self, trials: Sequence[int] | None = None) -> "plotly.graph_objects.Figure":
        """Train and validation loss and accuracy per epoch, several trials overlaid.

        Args:
            trials: trial numbers (or one number); None: the five best complete trials (by score).

        Returns:
            plotly.graph_objects.Figure: loss and accuracy panels; solid train, dashed validation,
            one colour per trial, in the order asked (None: best first). Trials without a single
            recorded epoch (failed before training, still waiting) are left out and named, with
            their state, in the title.

        Raises:
            ConfigError: an unknown trial number, an empty list, (None) no trial has completed, or
                none of the trials has a recorded epoch.
        """
        if isinstance(trials, numbers.Integral) and not isinstance(trials, bool):
            trials = [trials]
        elif trials is not None and not isinstance(trials, (str, bytes)) and hasattr(trials, "__iter__"):
            trials = list(trials)  # a generator is read once
        if trials is not None and (isinstance(trials, (str, bytes, bool)) or not hasattr(trials, "__iter__")
                                   or not list(trials)
                                   or any(isinstance(n, bool) or not isinstance(n, numbers.Integral) for n in trials)):
            raise ConfigError(f"trials must be a trial number or a list of them (e.g. [0, 3]), not {trials!r}.")
        if trials is None:
            complete = sorted((t for t in self.trials if t.state == "complete" and t.score is not None),
                              key=lambda t: -t.score)[:5]
            if not complete:
                raise ConfigError(_none_complete(self._stored_trials()))
            chosen = complete
        else:
            chosen = list({n: self.trial(n) for n in map(int, trials)}.values())  # as asked, repeats once

        def has_epochs(t: Any) -> bool:
            return any(t.history.get(k) for k in ("loss", "val_loss", "accuracy", "val_accuracy"))

        shown, left = [t for t in chosen if has_epochs(t)], [t for t in chosen if not has_epochs(t)]
        if not shown:
            raise ConfigError("no learning curves to draw: " + "; ".join(_no_history(t) for t in left) + ".")
        title = f"{self.name}: learning curves (trial{'s' if len(shown) > 1 else ''} " \
                f"{', '.join(str(t.number) for t in shown)})"
        if left:
            title += "<br><sup>left out, no epoch recorded: " + "; ".join(_no_history(t) for t in left) + "</sup>"
        return _views().diagnostic_plot("learning_curves", data.learning_curves_frame(shown), title)

    def plot_confusion_matrix(self, trial: int | None = None, *, classes: Sequence[str | int] | None = None,
                              top_k: int | None = MAX_CLASSES) -> "plotly.graph_objects.Figure":
        """The validation confusion matrix of a trial, with per-class precision, recall and F1.

        A score that is undefined (0/0: the precision of a class nothing was predicted as, the
        recall of a class without validation samples, the F1 of a class with neither) has no bar
        but an "×" at 0 whose hover says why, as scikit-learn's ``zero_division=np.nan``. The
        figure is at most 1000 px tall; with more than ``top_k`` classes it shows the ``top_k``
        with the most misclassified samples and says so in its subtitle. The stored record keeps
        the whole matrix (``exp.trial(n).diagnostics["confusion_matrix"]``).

        Args:
            trial: a trial number; None: the best trial.
            classes: class names (str) or indices (int) to show, in that order; None: every
                class, or the most confused ``top_k``.
            top_k: the most classes shown without ``classes`` (an int >= 1; default 30); None:
                every class.

        Returns:
            plotly.graph_objects.Figure: heatmap (rows true class, columns predicted; colour the
            share of the true class, text the counts up to 20 classes) and per-class bars.

        Raises:
            ConfigError: no such trial, it has no diagnostics (the message says why: its state,
                ``diagnostics=False``, or a record from before diagnostics), ``classes`` names an
                unknown class, or ``top_k`` is not an int >= 1 or None.
        """
        t = self._diagnosed(trial, "confusion_matrix")
        view = data.confusion_view(data.confusion_info(t.diagnostics, t.number), classes, top_k)
        return _views().diagnostic_plot("confusion_matrix", view,
                                        f"{self.name}: trial {t.number} validation confusion matrix")

    def plot_gradient_flow(self, trial: int | None = None) -> "plotly.graph_objects.Figure":
        """Gradient norm of each trainable layer per epoch (layers x epochs).

        Args:
            trial: a trial number; None: the best trial.

        Returns:
            plotly.graph_objects.Figure: heatmap of log10 L2 norms; buttons switch between the mean
            and the max over each epoch's batches with a finite norm (every batch on one device;
            one 64-sample probe batch per epoch under MirroredStrategy). Batches with a NaN or
            infinite norm are counted per layer and epoch in a red subtitle; a cell with no finite
            batch is blank, a zero norm grey.

        Raises:
            ConfigError: ``trial`` is not an int (or digit string), no such trial, or it has no
                diagnostics (the message says why).
        """
        t = self._diagnosed(trial, "gradients")
        return _views().diagnostic_plot("gradient_flow", data.gradient_flow(t.diagnostics, t.number),
                                        f"{self.name}: trial {t.number} gradient flow")

    def plot_weights(self, trial: int | None = None) -> "plotly.graph_objects.Figure":
        """Weight and bias distributions of each trainable layer, with an epoch slider.

        Args:
            trial: a trial number; None: the best trial.

        Returns:
            plotly.graph_objects.Figure: one histogram panel per layer and kind (bins fixed at the
            first epoch); the slider picks the epoch (0: the initialization). A panel whose values
            fall outside its bins says how many (below, above, NaN) under its title, per epoch.

        Raises:
            ConfigError: no such trial, or it has no diagnostics (the message says why).
        """
        t = self._diagnosed(trial, "weights")
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
            ConfigError: no such trial, it has no diagnostics (the message says why), or its arrays
                are in none of the stores looked in (``artifact_store=`` alone when given; else the
                folders the study recorded that exist here, then ``<run_dir>/artifacts``); the
                message names them, and the type of any recorded store that is not a folder.
        """
        t = self._diagnosed(trial, "activations")
        return _views().diagnostic_plot("activations", self._activation_maps(t),
                                        f"{self.name}: trial {t.number} activations")

    def _diagnosed(self, trial: int | None, key: str) -> Any:
        """The trial, if its diagnostics hold ``key``; else a ConfigError saying why not (its
        state, diagnostics=False, a record from before diagnostics, a trimmed piece)."""
        t = self.trial(trial)
        why = None
        if not t.diagnostics:
            frozen = next((f for f in self._stored_trials() if f.number == t.number), None)
            recorded = frozen is not None and "diagnostics" in frozen.user_attrs
            why = data.missing_reason(t.number, t.state, recorded, t.epochs_run, t.error)
        data.require(t.diagnostics, key, t.number, why)
        return t

    def _activation_maps(self, t: Any) -> data.ActivationMaps:
        from .diagnostics import record, store

        # the given store; else the ones the study recorded (their folders on this machine), then the run folder's
        stores, hint = store.read_stores(self._artifact_location, self.run_dir, self.study.user_attrs)
        arrays = next((a for a in (store.load_arrays(t.diagnostics, record.ACTIVATIONS, s) for s in stores)
                       if a is not None), None)
        maps = data.activation_maps(t.diagnostics, arrays, t.number, ", ".join(store.describe(s) for s in stores),
                                    hint)
        if maps.kind == "text" and not maps.words:  # a record from before words were stored with it
            vocabulary = self._vocabulary()
            if vocabulary:
                from .diagnostics.activations import token_words

                maps = dataclasses.replace(maps, words={int(k): v for k, v in
                                                        token_words(maps.inputs, vocabulary).items()})
        return maps

    def _vocabulary(self) -> list[str] | None:
        """The TextVectorization vocabulary the trials trained with (raw text: fitted on the
        training part of this experiment's split), or None (token ids, or not computable)."""
        try:
            return self.dataset.vocabulary(self.validation_fraction, self.seed, self.sample_fraction,
                                           self.test_fraction)
        except Exception:  # a label is not worth a failed drawing: ids are shown instead
            return None

    def _artifact_store(self) -> Any:
        from .diagnostics.store import open_store

        return open_store(self._artifact_location, self.run_dir)


def _no_history(t: Any) -> str:
    return f"trial {t.number} ({t.state}{f': {t.error}' if t.error else ''})"
