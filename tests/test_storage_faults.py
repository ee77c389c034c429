"""Storage edge cases: saved models next to a missing or empty study.db, a process killed between
``ask()`` and its first heartbeat, and one grace-period formula for the code and ``--help``."""

from __future__ import annotations

import threading
import time

import optuna
import pytest

from hpo_nb.errors import ConfigError
from hpo_nb.executors import InMemoryExecutor, TrialJob
from hpo_nb.progress import ProgressHub
from hpo_nb.search import Search
from hpo_nb.spec import TrialOutcome, TrialSpec
from hpo_nb.storage import open_storage
from hpo_nb.values import GRACE_BEATS, grace_period


@pytest.mark.parametrize("study_db", ["empty", "deleted"])
def test_saved_models_next_to_an_empty_or_deleted_study_db_are_never_overwritten(runs_dir, study_db):
    from hpo_nb import Experiment

    models = runs_dir / "lost" / "models"
    models.mkdir(parents=True)
    saved = models / "trial_0000.keras"
    saved.write_bytes(b"an earlier study's best model")
    if study_db == "empty":
        (runs_dir / "lost" / "study.db").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"holds 1 saved model\(s\) \(trial_0000.keras.*no study 'lost'.*move"):
        Experiment(dataset="digits", name="lost", n_trials=1, max_epochs=1, runs_dir=runs_dir, progress="none")
    assert saved.read_bytes() == b"an earlier study's best model"


@pytest.mark.slow
def test_a_trial_whose_process_died_before_its_first_heartbeat_is_failed_not_waited_for(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(study_name="orphan", storage=storage, direction="maximize")
    study.enqueue_trial({"x": 0.25}, user_attrs={"startup": True})
    orphan = study.ask()  # a process that died right here never beat for it
    time.sleep(2.2)  # older than the grace period

    def complete(job: TrialJob) -> TrialOutcome:
        return TrialOutcome(job.spec.trial_number, "complete", accuracy=0.5, score=job.spec.params["x"])

    search = Search(study, storage, InMemoryExecutor(complete, 1), ProgressHub(2, "simple", 1), n_trials=2,
                    concurrency=1, suggest=lambda t: {"x": t.suggest_float("x", 0.0, 1.0)},
                    spec_for=lambda n, p: TrialSpec(n, "none", p, max_epochs=1), heartbeat_interval=1,
                    grace_period=2, sync_interval=0.0)
    thread = threading.Thread(target=search.run, daemon=True)
    thread.start()
    thread.join(15)
    if thread.is_alive():
        search.stop()
        thread.join(5)
        pytest.fail("the search waited for a trial whose process died before its first heartbeat")
    trials = {t.number: t for t in study.get_trials()}
    assert trials[orphan.number].state == optuna.trial.TrialState.FAIL
    complete_trials = [t for t in trials.values() if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete_trials) == 2
    assert any(t.params["x"] == 0.25 for t in complete_trials)  # the start-up trial's parameters were retried


def test_help_and_code_agree_on_the_grace_period(runs_dir):
    from hpo_nb import Experiment
    from hpo_nb.cli import _parser

    sub = next(a for a in _parser()._actions if a.dest == "command").choices["run"]
    assert f"silent for {GRACE_BEATS}x this (+1 s)" in " ".join(sub.format_help().split())
    exp = Experiment(dataset="digits", name="grace", n_trials=1, max_epochs=1, runs_dir=runs_dir, progress="none",
                     heartbeat_interval=2)
    assert exp._grace_period == grace_period(2) == GRACE_BEATS * 2 + 1
