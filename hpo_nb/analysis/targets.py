"""An hpo-nb study seen through one target, for ``optuna.visualization``.

Optuna's plots (history, importance, parallel coordinates, slice, contour, intermediate values)
read a study's objective value. hpo-nb keeps more per trial (validation accuracy, the health
score, each health metric, duration, stored as user attributes), so each view gets an in-memory
copy of the study whose complete trials carry the chosen target as their value, the study's
direction set by whether higher is better, and, per epoch, the trial's validation accuracy (or
loss) from its Keras history as intermediate values. Trials without a finite value for the
target are kept as failed copies (so trial numbers stay the study's), which the views skip. The stored study is never changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from ..errors import ConfigError
from ..storage import quiet_optuna
from .importance import TARGETS, Target

SCORE = Target("score", "score", True)
EPOCH_METRICS = {"val_accuracy": "validation accuracy", "val_loss": "validation loss",
                 "accuracy": "training accuracy", "loss": "training loss"}


def target_by_key(key: str, score_label: str = "score") -> Target:
    """``"score"`` (the search's objective) or a key of ``analysis.importance.TARGETS``.

    Raises:
        ConfigError: an unknown key (the message lists the valid ones).
    """
    if key == "score":
        return Target("score", score_label, True)
    for t in TARGETS:
        if t.key == key:
            return t
    raise ConfigError(f"unknown target {key!r}; choose one of {', '.join(keys())}.")


def keys() -> list[str]:
    """Every target a view can show: the objective first."""
    return ["score", *(t.key for t in TARGETS)]


@dataclass(frozen=True)
class TargetStudy:
    """``study``: the in-memory copy; ``label``: the target's name for axes; ``n_trials``:
    complete trials with a value; ``epoch_metric``: what the intermediate values are;
    ``n_curves``: trials with at least one of them."""

    study: optuna.Study
    label: str
    n_trials: int
    epoch_metric: str
    n_curves: int = 0


def target_study(study: optuna.Study, target: Target, epoch_metric: str = "val_accuracy") -> TargetStudy:
    """The study's complete trials with ``target`` as their value (see the module docstring).

    Args:
        study: an hpo-nb study (any storage).
        target: from ``target_by_key``.
        epoch_metric: the Keras history key used as intermediate values, one per epoch
            (``EPOCH_METRICS``).

    Returns:
        TargetStudy: the copy and what it holds.

    Raises:
        ConfigError: an unknown ``epoch_metric``.
    """
    if epoch_metric not in EPOCH_METRICS:
        raise ConfigError(f"epoch_metric must be one of {', '.join(EPOCH_METRICS)}, not {epoch_metric!r}.")
    with quiet_optuna():  # not Optuna's "A new study created in memory" line
        view = optuna.create_study(direction="maximize" if target.higher_is_better else "minimize",
                                   study_name=f"{study.study_name}:{target.key}")
    copies, n_complete = [], 0
    # Every trial is copied, in order, so that trial numbers in the views are the study's own:
    # complete ones with a value as COMPLETE, pruned ones as PRUNED (their curves still show),
    # anything else as FAIL (the views leave those out).
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        value = target.value(t) if t.state == TrialState.COMPLETE else math.nan
        curve = (t.user_attrs.get("history") or {}).get(epoch_metric) or []
        steps = {i + 1: float(v) for i, v in enumerate(curve) if v is not None and math.isfinite(float(v))}
        if math.isfinite(value):
            state, n_complete = TrialState.COMPLETE, n_complete + 1
        else:
            state = TrialState.PRUNED if t.state == TrialState.PRUNED else TrialState.FAIL
        copies.append(optuna.trial.create_trial(
            state=state, params=t.params, distributions=t.distributions,
            value=value if state == TrialState.COMPLETE else None,
            intermediate_values=steps if state != TrialState.FAIL else {}))
    if copies:
        view.add_trials(copies)
    curves = sum(1 for t in copies if t.intermediate_values)
    return TargetStudy(view, target.label, n_complete, EPOCH_METRICS[epoch_metric], curves)
