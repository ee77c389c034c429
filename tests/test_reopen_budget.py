"""A reopened study keeps its budget: ``Experiment(name=...)`` without ``n_trials`` shows and resumes
the budget the study recorded (a study run with n_trials=3 reads "3/3 trials ... finished", not
"3/20 ... not running"); an explicit ``n_trials`` extends it and is recorded in turn.

Training is replaced (``InMemoryExecutor``): the budget bookkeeping over a real SQLite study is under test.
"""

from __future__ import annotations

from hpo_nb import Experiment
from hpo_nb.executors import InMemoryExecutor
from hpo_nb.spec import TrialOutcome
from hpo_nb.study import DEFAULT_N_TRIALS
from hpo_nb.views import viewmodel as vm

SPACE = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_layers": 0, "batch_norm": False,
         "activation": "relu", "pooling": "max", "optimizer": "adam", "dense_units": 32,
         "learning_rate": (1e-4, 1e-1), "batch_size": [16, 32]}


def _outcome(job) -> TrialOutcome:
    n = job.spec.trial_number
    return TrialOutcome(n, "complete", accuracy=0.5 + 0.01 * n, score=0.5 + 0.01 * n, duration_s=1.0, epochs_run=1)


def _exp(runs, **kwargs) -> Experiment:
    return Experiment(**{"mode": "health", "sample_fraction": 0.5, "name": "nbA", "runs_dir": runs,
                         "search_space": SPACE, "progress": "none", "executor": InMemoryExecutor(_outcome), **kwargs})


def test_a_reopened_study_shows_its_own_budget_as_finished(tmp_path):
    _exp(tmp_path, n_trials=3).run()
    reopened = _exp(tmp_path)  # after a kernel restart: no n_trials
    assert reopened.n_trials == 3
    snap = reopened.hub.snapshot()
    assert snap.total_trials == 3 and vm.search_state(snap) == "finished"
    assert vm.overall_label(snap).startswith("3/3 trials")
    reopened.run()  # nothing left to run
    assert len(reopened.results) == 3


def test_an_explicit_budget_extends_the_study_and_is_recorded(tmp_path):
    _exp(tmp_path, n_trials=2).run()
    _exp(tmp_path, n_trials=4).run()
    again = _exp(tmp_path)
    assert again.n_trials == 4 and len(again.results) == 4
    assert vm.search_state(again.hub.snapshot()) == "finished"
    assert again.study.user_attrs["hpo_nb"]["n_trials"] == 4


def test_a_search_started_with_its_own_budget_records_it(tmp_path):
    first = _exp(tmp_path, n_trials=3)
    first.study.set_user_attr("hpo_nb", {**first.study.user_attrs["hpo_nb"], "n_trials": 1})  # another process's
    first.run()
    assert len(first.results) == 3  # the object's own n_trials wins, and is recorded at start
    assert first.study.user_attrs["hpo_nb"]["n_trials"] == 3
    assert _exp(tmp_path).n_trials == 3


def test_a_new_study_without_n_trials_gets_the_documented_default(tmp_path):
    exp = _exp(tmp_path, name="fresh")
    assert exp.n_trials == DEFAULT_N_TRIALS == 20
    assert exp.hub.snapshot().total_trials == 20
    assert exp.study.user_attrs["hpo_nb"]["n_trials"] == 20


def test_a_study_from_before_budgets_were_recorded_reads_the_old_default(tmp_path):
    exp = _exp(tmp_path, n_trials=3)
    legacy = {k: v for k, v in exp.study.user_attrs["hpo_nb"].items() if k != "n_trials"}
    exp.study.set_user_attr("hpo_nb", legacy)
    assert _exp(tmp_path).n_trials == 20


def test_the_dashboard_of_a_reopened_study_reads_its_budget_and_finished(tmp_path):
    """What the new-user check saw after a kernel restart: "3/20 trials ... · not running", "Trials done 3/20"."""
    import re

    _exp(tmp_path, n_trials=3).run()
    dash = _exp(tmp_path).dashboard()
    label = re.sub(r"<[^>]+>", "", dash.overall_label.value)
    assert label.startswith("3/3 trials") and label.endswith("· done"), label
    header = re.sub(r"<[^>]+>", " ", dash.header.value)
    assert "finished" in header and "not running" not in header, header
    done = re.sub(r"<[^>]+>", " ", dash.tiles[0].value)
    assert "Trials done" in done and "3/3" in done, done
    assert dash.stop_button.disabled or dash.stop_button.layout.display == "none"
