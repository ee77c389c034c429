"""The RunPod job state machine, case by case, against ``MemoryTransport``: milliseconds each,
no worker process, no HTTP server, no TensorFlow. (Real workers: tests/test_runpod.py.)"""

from __future__ import annotations

import threading

import pytest

from hpo_nb.errors import ConfigError
from hpo_nb.executors.base import TrialJob
from hpo_nb.executors.memory import InMemoryExecutor
from hpo_nb.executors.runpod import RunPodExecutor, wire
from hpo_nb.executors.runpod.transport import (MemoryTransport, NotFound, Rejected, Retryable, ended, queued,
                                               running)
from hpo_nb.progress import EpochEnded, EpochProgress, Notice, TrialStarted, TrialStatus
from hpo_nb.spec import TrialOutcome, TrialSpec

pytestmark = pytest.mark.timeout(30)

KEY = "rpa_STATEKEY_9a8b7c6d5e4f"
PARAMS = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_layers": 0, "batch_size": 64}
SPEC = TrialSpec(trial_number=5, dataset="digits", params=PARAMS, max_epochs=3, seed=1)
PRICE = 0.001  # dollars per second of execution


def progress(seq: int, ended_epochs: int, epoch: int | None = None, batch: int = 5) -> dict:
    """A worker's cumulative progress payload: epochs 1..ended_epochs ended, ``epoch`` running."""
    return wire.progress_payload(seq, "w1", SPEC.trial_number, {
        "epoch": epoch if epoch is not None else ended_epochs + 1, "total_epochs": SPEC.max_epochs,
        "batch": batch, "total_batches": 10, "loss": 0.5, "accuracy": 0.5,
        "epochs": [{"epoch": e, "metrics": {"val_accuracy": e / 10, "loss": 1.0 / e}}
                   for e in range(1, ended_epochs + 1)]})


def result(epochs: int = 3) -> dict:
    """A COMPLETED job's output: the worker's ``{"outcome": ...}``."""
    history = {"val_accuracy": [e / 10 for e in range(1, epochs + 1)], "loss": [1.0 / e for e in range(1, epochs + 1)]}
    outcome = TrialOutcome(SPEC.trial_number, "complete", accuracy=epochs / 10, score=epochs / 10, history=history,
                           epochs_run=epochs, model_path="/worker/model.keras", extra={"worker": "w1"})
    return {"outcome": outcome.to_dict()}


COMPLETES = [queued(), running(progress(1, 0)), running(progress(2, 1), execution_ms=1500),
             running(progress(3, 2), execution_ms=2500), ended("COMPLETED", result(), execution_ms=3000)]


def executor(transport: MemoryTransport, **options) -> RunPodExecutor:
    options = {"poll_interval_s": 0.001, "max_backoff_s": 0.001, "price_per_second": PRICE, **options}
    return RunPodExecutor(concurrency=2, endpoint_id="state-endpoint-id", api_key=KEY, transport=transport,
                          local=lambda n: InMemoryExecutor(_local_trial, n), **options)


def _local_trial(job: TrialJob) -> TrialOutcome:
    return TrialOutcome(job.spec.trial_number, "complete", accuracy=0.5, extra={"ran": "locally"})


def run_one(ex: RunPodExecutor, report=None, stop: threading.Event | None = None, on_event=None):
    """Prepare, submit one trial, wait: (outcome, events)."""
    events: list = []

    def publish(event):
        events.append(event)
        if on_event is not None:
            on_event(event)

    ex.prepare(publish)
    job = TrialJob(spec=SPEC, publish=publish, stop=stop or threading.Event(), report=report)
    outcome = ex.submit(job).result(timeout=10)
    ex.shutdown()
    return outcome, events


def notices(events) -> list[str]:
    return [e.message for e in events if isinstance(e, Notice)]


# ------------------------------------------------------------------ the happy path


def test_a_completed_job_reports_queue_worker_epochs_cost_and_outcome():
    transport = MemoryTransport([COMPLETES])
    outcome, events = run_one(executor(transport, epoch_timeout_s=60, startup_s=120))
    assert outcome.state == "complete" and outcome.accuracy == pytest.approx(0.3)
    assert outcome.model_path is None  # the model stays on the worker
    assert outcome.extra == {"worker": "w1", "executor": "runpod", "delay_s": 0.01, "execution_s": 3.0,
                             "cost_usd": pytest.approx(3.0 * PRICE), "attempts": 1, "job_id": "job-1"}
    job = transport.jobs["job-1"]
    assert job.input == wire.encode_spec(SPEC) and job.policy == {"executionTimeout": 1000 * (120 + 3 * 60)}
    assert isinstance(events[0], TrialStarted) and (events[0].status, events[0].where) == ("queued", "runpod")
    assert [(e.status, e.where) for e in events if isinstance(e, TrialStatus)] == [("running", "runpod:w1")]
    assert [e.epoch for e in events if isinstance(e, EpochEnded)] == [1, 2, 3]  # epoch 3 from the result
    assert [e.epoch for e in events if isinstance(e, EpochProgress)] == [1, 2, 3]
    assert not notices(events) and transport.cancelled() == []


# ------------------------------------------------------------------ retried states


def test_a_failed_job_is_retried_and_both_attempts_are_billed():
    transport = MemoryTransport([[running(progress(1, 1)), ended("FAILED", error="CUDA error", execution_ms=1000)],
                                 COMPLETES])
    outcome, events = run_one(executor(transport))
    assert outcome.state == "complete" and outcome.extra["attempts"] == 2 and outcome.extra["job_id"] == "job-2"
    assert outcome.extra["execution_s"] == 4.0 and outcome.extra["cost_usd"] == pytest.approx(4.0 * PRICE)
    assert notices(events) == ["trial 5: RunPod job failed (CUDA error); retry 1 of 2."]
    assert [e.epoch for e in events if isinstance(e, EpochEnded)] == [1, 1, 2, 3]  # each attempt shows its epochs


def test_timed_out_every_time_fails_after_max_retries_plus_one_attempts():
    transport = MemoryTransport(default=[running(progress(1, 0)), ended("TIMED_OUT", error="execution timeout")])
    outcome, events = run_one(executor(transport, max_retries=1))
    assert outcome.state == "failed" and outcome.error == "RunPod job timed out (execution timeout) (2 attempts)"
    assert outcome.extra["attempts"] == 2 and len(transport.jobs) == 2
    assert notices(events) == ["trial 5: RunPod job timed out (execution timeout); retry 1 of 1."]


def test_a_stalled_worker_is_cancelled_and_the_trial_retried():
    lost = [running(progress(1, 1))]  # IN_PROGRESS forever, never a newer payload
    transport = MemoryTransport([lost, COMPLETES])
    outcome, events = run_one(executor(transport, stall_timeout_s=0.05))
    assert outcome.state == "complete" and outcome.extra["attempts"] == 2
    assert transport.cancelled() == ["job-1"]
    assert notices(events) == ["trial 5: RunPod job made no progress for 0s; retry 1 of 2."]


def test_a_job_the_endpoint_forgot_is_lost_and_retried():
    transport = MemoryTransport([[queued(), NotFound("HTTP 404 on status")], COMPLETES])
    outcome, events = run_one(executor(transport))
    assert outcome.state == "complete" and outcome.extra["attempts"] == 2
    assert "was lost (its id is unknown to the endpoint)" in notices(events)[0]


def test_status_faults_back_off_and_the_job_is_still_followed():
    transport = MemoryTransport([[queued(), Retryable("HTTP 429"), Retryable("ConnectionError"), *COMPLETES[1:]]])
    outcome, events = run_one(executor(transport))
    assert outcome.state == "complete" and outcome.extra["attempts"] == 1 and not notices(events)


def test_an_endpoint_that_stops_answering_mid_job_cancels_and_retries():
    transport = MemoryTransport([[running(progress(1, 0)), Retryable("HTTP 503")], COMPLETES])
    outcome, events = run_one(executor(transport, http_retries=1))
    assert outcome.state == "complete" and transport.cancelled() == ["job-1"]
    assert "could not be followed (RunPod endpoint unreachable (HTTP 503))" in notices(events)[0]


# ------------------------------------------------------------------ final states


def test_an_invalid_spec_failure_is_not_retried():
    transport = MemoryTransport([[ended("FAILED", error=f"{wire.INVALID_PREFIX}: params.filters: bad")]])
    outcome, events = run_one(executor(transport))
    assert outcome.state == "failed" and outcome.error.startswith("RunPod worker rejected the trial: invalid trial")
    assert len(transport.jobs) == 1 and not notices(events)


def test_a_job_cancelled_outside_hpo_nb_fails_the_trial_without_retry():
    transport = MemoryTransport([[queued(), ended("CANCELLED")]])
    outcome, _ = run_one(executor(transport))
    assert outcome.state == "failed" and "cancelled outside hpo-nb" in outcome.error and len(transport.jobs) == 1


def test_the_pruner_stops_a_remote_trial_and_its_job_is_cancelled():
    transport = MemoryTransport([[running(progress(1, 1)), running(progress(2, 2)), running(progress(3, 2))]])
    reports = []
    outcome, _ = run_one(executor(transport), report=lambda epoch, value: reports.append(epoch) or epoch == 2)
    assert outcome.state == "pruned" and outcome.epochs_run == 2 and outcome.accuracy == pytest.approx(0.2)
    assert outcome.history["val_accuracy"] == pytest.approx([0.1, 0.2]) and reports == [1, 2]
    assert transport.cancelled() == ["job-1"] and outcome.extra["attempts"] == 1


def test_stop_cancels_the_running_job_and_keeps_what_was_seen():
    stop = threading.Event()
    transport = MemoryTransport([[running(progress(1, 0)), running(progress(2, 1))]])
    outcome, _ = run_one(executor(transport), stop=stop,
                         on_event=lambda e: isinstance(e, EpochEnded) and stop.set())
    assert outcome.state == "stopped" and outcome.epochs_run == 1 and transport.cancelled() == ["job-1"]


def test_a_failed_job_text_never_carries_the_key():
    transport = MemoryTransport(default=[ended("FAILED", error=f"boom with Bearer {KEY}")])
    outcome, events = run_one(executor(transport, max_retries=1))
    assert outcome.state == "failed" and KEY not in outcome.error and "***" in outcome.error
    assert all(KEY not in n for n in notices(events))


# ------------------------------------------------------------------ budget and fallback


def test_the_budget_cap_stops_new_trials_with_one_notice():
    transport = MemoryTransport([COMPLETES])
    ex = executor(transport, budget_usd=0.001)
    events: list = []
    ex.prepare(events.append)
    assert ex.accepting()
    outcome = ex.submit(TrialJob(spec=SPEC, publish=events.append, stop=threading.Event())).result(timeout=10)
    assert outcome.extra["cost_usd"] > 0.001 and ex.spent_usd == pytest.approx(3.0 * PRICE)
    assert not ex.accepting() and not ex.accepting()
    assert notices(events) == ["RunPod budget of $0.00 reached (spent $0.00): no new trials."]
    ex.shutdown()


@pytest.mark.parametrize("fault, reason", [
    (Rejected("RunPod rejected the API key (401 Unauthorized)"), "rejected the API key"),
    (NotFound("HTTP 404 on health"), "endpoint not found (404): check RUNPOD_ENDPOINT_ID"),
    (Retryable("ConnectionError"), "unreachable (ConnectionError)"),
])
def test_an_unusable_endpoint_falls_back_to_local_trials(fault, reason):
    transport = MemoryTransport(faults={"health": [fault] * 3})
    ex = executor(transport)
    outcome, events = run_one(ex)
    assert ex.describe() == {"executor": "local"} and outcome.extra == {"ran": "locally"}
    assert len(notices(events)) == 1 and reason in notices(events)[0] and "running trials locally" in notices(events)[0]
    assert ("run", None) not in transport.calls


def test_without_fallback_an_unusable_endpoint_is_a_config_error():
    transport = MemoryTransport(faults={"health": [Rejected("RunPod rejected the API key (401 Unauthorized)")]})
    with pytest.raises(ConfigError, match="rejected the API key.*fallback"):
        executor(transport, fallback=False).prepare(lambda e: None)


def test_run_requests_that_keep_failing_fall_back_to_local_mid_search():
    transport = MemoryTransport(faults={"run": [Retryable("HTTP 503")] * 3})
    outcome, events = run_one(executor(transport, http_retries=2))
    assert outcome.state == "complete" and outcome.extra["executor"] == "local"
    assert outcome.extra["fallback"] == "RunPod endpoint unreachable (HTTP 503)"
    assert [c for c in transport.calls if c[0] == "run"] == [("run", None)] * 3  # retried, then gave up
    assert "running trials locally" in notices(events)[0]


def test_a_refused_job_is_a_failed_trial():
    from hpo_nb.executors.runpod.transport import HttpError

    transport = MemoryTransport(faults={"run": [HttpError("HTTP 400")]})
    outcome, _ = run_one(executor(transport))
    assert outcome.state == "failed" and outcome.error == "RunPod refused the job (HTTP 400)"
