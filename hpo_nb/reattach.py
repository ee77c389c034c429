"""Re-attach: work a dead process started for its trials is followed to its end, not redone.

A remote executor journals what it started for a trial the moment it is accepted (a RunPod job
id: ``TrialJob.journal``), as a system attribute of the trial in the study's storage. When that
process dies (a kernel restart, a killed script), its trials' heartbeats go silent; the next
search on the study (any process, the same study) finds them here, under the study lock and before
Optuna's stale-trial check would fail and retry them. For each, the search asks its executor to
``follow`` the journaled work (progress, result and cost land on the original trial), and cancels
the work it will not follow (``executors.base.abandon``: e.g. the search now runs locally), so
nothing keeps billing unseen. Trials without a journal (local training) are failed and retried
as before, and resume from their epoch checkpoint (``hpo_nb.checkpoints``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import optuna

JOURNAL_ATTR = "hpo_nb_job"


def journal_writer(storage: Any, trial_id: int) -> Callable[[dict[str, Any]], None]:
    """Returns: ``write(entry)``, storing ``entry`` (JSON-ready, no secrets) on the trial."""

    def write(entry: dict[str, Any]) -> None:
        storage.set_trial_system_attr(trial_id, JOURNAL_ATTR, dict(entry))

    return write


def journal_of(trial: optuna.trial.FrozenTrial) -> dict[str, Any] | None:
    """Returns: the trial's journal entry, or None."""
    entry = trial.system_attrs.get(JOURNAL_ATTR)
    return dict(entry) if isinstance(entry, dict) else None


def orphaned(storage: Any, study: optuna.Study,
             dead: Iterable[int] = ()) -> list[tuple[optuna.trial.FrozenTrial, dict[str, Any]]]:
    """RUNNING trials whose process died (no heartbeat for the grace period, or in ``dead``)
    with journaled work.

    Call it under the study lock, before ``optuna.storages.fail_stale_trials``: a trial taken
    over here (beaten for at once) is no longer stale there.

    Args:
        storage: the study's storage; without heartbeats (in-memory) nothing is ever orphaned.
        study: the study.
        dead: ids of trials known dead already (their process is gone: ``storage.died_here``).

    Returns:
        (trial, journal entry) pairs, by trial number.
    """
    stale_ids = getattr(storage, "_get_stale_trial_ids", None)  # what fail_stale_trials itself asks
    get_interval = getattr(storage, "get_heartbeat_interval", None)
    if not callable(stale_ids) or not callable(get_interval) or get_interval() is None:
        return []
    found = []
    for trial_id in sorted({*stale_ids(study._study_id), *dead}):
        trial = storage.get_trial(trial_id)
        entry = journal_of(trial)
        if trial.state == optuna.trial.TrialState.RUNNING and entry is not None:
            found.append((trial, entry))
    return sorted(found, key=lambda pair: pair[0].number)
