"""Trials as stored records: what goes into Optuna user attributes, and what comes back out
(a DataFrame row, a ``TrialResult``, a gallery entry). Pure functions over frozen trials."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Mapping, Sequence

import optuna

from .health import METRICS
from .progress import FinishedTrial
from .spec import TrialOutcome

STATE_ATTR = "hpo_state"
_ATTRS = tuple(f.name for f in fields(TrialOutcome) if f.name not in ("trial_number", "state"))


def outcome_attrs(outcome: TrialOutcome) -> dict[str, Any]:
    """User attributes that store a whole outcome on its Optuna trial."""
    data = outcome.to_dict()
    attrs = {k: data[k] for k in _ATTRS}
    attrs[STATE_ATTR] = outcome.state
    return attrs


def state_of(t: optuna.trial.FrozenTrial) -> str:
    """Our state: complete | pruned | stopped | failed | running | waiting."""
    if STATE_ATTR in t.user_attrs:
        return str(t.user_attrs[STATE_ATTR])
    return {
        optuna.trial.TrialState.RUNNING: "running",
        optuna.trial.TrialState.WAITING: "waiting",
        optuna.trial.TrialState.COMPLETE: "complete",
        optuna.trial.TrialState.PRUNED: "pruned",
        optuna.trial.TrialState.FAIL: "failed",
    }[t.state]


def counts_toward_budget(t: optuna.trial.FrozenTrial) -> bool:
    """Trials that used up budget: finished complete, pruned or failed by us. A trial the user
    stopped, or one failed because its process died (and retried), does not count. A trial
    still RUNNING counts as running, even while its result is being written."""
    return t.state.is_finished() and t.user_attrs.get(STATE_ATTR) in ("complete", "pruned", "failed")


@dataclass(init=False, repr=False, eq=True)
class TrialResult(TrialOutcome):
    """One trial as a user reads it (``exp.best``): the ``TrialOutcome`` stored on the Optuna
    trial, plus the hyperparameters it tried (``params``) and its number (``number``, the same
    as ``trial_number``). ``replicas``: model replicas that trained in sync (MirroredStrategy;
    1 = one device); ``devices``: where it trained (empty: the default device)."""

    params: dict[str, Any] = field(default_factory=dict)

    def __init__(self, number: int, state: str, params: dict[str, Any] | None = None,
                 accuracy: float | None = None, score: float | None = None, **outcome: Any) -> None:
        super().__init__(trial_number=number, state=state, accuracy=accuracy, score=score,  # type: ignore[arg-type]
                         **outcome)
        self.params = dict(params or {})

    @property
    def number(self) -> int:
        """The trial's number in its study (0-based)."""
        return self.trial_number

    @classmethod
    def from_trial(cls, t: optuna.trial.FrozenTrial, died: Mapping[int, str] | None = None) -> "TrialResult":
        """Read a trial back from storage (any process's, finished or not); ``died``: the
        error of trials whose process died (``died_errors``), which recorded none themselves."""
        a = t.user_attrs
        return cls(
            number=t.number, state=state_of(t), params=dict(a.get("params_all") or t.params),
            accuracy=a.get("accuracy"), score=a.get("score", t.value), health=dict(a.get("health") or {}),
            history=dict(a.get("history") or {}), architecture=dict(a.get("architecture") or {}),
            duration_s=float(a.get("duration_s") or 0.0), fit_s=float(a.get("fit_s") or 0.0),
            epochs_run=int(a.get("epochs_run") or 0), param_count=int(a.get("param_count") or 0),
            model_path=a.get("model_path"), error=a.get("error") or (died or {}).get(t.number),
            extra=dict(a.get("extra") or {}), replicas=int(a.get("replicas") or 1), devices=list(a.get("devices") or []),
            diagnostics=dict(a.get("diagnostics") or {}),
        )

    def __repr__(self) -> str:
        acc = "–" if self.accuracy is None else f"{self.accuracy:.4f}"
        sc = "–" if self.score is None else f"{self.score:.4f}"
        return f"TrialResult(number={self.number}, state={self.state!r}, accuracy={acc}, score={sc}, params={self.params})"


def no_model_reason(result: TrialResult) -> str:
    """Why trial ``result`` has no saved model on this machine to load or export, in words: a
    failed trial says so with its error, a pruned or stopped one that only complete trials save a
    model, a complete one where its file is (or that none was saved)."""
    n, state = result.number, result.state
    if state == "failed":
        return f"trial {n} failed ({result.error or 'no error recorded'}), so it has no model"
    if state in ("pruned", "stopped"):
        return f"trial {n} was {state} before its last epoch; only complete trials save a model"
    if state in ("running", "waiting"):
        return f"trial {n} is still {state}; its model is saved when it completes"
    if result.model_path:
        return f"trial {n}'s saved model {result.model_path} is not on this machine (it stays where it trained)"
    return f"trial {n} has no saved model (models are saved for complete trials when save_models=True)"


def died_errors(trials: Iterable[optuna.trial.FrozenTrial]) -> dict[int, str]:
    """Trial number -> why it failed, for trials failed for their process (a stale heartbeat, or
    a process of this host found gone): they never recorded an outcome. Optuna's retry callback
    names the trial each retry repeats (``retry_history``), which gives the retry's number."""
    trials = list(trials)
    retried: dict[int, int] = {}
    for t in trials:
        history = t.system_attrs.get("retry_history") or []
        if history:
            retried.setdefault(int(history[-1]), t.number)
    return {t.number: "process died (heartbeat lost)" + (f"; retried as trial {retried[t.number]}"
                                                          if t.number in retried else "")
            for t in trials if t.state == optuna.trial.TrialState.FAIL and STATE_ATTR not in t.user_attrs}


def finished_trial(t: optuna.trial.FrozenTrial, died: Mapping[int, str] | None = None) -> FinishedTrial:
    r = TrialResult.from_trial(t, died)
    return FinishedTrial(
        trial=r.number, state=r.state, accuracy=r.accuracy, score=r.score, duration_s=r.duration_s,
        params=r.params, health=r.health, architecture=r.architecture, error=r.error, extra=r.extra,
    )


def finished_trials(trials: Sequence[optuna.trial.FrozenTrial],
                    keep: Callable[[optuna.trial.FrozenTrial], bool]) -> list[FinishedTrial]:
    """The stored ``trials`` that ``keep`` selects, as progress events (a dead process's trial with
    its ``died_errors`` text)."""
    died = died_errors(trials)
    return [finished_trial(t, died) for t in trials if keep(t)]


def results_frame(trials: Iterable[optuna.trial.FrozenTrial], param_names: Iterable[str] = (),
                  evaluations: Mapping[int, Mapping[str, Any]] | None = None) -> "Any":
    """One row per trial: number, state, every param, accuracy (validation: what the search
    optimized), test_accuracy (held-out test split; set for trials ``Experiment.evaluate`` has
    evaluated, else None), score, each health metric, duration, epochs run, parameter count,
    resumed_from_epoch (epochs a retry restored from its checkpoint; 0: trained from the start) (plus
    where it ran). ``evaluations``: trial number -> stored evaluation (``stored_evaluations``)."""
    import pandas as pd

    evaluations = evaluations or {}
    rows = []
    trials = sorted(trials, key=lambda t: t.number)
    died = died_errors(trials)
    for t in trials:
        if t.state == optuna.trial.TrialState.WAITING:  # queued (the start-up design), not tried yet
            continue
        r = TrialResult.from_trial(t, died)
        row: dict[str, Any] = {"number": r.number, "state": r.state}
        row.update(r.params)
        test = evaluations.get(r.number) or {}
        row.update({"accuracy": r.accuracy, "test_accuracy": test.get("test_accuracy"), "score": r.score})
        for m in (*METRICS, "health_score"):
            row[m] = r.health.get(m)
        row.update({
            "duration_s": r.duration_s, "epochs_run": r.epochs_run, "param_count": r.param_count,
            "replicas": r.replicas, "devices": ",".join(r.devices), "executor": r.extra.get("executor", "local"),
            "model_path": r.model_path, "error": r.error,
        })
        row["resumed_from_epoch"] = int(r.extra.get("resumed_from_epoch") or 0)  # 0: trained from epoch 0
        for key in ("balanced_accuracy", "cost_usd", "delay_s", "execution_s", "worker"):
            if key in r.extra:
                row[key] = r.extra[key]
        rows.append(row)
    columns = ["number", "state", *param_names]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=[*columns, "accuracy", "test_accuracy", "score", *METRICS, "health_score", "duration_s",
                                     "epochs_run", "param_count", "replicas", "devices", "executor", "model_path",
                                     "error", "resumed_from_epoch"])
    return df


# ------------------------------------------------------------------ test evaluations
# Stored as study user attributes (one per trial): Optuna refuses user attributes on finished
# trials, and a study attribute survives a restart and is shared like the trials themselves.

TEST_ATTR_PREFIX = "hpo_test_"


@dataclass
class TestReport:
    """One trial's model on the held-out test split (samples the search never saw).

    ``validation_accuracy`` is what the search optimized (optimistic: the trial was picked for
    it); ``test_accuracy`` is the honest estimate of accuracy on new data.
    """

    __test__ = False  # not a pytest test class

    trial: int
    test_accuracy: float
    validation_accuracy: float | None
    score: float | None
    n_test: int
    class_names: list[str]
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class
    metric: str = "accuracy"  # what the search optimized: "accuracy" or "balanced_accuracy"
    validation_value: float | None = None  # the trial's validation ``metric`` (None: as validation_accuracy)

    @property
    def test_balanced_accuracy(self) -> float:
        """Mean recall over the classes present in the test split, in [0, 1] (NaN: no samples)."""
        import numpy as np

        recall = self.per_class["recall"].to_numpy(dtype=float)
        return float(np.nanmean(recall)) if np.isfinite(recall).any() else float("nan")

    def optimized_line(self) -> str:
        """'validation balanced accuracy 0.9123 (what the search optimized)', or '' when unknown."""
        value = self.validation_accuracy if self.metric == "accuracy" else self.validation_value
        return "" if value is None else f"validation {metric_label(self.metric)} {value:.4f} (what the search optimized)"

    @property
    def confusion(self) -> Any:
        """pandas DataFrame (classes x classes): counts, rows true class, columns predicted."""
        import pandas as pd

        return pd.DataFrame(self.confusion_matrix, index=pd.Index(self.class_names, name="true"),
                            columns=pd.Index(self.class_names, name="predicted"))

    @property
    def per_class(self) -> Any:
        """pandas DataFrame, one row per class: support (test samples), correct, recall (the
        class's accuracy), precision; NaN where a class has no samples or predictions."""
        import numpy as np
        import pandas as pd

        cm = np.asarray(self.confusion_matrix, dtype=float).reshape(len(self.class_names), len(self.class_names))
        support, predicted, correct = cm.sum(axis=1), cm.sum(axis=0), np.diag(cm)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(support > 0, correct / support, np.nan)
            precision = np.where(predicted > 0, correct / predicted, np.nan)
        return pd.DataFrame({"support": support.astype(int), "correct": correct.astype(int), "recall": recall,
                             "precision": precision}, index=pd.Index(self.class_names, name="class"))

    def to_attr(self) -> dict[str, Any]:
        return {"test_accuracy": self.test_accuracy, "validation_accuracy": self.validation_accuracy,
                "score": self.score, "n_test": self.n_test, "class_names": list(self.class_names),
                "confusion_matrix": self.confusion_matrix, "metric": self.metric,
                "validation_value": self.validation_value}

    @classmethod
    def from_attr(cls, trial: int, data: Mapping[str, Any]) -> "TestReport":
        return cls(trial=trial, test_accuracy=float(data["test_accuracy"]),
                   validation_accuracy=data.get("validation_accuracy"), score=data.get("score"),
                   n_test=int(data.get("n_test") or 0), class_names=[str(c) for c in data.get("class_names") or []],
                   confusion_matrix=[[int(v) for v in row] for row in data.get("confusion_matrix") or []],
                   metric=str(data.get("metric") or "accuracy"), validation_value=data.get("validation_value"))

    def __repr__(self) -> str:
        val = "–" if self.validation_accuracy is None else f"{self.validation_accuracy:.4f}"
        return (f"TestReport(trial={self.trial}, test_accuracy={self.test_accuracy:.4f}, "
                f"validation_accuracy={val}, n_test={self.n_test})")


def metric_label(metric: str) -> str:
    """'balanced accuracy' for "balanced_accuracy": a metric's name in a sentence."""
    return metric.replace("_", " ")


def make_test_report(trial: int, y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str],
                validation_accuracy: float | None = None, score: float | None = None, metric: str = "accuracy",
                validation_value: float | None = None) -> TestReport:
    """Score predicted class indices against true ones (both int, shape (n,)); ``metric`` and
    ``validation_value``: what the search optimized, and the trial's validation value of it."""
    import numpy as np

    y_true, y_pred = np.asarray(y_true, dtype=int).reshape(-1), np.asarray(y_pred, dtype=int).reshape(-1)
    k = len(class_names)
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (y_true, y_pred), 1)
    accuracy = float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")
    return TestReport(trial=trial, test_accuracy=accuracy, validation_accuracy=validation_accuracy, score=score,
                      n_test=int(len(y_true)), class_names=[str(c) for c in class_names],
                      confusion_matrix=cm.tolist(), metric=metric, validation_value=validation_value)


def stored_evaluations(study: optuna.Study) -> dict[int, dict[str, Any]]:
    """Trial number -> stored test evaluation (``TestReport.to_attr``) for every evaluated trial."""
    out = {}
    for key, value in study.user_attrs.items():
        if key.startswith(TEST_ATTR_PREFIX) and isinstance(value, dict):
            try:
                out[int(key[len(TEST_ATTR_PREFIX):])] = value
            except ValueError:
                continue
    return out


def stored_report(study: optuna.Study, trial: int) -> "TestReport | None":
    """The test evaluation stored for ``trial`` (by ``evaluate()`` or ``hpo-nb evaluate``, in any
    run), or None when it was never evaluated."""
    data = stored_evaluations(study).get(trial)
    return TestReport.from_attr(trial, data) if data else None


def store_evaluation(study: optuna.Study, report: TestReport) -> None:
    study.set_user_attr(f"{TEST_ATTR_PREFIX}{report.trial}", report.to_attr())


@dataclass
class Evaluation:
    """``Experiment.evaluate()``: the selected trial (best by the search's score) and, for
    ``k > 1``, the runners-up, each scored on the held-out test split.

    ``test_accuracy``, ``per_class``, ``confusion`` and ``trial`` are the selected trial's;
    ``reports`` holds one ``TestReport`` per evaluated trial, in the search's order;
    ``table`` is a DataFrame with one row per evaluated trial.
    """

    reports: list[TestReport]

    @property
    def selected(self) -> TestReport:
        return self.reports[0]

    @property
    def trial(self) -> int:
        return self.selected.trial

    @property
    def test_accuracy(self) -> float:
        return self.selected.test_accuracy

    @property
    def validation_accuracy(self) -> float | None:
        return self.selected.validation_accuracy

    @property
    def per_class(self) -> Any:
        return self.selected.per_class

    @property
    def confusion(self) -> Any:
        return self.selected.confusion

    @property
    def table(self) -> Any:
        """pandas DataFrame: trial, validation_accuracy, test_accuracy, score, n_test."""
        import pandas as pd

        return pd.DataFrame([{"trial": r.trial, "validation_accuracy": r.validation_accuracy,
                              "test_accuracy": r.test_accuracy, "score": r.score, "n_test": r.n_test}
                             for r in self.reports])

    def __repr__(self) -> str:
        sel = self.selected
        balanced = sel.metric == "balanced_accuracy"
        optimized = sel.optimized_line()
        lines = [f"Evaluation of trial {self.trial} (the search's pick) on {sel.n_test} held-out test "
                 f"samples: test accuracy {self.test_accuracy:.4f}"
                 + (f", test balanced accuracy {sel.test_balanced_accuracy:.4f}" if balanced else "")
                 + (f", {optimized}" if optimized else "")]
        lines += [f"  runner-up trial {r.trial}: test {r.test_accuracy:.4f}"
                  + (f" (balanced {r.test_balanced_accuracy:.4f})" if balanced else "") for r in self.reports[1:]]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        return (f"<pre>{html.escape(repr(self))}</pre>{self.table.to_html(index=False)}"
                f"<b>Per class</b>{self.per_class.to_html()}")
