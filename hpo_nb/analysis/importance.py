"""Which hyperparameters mattered, for each thing a researcher cares about.

One table: rows are the searched hyperparameters (fixed ones are left out: nothing to explain),
columns are targets (validation accuracy, health score, each health metric, trial duration).
Each column comes from ``optuna.importance.get_param_importances(study, target=...)`` with
Optuna's default PED-ANOVA evaluator (or fANOVA), normalized to sum 1 per column; raw values
are kept. A column that cannot say anything honest (too few trials, a constant target, no
signal) is left empty and ``notes`` says why, instead of showing Optuna's "all equal" fallback.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import optuna
from optuna.importance import BaseImportanceEvaluator, FanovaImportanceEvaluator, PedAnovaImportanceEvaluator
from optuna.trial import FrozenTrial, TrialState

from ..errors import ConfigError
from ..health import HIGHER_IS_BETTER, LABELS, METRICS
from ..values import check_int

MIN_TRIALS = 10  # below this, PED-ANOVA's top-10 % set is a single trial: a column would be noise
EVALUATORS = ("ped-anova", "fanova")


@dataclass(frozen=True)
class Target:
    """A column: how to read it from a stored trial, and which direction is better."""

    key: str
    label: str
    higher_is_better: bool

    def value(self, t: FrozenTrial) -> float:
        a = t.user_attrs
        if self.key == "score":  # the search's objective (``analysis.targets``' "score" target)
            v = t.value if t.value is not None else a.get("score")
        elif self.key == "accuracy":
            v = a.get("accuracy")
        elif self.key == "duration_s":
            v = a.get("duration_s")
            if v is None and t.duration is not None:
                v = t.duration.total_seconds()
        else:
            v = (a.get("health") or {}).get(self.key)
        try:
            return float(v) if v is not None else math.nan
        except (TypeError, ValueError):
            return math.nan


TARGETS: tuple[Target, ...] = (
    Target("accuracy", "val accuracy", True),
    *(Target(m, LABELS[m], HIGHER_IS_BETTER[m]) for m in ("health_score", *METRICS)),
    Target("duration_s", "duration", False),
)
assert {t.key for t in TARGETS} >= set(METRICS)


@dataclass(frozen=True)
class ImportanceTable:
    """``importance``: params x targets, each column sums to 1 (NaN where not computed);
    ``raw``: the evaluator's unnormalized values; ``n_trials``: complete trials with a finite
    value per target; ``notes``: target -> why its column is empty."""

    evaluator: str
    importance: Any  # pandas.DataFrame
    raw: Any  # pandas.DataFrame
    n_trials: dict[str, int]
    notes: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def params(self) -> list[str]:
        return list(self.importance.index)

    @property
    def targets(self) -> list[str]:
        return list(self.importance.columns)

    def short_note(self, target: str) -> str | None:
        """The note's first words ("too few trials", "constant", "no signal", ...)."""
        note = self.notes.get(target)
        return note.split(":", 1)[0] if note else None

    @property
    def reason(self) -> str | None:
        """Why the whole table is empty, in the words of ``plot("importance")``'s empty figure
        ("Not enough signal to rank the parameters: too few trials: 3 complete, needs 10");
        None when any column was computed. Targets with the same note share it."""
        if not self.notes or self.importance.notna().to_numpy().any():
            return None
        by_note: dict[str, list[str]] = {}
        for target in self.targets:
            by_note.setdefault(self.notes.get(target, "not computed"), []).append(self.labels.get(target, target))
        if len(by_note) == 1:
            return f"Not enough signal to rank the parameters: {next(iter(by_note))}"
        return "Not enough signal to rank the parameters: " + "; ".join(
            f"{', '.join(labels)}: {note}" for note, labels in by_note.items())

    def frame(self) -> Any:
        """The normalized table as a DataFrame whose ``attrs`` carry raw values, notes, counts and
        ``reason`` (why every cell is NaN, or None)."""
        df = self.importance.copy()
        df.attrs.update(evaluator=self.evaluator, raw=self.raw.copy(), notes=dict(self.notes),
                        n_trials=dict(self.n_trials), reason=self.reason)
        return df


def make_evaluator(evaluator: str | BaseImportanceEvaluator = "ped-anova", seed: int = 0
                   ) -> tuple[str, BaseImportanceEvaluator]:
    """("ped-anova" | "fanova" | an Optuna evaluator) -> (display name, evaluator)."""
    if isinstance(evaluator, BaseImportanceEvaluator):
        return type(evaluator).__name__.replace("ImportanceEvaluator", "") or "custom", evaluator
    key = str(evaluator).lower().replace("_", "-")
    if key in ("ped-anova", "pedanova"):
        return "PED-ANOVA", PedAnovaImportanceEvaluator()
    if key == "fanova":
        return "fANOVA", FanovaImportanceEvaluator(seed=seed)
    raise ConfigError(f"evaluator must be one of {', '.join(map(repr, EVALUATORS))} or an "
                      f"optuna.importance evaluator, not {evaluator!r}.")


def importance_table(
    study: optuna.Study,
    params: Iterable[str],
    *,
    evaluator: str | BaseImportanceEvaluator = "ped-anova",
    targets: Iterable[Target] = TARGETS,
    min_trials: int = MIN_TRIALS,
) -> ImportanceTable:
    """Importance of each searched parameter (``params``, e.g. ``space.searched(space)``) for
    each target, from the study's complete trials."""
    import pandas as pd

    check_int("min_trials", min_trials, 2)
    name, ev = make_evaluator(evaluator)
    targets = tuple(targets)
    wanted = list(dict.fromkeys(params))
    if not wanted:
        raise ConfigError("no hyperparameter is searched (every one is fixed), so there is no importance to "
                          "compute; give a range or a list in search_space= for the ones to compare.")
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    seen = {p for t in complete for p in t.distributions}
    present = [p for p in wanted if p in seen]

    norm = pd.DataFrame(np.nan, index=pd.Index(wanted, name="parameter"),
                        columns=pd.Index([t.key for t in targets], name="target"), dtype=float)
    raw = norm.copy()
    counts: dict[str, int] = {}
    notes: dict[str, str] = {}
    for target in targets:
        values = np.array([target.value(t) for t in complete], dtype=float)
        finite = values[np.isfinite(values)]
        counts[target.key] = int(finite.size)
        note = _why_not(finite, present, min_trials)
        if note is None:
            scores, note = _evaluate(study, ev, present, target)
            if scores is not None:
                raw.loc[list(scores), target.key] = list(scores.values())
                norm.loc[list(scores), target.key] = [v / sum(scores.values()) for v in scores.values()]
        if note is not None:
            notes[target.key] = note

    order = norm.mean(axis=1, skipna=True).fillna(-1.0)
    rows = sorted(wanted, key=lambda p: (-order[p], wanted.index(p)))
    return ImportanceTable(
        evaluator=name, importance=norm.loc[rows], raw=raw.loc[rows], n_trials=counts, notes=notes,
        labels={t.key: t.label for t in targets},
    )


def _why_not(values: np.ndarray, present: list[str], min_trials: int) -> str | None:
    """Why a column would be noise, or None when it can be computed."""
    if not present:
        return "no searched parameter in the complete trials"
    if values.size < min_trials:
        return f"too few trials: {values.size} complete, needs {min_trials}"
    if float(np.ptp(values)) <= 1e-12 * max(1.0, float(np.abs(values).max())):
        return f"constant: {values[0]:.3g} in all {values.size} trials, nothing to explain"
    return None


def _evaluate(study: optuna.Study, ev: BaseImportanceEvaluator, params: list[str], target: Target
              ) -> tuple[dict[str, float] | None, str | None]:
    # PED-ANOVA ranks "lower is better" when given a target; fANOVA explains variance (sign-free).
    fn: Callable[[FrozenTrial], float] = (lambda t: -target.value(t)) if target.higher_is_better \
        else target.value
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its "lower is better" and small-sample warnings: handled here
            scores = optuna.importance.get_param_importances(study, evaluator=ev, params=params, target=fn,
                                                             normalize=False)
    except (ValueError, RuntimeError) as exc:
        return None, f"evaluator failed: {exc}"
    scores = {k: max(0.0, float(v)) for k, v in scores.items() if math.isfinite(float(v))}
    if not scores or sum(scores.values()) <= 0.0:
        return None, "no signal: the evaluator separates no parameter (e.g. ties among the best trials)"
    return scores, None
