"""The search loop without a dataset: in-memory executor, in-memory Optuna storage, milliseconds."""

from __future__ import annotations

import threading
import time

import optuna
import pytest

from hpo_nb import records
from hpo_nb.executors import InMemoryExecutor, TrialJob
from hpo_nb.progress import ProgressHub
from hpo_nb.search import Search
from hpo_nb.spec import TrialOutcome, TrialSpec
from hpo_nb.storage import Heartbeat


def _study() -> tuple[optuna.Study, optuna.storages.InMemoryStorage]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, direction="maximize", study_name="t",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    return study, storage


def _search(run, n_trials: int = 4, concurrency: int = 1, study=None, **kwargs) -> tuple[Search, optuna.Study]:
    if study is None:
        study, storage = _study()
    else:
        storage = study._storage
    hub = ProgressHub(n_trials, "simple", concurrency)
    search = Search(study, storage, InMemoryExecutor(run, concurrency), hub, n_trials=n_trials,
                    concurrency=concurrency, suggest=lambda t: {"x": t.suggest_float("x", 0.0, 1.0)},
                    spec_for=lambda n, p: TrialSpec(n, "none", p, max_epochs=2), sync_interval=0.0, **kwargs)
    return search, study


def _complete(job: TrialJob) -> TrialOutcome:
    return TrialOutcome(job.spec.trial_number, "complete", accuracy=job.spec.params["x"], score=job.spec.params["x"])


def _states(study: optuna.Study) -> list[str]:
    return [records.state_of(t) for t in study.get_trials()]


def test_runs_exactly_the_budget_and_records_every_outcome():
    search, study = _search(_complete, n_trials=5, concurrency=2)
    search.run()
    assert _states(study) == ["complete"] * 5
    assert all(t.value == t.params["x"] for t in study.get_trials())
    assert all(t.user_attrs["params_all"] == t.params and "runner" in t.user_attrs for t in study.get_trials())
    snap = search.hub.snapshot()
    assert snap.performed == 5 and not snap.running


def test_trials_that_already_count_use_up_the_budget_and_stopped_ones_do_not():
    study, _ = _study()
    for state in ("complete", "stopped"):
        trial = study.ask()
        trial.set_user_attr(records.STATE_ATTR, state)
        study.tell(trial, 0.5 if state == "complete" else None,
                   state=None if state == "complete" else optuna.trial.TrialState.FAIL)
    search, _ = _search(_complete, n_trials=3, study=study)
    search.run()
    assert _states(study) == ["complete", "stopped", "complete", "complete"]
    # both earlier trials show on the hub: the search syncs trials it did not run itself
    assert {t.trial for t in search.hub.snapshot().finished} == {0, 1, 2, 3}


def test_never_runs_more_than_concurrency_trials_at_once():
    lock, now, peak = threading.Lock(), [0], [0]

    def run(job: TrialJob) -> TrialOutcome:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.1)  # long enough for the loop to launch the whole wave, even on a busy machine
        with lock:
            now[0] -= 1
        return _complete(job)

    search, study = _search(run, n_trials=6, concurrency=3)
    search.run()
    assert peak[0] == 3 and len(study.get_trials()) == 6


def test_stop_starts_nothing_new_and_ends_running_trials_as_stopped():
    both_running = threading.Barrier(3)

    def run(job: TrialJob) -> TrialOutcome:
        both_running.wait(5)
        assert job.stop.wait(5), "the trial was never asked to stop"
        return TrialOutcome(job.spec.trial_number, "stopped")

    search, study = _search(run, n_trials=10, concurrency=2)
    thread = threading.Thread(target=search.run)
    thread.start()
    both_running.wait(5)  # the two trials concurrency allows are running
    search.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert _states(study) == ["stopped", "stopped"] and search.hub.snapshot().stopping


def test_a_stop_while_a_trial_is_being_asked_for_reaches_that_trial_too():
    search, study = _search(_complete, n_trials=3)
    real_suggest = search.suggest

    def suggest(trial):
        search.stop()  # arrives after ask(), before the trial is registered as running
        return real_suggest(trial)

    search.suggest = suggest
    seen = []
    search.executor = InMemoryExecutor(lambda job: (seen.append(job.stop.is_set()),
                                                    TrialOutcome(job.spec.trial_number, "stopped"))[1])
    search.run()
    assert seen == [True] and _states(study) == ["stopped"]


def test_failed_and_pruned_outcomes_are_told_to_optuna_with_their_state():
    def run(job: TrialJob) -> TrialOutcome:
        n = job.spec.trial_number
        return TrialOutcome(n, "pruned") if n % 2 else TrialOutcome(n, "failed", error="ValueError: boom")

    search, study = _search(run, n_trials=4)
    search.run()
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED] * 2
    assert _states(study) == ["failed", "pruned"] * 2
    assert trials[0].user_attrs["error"] == "ValueError: boom"
    assert [t.state for t in search.hub.snapshot().finished] == ["failed", "pruned"] * 2


def test_an_executor_that_raises_gets_the_trial_recorded_as_failed_and_the_search_goes_on():
    def run(job: TrialJob) -> TrialOutcome:
        if job.spec.trial_number == 0:
            raise RuntimeError("worker exploded")
        return _complete(job)

    search, study = _search(run, n_trials=3)
    search.run()
    assert _states(study) == ["failed", "complete", "complete"]
    assert study.get_trials()[0].user_attrs["error"] == "RuntimeError: worker exploded"


def test_pruning_reports_reach_the_pruner_and_specs_come_from_the_caller():
    specs: list[TrialSpec] = []

    def run(job: TrialJob) -> TrialOutcome:
        specs.append(job.spec)
        assert job.report is not None and job.report(1, 0.5) is False  # NopPruner: never prune
        return _complete(job)

    study, _ = _study()
    study.pruner = optuna.pruners.NopPruner()
    search, _ = _search(run, n_trials=2, study=study, model_dir=None)
    search.run()
    assert [s.trial_number for s in specs] == [0, 1] and all(s.max_epochs == 2 for s in specs)
    assert all(t.intermediate_values == {1: 0.5} for t in study.get_trials())


def test_without_pruning_no_reporter_is_handed_out():
    seen = []
    search, _ = _search(lambda job: (seen.append(job.report), _complete(job))[1], n_trials=1, pruning=False)
    search.run()
    assert seen == [None]


def test_heartbeat_is_a_no_op_on_storages_without_heartbeats():
    _, storage = _study()
    with Heartbeat(storage, 0.01, lambda: [0]) as beat:
        beat.beat(0)
        time.sleep(0.03)
    assert not beat.enabled


def test_a_study_error_stops_running_trials_records_them_and_is_raised():
    study, _ = _study()
    calls = {"n": 0}
    real_ask = study.ask

    def ask(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("storage gone")
        return real_ask(*a, **k)

    study.ask = ask  # type: ignore[method-assign]

    def run(job: TrialJob) -> TrialOutcome:
        job.stop.wait(5)
        return TrialOutcome(job.spec.trial_number, "stopped" if job.stop.is_set() else "complete", score=1.0)

    search, _ = _search(run, n_trials=3, concurrency=2, study=study)
    with pytest.raises(RuntimeError, match="storage gone"):
        search.run()
    assert _states(study) == ["stopped"]


def test_a_trial_failed_for_its_dead_process_says_so_and_names_its_retry(tmp_path):
    """A stale trial is failed by Optuna, not by us: its row still says why, and which trial retried it."""
    from hpo_nb.storage import open_storage

    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=1, grace_period=2, max_retry=1)
    study = optuna.create_study(storage=storage, direction="maximize")
    dead, lost = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), study.ask()
    for trial in (dead, lost):  # what fail_stale_trials does to a trial whose process stopped beating
        storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.FAIL)
    storage.get_heartbeat_stale_trial_callback()(study, storage.get_trial(dead._trial_id))  # queues trial 2
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)
    frame = records.results_frame(study.get_trials())
    errors = dict(zip(frame["number"], frame["error"]))
    assert errors[0] == "process died (heartbeat lost); retried as trial 2"
    assert errors[1] == "process died (heartbeat lost)"  # no retry recorded for it
    assert records.TrialResult.from_trial(study.trials[0], records.died_errors(study.trials)).error == errors[0]
