"""Re-attach: RunPod jobs are journaled on their trials; a new process on the study follows a dead
process's job to its end on the original trial (progress, result, whole cost) instead of failing
and retrying it, and cancels the jobs it will not follow. Against ``MemoryTransport`` (milliseconds),
plus two searches on a real SQLite study with heartbeats (marked slow: they wait out a grace period).
The real worker loop over HTTP: tests/test_runpod.py::test_a_new_process_reattaches_to_the_job_of_a_killed_one."""

from __future__ import annotations

import threading
import time

import optuna
import pytest

from hpo_nb import reattach
from hpo_nb.executors.base import TrialJob
from hpo_nb.executors.memory import InMemoryExecutor
from hpo_nb.executors.runpod import abandon_job, journal, wire
from hpo_nb.executors.runpod.tracking import Attempts
from hpo_nb.executors.runpod.transport import MemoryTransport, ended, running
from hpo_nb.progress import EpochEnded, Notice, ProgressHub
from hpo_nb.search import Search
from hpo_nb.spec import TrialOutcome, TrialSpec
from hpo_nb.storage import open_storage

from .test_runpod_states import COMPLETES, KEY, PARAMS, PRICE, SPEC, executor, progress

pytestmark = pytest.mark.timeout(60)
ENDPOINT = "state-endpoint-id"  # what test_runpod_states.executor uses


def _dead_process_job(transport: MemoryTransport, earlier_ms: float = 0.0) -> dict:
    """What a process that died left: a job RunPod accepted, and its journal entry."""
    job_id = transport.run(wire.encode_spec(SPEC), {"executionTimeout": 60_000})
    attempts = Attempts(price=PRICE, attempts=1, execution_ms=earlier_ms)
    return journal.entry(job_id, ENDPOINT, attempts)


def _follow(ex, entry, report=None):
    events: list = []
    ex.prepare(events.append)
    future = ex.follow(TrialJob(spec=SPEC, publish=events.append, stop=threading.Event(), report=report), entry)
    assert future is not None
    outcome = future.result(timeout=10)
    ex.shutdown()
    return outcome, events


def test_an_accepted_job_is_journaled_without_secrets():
    transport = MemoryTransport([COMPLETES])
    ex = executor(transport)
    entries: list[dict] = []
    ex.prepare(lambda e: None)
    job = TrialJob(spec=SPEC, publish=lambda e: None, stop=threading.Event(), journal=entries.append)
    assert ex.submit(job).result(timeout=10).state == "complete"
    ex.shutdown()
    (entry,) = entries
    assert entry["executor"] == "runpod" and entry["id"] == "job-1" and entry["attempt"] == 1
    assert entry["endpoint"] == journal.endpoint_key(ENDPOINT)
    assert KEY not in repr(entry) and ENDPOINT not in repr(entry)


def test_a_followed_job_reports_its_epochs_result_and_whole_cost_and_is_never_sent_again():
    transport = MemoryTransport([COMPLETES])
    entry = _dead_process_job(transport, earlier_ms=2000.0)  # an earlier failed attempt ran 2 s
    reports: list = []
    outcome, events = _follow(executor(transport), entry, report=lambda e, v: reports.append(e) or False)
    assert outcome.state == "complete" and outcome.accuracy == pytest.approx(0.3)
    assert outcome.extra["job_id"] == "job-1" and outcome.extra["attempts"] == 1
    assert outcome.extra["cost_usd"] == pytest.approx((2.0 + 3.0) * PRICE)  # the earlier attempt counts too
    assert [c[0] for c in transport.calls].count("run") == 1  # only the dead process's POST
    assert [e.epoch for e in events if isinstance(e, EpochEnded)] == [1, 2, 3] and reports == [1, 2, 3]


def test_a_followed_job_that_fails_is_retried_as_a_new_job():
    transport = MemoryTransport([[running(progress(1, 1)), ended("FAILED", error="worker lost")], COMPLETES])
    outcome, events = _follow(executor(transport), _dead_process_job(transport))
    assert outcome.state == "complete" and outcome.extra["attempts"] == 2 and outcome.extra["job_id"] == "job-2"
    assert any("retry 1 of 2" in e.message for e in events if isinstance(e, Notice))


def test_a_job_of_another_endpoint_or_an_unknown_journal_is_not_followed():
    transport = MemoryTransport([COMPLETES])
    entry = _dead_process_job(transport)
    ex = executor(transport)
    job = TrialJob(spec=SPEC, publish=lambda e: None, stop=threading.Event())
    assert ex.follow(job, {**entry, "endpoint": journal.endpoint_key("another-endpoint")}) is None
    assert ex.follow(job, {"executor": "elsewhere", "id": "x"}) is None
    assert InMemoryExecutor(lambda j: TrialOutcome(0, "complete")).follow(job, entry) is None
    ex.shutdown()


def test_a_job_nobody_follows_is_cancelled(monkeypatch):
    transport = MemoryTransport([[running(progress(1, 1))]])
    entry = _dead_process_job(transport)
    assert abandon_job(entry, transport) == "cancelled its RunPod job job-1 (not followed here)"
    assert transport.cancelled() == ["job-1"]
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)  # no credentials for its endpoint here: say what to do
    assert "cancel it in the RunPod console" in abandon_job(entry)


# ------------------------------------------------------------------ the search, on a real study


def _dead_process_trial(tmp_path, entry: dict):
    """A study whose only trial was running (journaled) in a process that died: silent past the grace period."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1, grace_period=3)
    study = optuna.create_study(study_name="reattach", storage=storage, direction="maximize")
    trial = study.ask()
    trial.set_user_attr("params_all", dict(PARAMS))
    storage.record_heartbeat(trial._trial_id)
    reattach.journal_writer(storage, trial._trial_id)(entry)
    time.sleep(4.5)  # the grace period (3 s) passes without a beat
    return storage, study, trial


def _search(storage, study, ex, hub):
    search = Search(study, storage, ex, hub, n_trials=1, concurrency=1,
                    suggest=lambda t: dict(PARAMS), spec_for=lambda n, p: TrialSpec(n, "digits", p, max_epochs=3),
                    heartbeat_interval=1, grace_period=3, sync_interval=0.0)
    thread = threading.Thread(target=search.run, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()


@pytest.mark.slow
def test_a_new_search_follows_the_dead_process_job_and_records_it_on_the_original_trial(tmp_path):
    transport = MemoryTransport([COMPLETES])
    storage, study, trial = _dead_process_trial(tmp_path, _dead_process_job(transport))
    hub = ProgressHub(1, "simple", 1)
    _search(storage, study, executor(transport), hub)
    trials = study.get_trials()
    assert len(trials) == 1, "followed, not failed and retried"
    assert trials[0].state == optuna.trial.TrialState.COMPLETE and trials[0].value == pytest.approx(0.3)
    assert trials[0].user_attrs["extra"]["job_id"] == "job-1"
    assert [c[0] for c in transport.calls].count("run") == 1  # exactly one job, the dead process's
    assert any("following its runpod job job-1" in n for n in hub.snapshot().notices)


@pytest.mark.slow
def test_a_local_search_cancels_the_dead_process_job_and_retries_its_trial(tmp_path, monkeypatch):
    transport = MemoryTransport([[running(progress(1, 1))]])
    monkeypatch.setattr("hpo_nb.executors.runpod.journal.HttpTransport", lambda endpoint, key: transport)
    monkeypatch.setenv("RUNPOD_ENDPOINT_ID", ENDPOINT)
    monkeypatch.setenv("RUNPOD_API_KEY", KEY)
    storage, study, trial = _dead_process_trial(tmp_path, _dead_process_job(transport))
    specs: list[TrialSpec] = []

    def local(job: TrialJob) -> TrialOutcome:
        specs.append(job.spec)
        return TrialOutcome(job.spec.trial_number, "complete", accuracy=0.5, score=0.5)

    hub = ProgressHub(1, "simple", 1)
    _search(storage, study, InMemoryExecutor(local), hub)
    assert transport.cancelled() == ["job-1"]  # not left running (and billing) unseen
    states = [t.state for t in study.get_trials()]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]
    assert [(s.trial_number, s.retry_of) for s in specs] == [(1, 0)]  # the retry, with the original's seed
    assert reattach.journal_of(study.get_trials()[1]) is None  # the retry does not inherit the old job
    assert any("cancelled its RunPod job job-1" in n for n in hub.snapshot().notices)
