"""The objective over trials, with the best-so-far line (data for ``exp.plot_history()``)."""

from __future__ import annotations

import math
from typing import Any, Iterable

from optuna.trial import FrozenTrial

from ..records import TrialResult

STATES = ("complete", "pruned", "stopped", "failed", "running", "waiting")


def history_frame(trials: Iterable[FrozenTrial]) -> Any:
    """One row per trial, by number: ``state``, ``value`` (the objective of a complete trial; the
    score a pruned or stopped trial reached; NaN when none) and ``best`` (best complete value so
    far, the search maximizes; NaN before the first complete trial)."""
    import pandas as pd

    rows = []
    best = -math.inf
    for t in sorted(trials, key=lambda t: t.number):
        r = TrialResult.from_trial(t)
        value = t.value if r.state == "complete" and t.value is not None else r.score
        value = float(value) if value is not None and math.isfinite(float(value)) else math.nan
        if r.state == "complete" and not math.isnan(value):
            best = max(best, value)
        rows.append({"number": r.number, "state": r.state, "value": value,
                     "best": best if best > -math.inf else math.nan,
                     "accuracy": r.accuracy, "duration_s": r.duration_s})
    return pd.DataFrame(rows, columns=["number", "state", "value", "best", "accuracy", "duration_s"])
