"""Reading a study against its test split: the honest final number, and predictions on raw inputs.

The search picks a trial by validation accuracy, so that number is optimistic. ``evaluate()``
scores the pick (or the top k) on the test split no trial trained or was scored on and stores
each evaluation on the study; ``predict()`` runs a saved model, which carries its preprocessing,
on raw inputs. A mixin of ``Experiment`` (which sets ``dataset``, the split settings, ``study``).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from . import datasets, records
from .errors import ConfigError
from .results import StudyResults
from .values import check_int

log = logging.getLogger("hpo_nb")


class TestSplitResults(StudyResults):
    """``splits()``, ``evaluate()``, ``predict()``: results measured on held-out data."""

    __test__ = False  # not a pytest class, whatever its name says

    dataset: datasets.Dataset
    validation_fraction: float
    seed: int
    sample_fraction: float
    test_fraction: float
    save_models: bool
    metric: str

    def splits(self, raw: bool = False) -> datasets.Splits:
        """The train / validation / test arrays this search uses, e.g. for a baseline on the very
        same samples. The test split is never given to a trial (see ``Dataset.splits``).

        Args:
            raw: False: as trials see them (images float32 in [0, 1], text int32 token ids);
                True: as ``predict`` and the saved models take them (pixels in the data's own
                units, text as str).

        Returns:
            datasets.Splits: ``(x_train, y_train, x_val, y_val, x_test, y_test)``; labels int32 (n,).
        """
        return self.dataset.splits(self.validation_fraction, self.seed, self.sample_fraction, self.test_fraction,
                                   raw=raw)

    def evaluate(self, k: int = 1) -> records.Evaluation:
        """Test accuracy of the search's pick (the best trial by its score) and of the runners-up,
        on the held-out test split that no trial trained or was scored on.

        Validation accuracy is what the search optimized, so the best trial's is optimistic; the
        test accuracy is the honest estimate. Each evaluation is stored in the study (a study user
        attribute per trial), so ``results`` shows it as ``test_accuracy``, also after a restart.
        ``run()`` evaluates the best trial itself when the search ends.

        Args:
            k: how many trials to evaluate, best first (1: the selected model only); when fewer
                have completed, those are evaluated and a ``UserWarning`` says so.

        Returns:
            records.Evaluation: ``test_accuracy``, ``validation_accuracy``, ``per_class`` (DataFrame:
            support, correct, recall, precision per class), ``confusion`` (DataFrame, true x
            predicted) of the selected trial; ``reports`` and ``table`` for all ``k``.

        Raises:
            ConfigError: ``k`` is not a positive int, no trial has completed, there is no test split
                (``test_fraction=0``), or a trial's model was not saved here (``save_models=False``,
                RunPod) and was never evaluated.
        """
        import numpy as np

        check_int("k", k, 1)
        split = self.splits(raw=True)
        if len(split.y_test) == 0:
            raise ConfigError(
                f"experiment {self.name!r} has no test split (test_fraction=0); pass test_fraction=0.2 or "
                "test=(x_test, y_test) to a new experiment (name=) to hold samples out of the search."
            )
        complete = [t for t in self._stored_trials() if records.state_of(t) == "complete" and t.value is not None]
        if not complete:
            _ = self.best  # raises the message that fits: every trial failed (the first error), or none ran yet
        chosen = sorted(complete, key=lambda t: (-t.value, t.number))[:k]
        if k > len(complete):
            warnings.warn(f"evaluate(k={k}): only {len(complete)} trial(s) completed; evaluating those.",
                          UserWarning, stacklevel=2)
        stored = records.stored_evaluations(self.study)
        x_test = self.dataset.prepare_raw(split.x_test)
        names = self._class_names()
        reports = []
        for t in chosen:
            result = records.TrialResult.from_trial(t)
            if not (result.model_path and Path(result.model_path).exists()) and t.number in stored:
                reports.append(records.TestReport.from_attr(t.number, stored[t.number]))
                continue
            model = self.best_model(t.number, raw_inputs=True)
            probs = np.asarray(model.predict(x_test, batch_size=512, verbose=0))
            report = records.make_test_report(t.number, split.y_test, probs.argmax(axis=1), names,
                                              validation_accuracy=result.accuracy, score=result.score,
                                              metric=self.metric, validation_value=result.extra.get(self.metric))
            records.store_evaluation(self.study, report)
            reports.append(report)
        log.info("test evaluation: %s", "; ".join(f"trial {r.trial} test {r.test_accuracy:.4f} "
                                                   f"val {r.validation_accuracy}" for r in reports))
        return records.Evaluation(reports)

    def predict(self, inputs: Any, trial: int | None = None) -> Any:
        """Classify raw inputs with the best (or a given) trial's saved model.

        Args:
            inputs: raw samples, as the data came: images as numbers in the data's own units
                (e.g. uint8 0..255, digits 0..16), shape (n, h, w), (n, h, w, c), flat (n, h*w) or
                one image; text as a str or a list of str (token-id datasets: a list of int sequences).
            trial: a trial number; None: the best trial.

        Returns:
            pandas.DataFrame: one row per input: ``predicted`` (class name), ``confidence`` (its
            probability), then ``p_<class>`` (probability of each class; rows sum to 1).

        Raises:
            ConfigError: no saved model; no inputs; NaN/inf pixels or pixel values above the dataset's raw
                range (e.g. 0..255 given to a 0..16 digits model: the message says the range); inputs that
                do not fit the dataset's input shape.
        """
        import numpy as np
        import pandas as pd

        x = self.dataset.prepare_raw(inputs)
        probs = np.asarray(self._predictor(trial).predict(x, batch_size=512, verbose=0))
        names = self._class_names()
        frame = pd.DataFrame(probs, columns=[f"p_{n}" for n in names])
        frame.insert(0, "predicted", [names[i] for i in probs.argmax(axis=1)])
        frame.insert(1, "confidence", probs.max(axis=1))
        return frame

    def _predictor(self, trial: int | None) -> Any:
        """The raw-input model of a trial, loaded once per saved file: a model loaded afresh for
        every ``predict`` call would trace its predict function again each time (TensorFlow then
        warns about retracing, and each call pays the trace)."""
        result = self.trial(trial)
        path = Path(result.model_path) if result.model_path else None
        key = (result.number, str(path), path.stat().st_mtime_ns if path and path.exists() else None)
        cache = self.__dict__.setdefault("_predictors", {})
        if key not in cache:
            cache.clear()  # one model held at a time: models can be large
            cache[key] = self.best_model(result.number, raw_inputs=True)
        return cache[key]

    def _class_names(self) -> list[str]:
        names = self.dataset.class_names
        return [str(n) for n in names] if names else [str(i) for i in range(self.dataset.num_classes)]

    def _evaluate_after_run(self) -> None:
        """Evaluate the selected model on the test split when a search ends; never fails the run."""
        if not self.save_models:
            return
        try:
            self.evaluate(1)
        except ConfigError as exc:
            log.info("no test evaluation: %s", exc)
        except Exception as exc:  # the search's results stand without it; say why
            log.warning("test evaluation failed: %s: %s", type(exc).__name__, exc)

    def selected_test_report(self) -> records.TestReport | None:
        """The stored test evaluation of the current best trial (what the views show after a search).

        Returns:
            records.TestReport | None: its test accuracy, per-class table and confusion matrix;
            None when no trial has completed or the best one was not evaluated yet.
        """
        try:
            best = self.best.number
        except ConfigError:
            return None
        return records.stored_report(self.study, best)

    # ------------------------------------------------------------------ analysis (views/importance, arch3d)
