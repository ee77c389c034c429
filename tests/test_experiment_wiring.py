"""Experiment's wiring without training: executor registry, spec_for, scoped global state."""

from __future__ import annotations

import logging
import warnings

import optuna
import pytest

from hpo_nb import Experiment
from hpo_nb.errors import ConfigError
from hpo_nb.executors import InMemoryExecutor, TrialJob
from hpo_nb.executors import base
from hpo_nb.spec import TrialOutcome


def _outcome(job: TrialJob) -> TrialOutcome:
    return TrialOutcome(job.spec.trial_number, "complete", accuracy=0.5, score=0.5)


def test_an_executor_instance_runs_the_whole_search_with_specs_from_the_experiment(runs_dir):
    specs = []
    executor = InMemoryExecutor(lambda job: (specs.append(job.spec), _outcome(job))[1], concurrency=2)
    exp = Experiment("digits", n_trials=3, max_epochs=2, concurrency=2, executor=executor, seed=3,
                     runs_dir=runs_dir, progress="none", sample_fraction=0.5)
    exp.run()
    assert list(exp.results["state"]) == ["complete"] * 3
    assert sorted(s.trial_number for s in specs) == [0, 1, 2]
    assert all(s.dataset == "digits" and s.max_epochs == 2 and s.seed == 3 and s.sample_fraction == 0.5
               for s in specs)
    assert exp.best.score == 0.5


def test_a_renderer_callable_gets_snapshots_and_the_final_one(runs_dir):
    seen = []
    exp = Experiment("digits", n_trials=2, executor=InMemoryExecutor(_outcome), runs_dir=runs_dir,
                     progress=seen.append)
    exp.run()
    assert seen and seen[-1].done and seen[-1].completed == 2


def test_the_registry_names_backends_and_imports_them_only_when_chosen():
    assert base.names()[:2] == ["local", "runpod"]
    assert not base.backend("local").remote and base.backend("runpod").remote
    assert base.backend("runpod").factory == "hpo_nb.executors.runpod:RunPodExecutor"
    with pytest.raises(ConfigError, match="executor must be one of 'local', 'runpod'"):
        base.backend("cloud")
    with pytest.raises(ConfigError, match="takes no options"):
        base.backend("local").check({"endpoint_id": "x"})


def test_creating_and_running_an_experiment_leaves_optuna_logging_and_warning_filters_alone(runs_dir):
    optuna.logging.set_verbosity(optuna.logging.INFO)
    before_filters = list(warnings.filters)
    root_level = logging.getLogger().level
    try:
        exp = Experiment("digits", n_trials=1, executor=InMemoryExecutor(_outcome), runs_dir=runs_dir,
                         progress="none")
        exp.run()
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
        assert warnings.filters == before_filters
        assert logging.getLogger().level == root_level
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_overlapping_quiet_blocks_restore_the_callers_state_whatever_order_they_end_in():
    import warnings

    import optuna

    from hpo_nb.storage import quiet_optuna

    before_verbosity, before_filters = optuna.logging.get_verbosity(), list(warnings.filters)
    first, second = quiet_optuna(), quiet_optuna()
    first.__enter__()
    second.__enter__()
    assert optuna.logging.get_verbosity() == optuna.logging.WARNING
    first.__exit__(None, None, None)  # the first search ends before the second: not LIFO
    assert optuna.logging.get_verbosity() == optuna.logging.WARNING  # the second still runs quietly
    warnings.filterwarnings("ignore", message="the user's own filter")
    second.__exit__(None, None, None)
    assert optuna.logging.get_verbosity() == before_verbosity
    assert [f for f in warnings.filters if getattr(f[1], "pattern", "") != "the user's own filter"] == before_filters
    assert any(getattr(f[1], "pattern", "") == "the user's own filter" for f in warnings.filters)
    warnings.filters[:] = before_filters


def test_a_reopened_experiment_shows_its_stored_study_as_not_running(runs_dir):
    def outcome(job: TrialJob) -> TrialOutcome:
        n = job.spec.trial_number
        return TrialOutcome(n, "stopped" if n == 1 else "complete", accuracy=0.5 + 0.01 * n, score=0.5 + 0.01 * n)

    Experiment("digits", n_trials=3, executor=InMemoryExecutor(outcome), runs_dir=runs_dir, progress="none",
               name="again").run()
    fresh = Experiment("digits", n_trials=3, runs_dir=runs_dir, progress="none", name="again")  # a new kernel
    snap = fresh.hub.snapshot()
    assert snap.done and not fresh.running  # nothing runs: the dashboard offers no Stop
    assert (snap.completed, snap.stopped, snap.performed) == (3, 1, 3)
    assert snap.best_trial.trial == 3  # the stopped trial (1) is listed, never the best
    fresh.stop()  # nothing to stop: the stored study does not turn into a stopped search
    assert not fresh.hub.snapshot().stopping
    empty = Experiment("digits", n_trials=2, runs_dir=runs_dir, progress="none", name="never-run")
    assert empty.hub.snapshot().done and not empty.hub.snapshot().finished
