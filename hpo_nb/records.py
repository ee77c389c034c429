"""Trials as stored records: what goes into Optuna user attributes, and what comes back out
(a DataFrame row, a ``TrialResult``, a gallery entry). Pure functions over frozen trials."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Iterable

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
    def from_trial(cls, t: optuna.trial.FrozenTrial) -> "TrialResult":
        """Read a trial back from storage (any process's, finished or not)."""
        a = t.user_attrs
        return cls(
            number=t.number, state=state_of(t), params=dict(a.get("params_all") or t.params),
            accuracy=a.get("accuracy"), score=a.get("score", t.value), health=dict(a.get("health") or {}),
            history=dict(a.get("history") or {}), architecture=dict(a.get("architecture") or {}),
            duration_s=float(a.get("duration_s") or 0.0), fit_s=float(a.get("fit_s") or 0.0),
            epochs_run=int(a.get("epochs_run") or 0), param_count=int(a.get("param_count") or 0),
            model_path=a.get("model_path"), error=a.get("error"), extra=dict(a.get("extra") or {}),
            replicas=int(a.get("replicas") or 1), devices=list(a.get("devices") or []),
        )

    def __repr__(self) -> str:
        acc = "–" if self.accuracy is None else f"{self.accuracy:.4f}"
        sc = "–" if self.score is None else f"{self.score:.4f}"
        return f"TrialResult(number={self.number}, state={self.state!r}, accuracy={acc}, score={sc}, params={self.params})"


def finished_trial(t: optuna.trial.FrozenTrial) -> FinishedTrial:
    r = TrialResult.from_trial(t)
    return FinishedTrial(
        trial=r.number, state=r.state, accuracy=r.accuracy, score=r.score, duration_s=r.duration_s,
        params=r.params, health=r.health, architecture=r.architecture, error=r.error, extra=r.extra,
    )


def results_frame(trials: Iterable[optuna.trial.FrozenTrial], param_names: Iterable[str] = ()) -> "Any":
    """One row per trial: number, state, every param, accuracy, score, each health metric,
    duration, epochs run, parameter count (plus where it ran)."""
    import pandas as pd

    rows = []
    for t in sorted(trials, key=lambda t: t.number):
        r = TrialResult.from_trial(t)
        row: dict[str, Any] = {"number": r.number, "state": r.state}
        row.update(r.params)
        row.update({"accuracy": r.accuracy, "score": r.score})
        for m in (*METRICS, "health_score"):
            row[m] = r.health.get(m)
        row.update({
            "duration_s": r.duration_s, "epochs_run": r.epochs_run, "param_count": r.param_count,
            "replicas": r.replicas, "devices": ",".join(r.devices), "executor": r.extra.get("executor", "local"),
            "model_path": r.model_path, "error": r.error,
        })
        for key in ("cost_usd", "delay_s", "execution_s", "worker"):
            if key in r.extra:
                row[key] = r.extra[key]
        rows.append(row)
    columns = ["number", "state", *param_names]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=[*columns, "accuracy", "score", *METRICS, "health_score", "duration_s",
                                     "epochs_run", "param_count", "replicas", "devices", "executor", "model_path",
                                     "error"])
    return df
