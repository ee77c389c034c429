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
from hpo_nb.storage import open_storage, quiet_optuna

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


def _dead_process_trial(tmp_path, entry: dict, runner: str | None = None, grace: int = 3):
    """A study whose only trial was running (journaled) in a process that died: without a ``runner``
    mark, silent past the grace period; with one naming a process of this host that is gone, at once."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1, grace_period=grace)
    study = optuna.create_study(study_name="reattach", storage=storage, direction="maximize")
    with quiet_optuna():  # ask/tell with heartbeats on purpose, as the search does
        trial = study.ask()
    trial.set_user_attr("params_all", dict(PARAMS))
    storage.record_heartbeat(trial._trial_id)
    reattach.journal_writer(storage, trial._trial_id)(entry)
    if runner is not None:
        trial.set_user_attr("runner", runner)
    else:
        time.sleep(grace + 1.5)  # the grace period passes without a beat
    return storage, study, trial


def _gone_runner() -> str:
    """A ``runner`` mark of this host whose process has exited (and been reaped)."""
    import socket
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return f"{socket.gethostname()}:{int(proc.stdout)}"


def _search(storage, study, ex, hub, grace: int = 3):
    search = Search(study, storage, ex, hub, n_trials=1, concurrency=1,
                    suggest=lambda t: dict(PARAMS), spec_for=lambda n, p: TrialSpec(n, "digits", p, max_epochs=3),
                    heartbeat_interval=1, grace_period=grace, sync_interval=0.0)

    def run() -> None:
        with quiet_optuna():  # as Experiment runs a search
            search.run()

    thread = threading.Thread(target=run, daemon=True)
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


@pytest.mark.parametrize("follows", [True, False])
def test_a_process_of_this_host_that_is_gone_is_not_waited_for(tmp_path, monkeypatch, follows):
    transport = MemoryTransport([COMPLETES] if follows else [[running(progress(1, 1))]])
    entry = _dead_process_job(transport)
    # A grace period no test waits out: only "its process is gone" can explain a take-over.
    storage, study, trial = _dead_process_trial(tmp_path, entry, runner=_gone_runner(), grace=600)
    hub = ProgressHub(1, "simple", 1)
    if follows:
        _search(storage, study, executor(transport), hub, grace=600)
        assert [t.state for t in study.get_trials()] == [optuna.trial.TrialState.COMPLETE]
        assert [c[0] for c in transport.calls].count("run") == 1
    else:
        monkeypatch.setattr("hpo_nb.executors.runpod.journal.HttpTransport", lambda endpoint, key: transport)
        monkeypatch.setenv("RUNPOD_ENDPOINT_ID", ENDPOINT)
        monkeypatch.setenv("RUNPOD_API_KEY", KEY)
        local = InMemoryExecutor(lambda job: TrialOutcome(job.spec.trial_number, "complete", accuracy=0.5, score=0.5))
        _search(storage, study, local, hub, grace=600)
        assert transport.cancelled() == ["job-1"]
        assert [t.state for t in study.get_trials()] == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]
        assert study.get_trials()[1].system_attrs["failed_trial"] == 0


def test_died_here_is_sure_only_of_this_hosts_gone_processes():
    import os
    import socket

    from hpo_nb.storage import died_here

    assert died_here(_gone_runner())
    assert not died_here(f"{socket.gethostname()}:{os.getpid()}")  # this very process
    assert not died_here(f"{socket.gethostname()}:1")  # alive (init), or not ours to signal
    assert not died_here(f"another-host-{os.getpid()}:{_gone_runner().rsplit(':', 1)[1]}")
    assert not died_here(None) and not died_here("no pid here")
