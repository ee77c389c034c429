"""RunPod faults that cost a trial or money, against ``MemoryTransport`` (milliseconds each): a
worker lost without FAILED (retried within the default stall timeout), a POST /run whose answer
is lost after acceptance (exactly one job), and the cost of cancelled, stalled, lost and
fallen-back attempts (all counted, toward the trial and the spending cap)."""

from __future__ import annotations

import itertools
import threading

import pytest

from hpo_nb.executors.base import TrialJob
from hpo_nb.executors.runpod import RunPodSettings
from hpo_nb.executors.runpod.transport import MemoryTransport, Retryable, ended, queued, running

from .test_runpod_states import COMPLETES, PRICE, SPEC, executor, notices, progress, run_one

pytestmark = pytest.mark.timeout(30)


class FakeClock:
    """Monotonic seconds that advance ``step`` on every read."""

    def __init__(self, step: float) -> None:
        self._ticks = itertools.count()
        self.step = step

    def __call__(self) -> float:
        return next(self._ticks) * self.step


def test_stall_detection_is_on_by_default_well_inside_the_execution_timeout():
    settings = RunPodSettings(endpoint_id="e", api_key="k")
    assert settings.stall_timeout_s is not None
    assert settings.stall_timeout_s * 5 < settings.execution_timeout_ms(SPEC) / 1000


def test_a_job_left_in_progress_by_a_dead_worker_is_retried_within_the_default_stall_timeout():
    dead = [queued(), running(progress(1, 0), execution_ms=0)]  # IN_PROGRESS forever, never a new payload
    transport = MemoryTransport([dead, COMPLETES])
    ex = executor(transport)  # the default stall_timeout_s
    stall = ex.settings.stall_timeout_s
    ex._clock = FakeClock(step=stall / 20)  # a poll every 1/20 of the stall timeout
    outcome, events = run_one(ex)
    assert outcome.state == "complete" and outcome.extra["attempts"] == 2
    assert transport.cancelled() == ["job-1"]  # the dead worker's job is cancelled, not left billing
    assert f"made no progress for {stall:.0f}s" in notices(events)[0]
    # recovered within about one stall timeout of the attempt starting: ~20 polls of the fake clock
    assert transport.jobs["job-1"].polls <= 25


def test_no_progress_while_queued_is_not_a_stall():
    waits = [queued()] * 30 + COMPLETES[1:]  # a long cold start, then a healthy run
    transport = MemoryTransport([waits])
    ex = executor(transport)
    ex._clock = FakeClock(step=ex.settings.stall_timeout_s / 10)
    outcome, _ = run_one(ex)
    assert outcome.state == "complete" and outcome.extra["attempts"] == 1 and not transport.cancelled()


def test_a_post_whose_answer_is_lost_after_acceptance_is_not_sent_again():
    transport = MemoryTransport([COMPLETES], faults={"run": [Retryable("ReadTimeout", sent=True)]})
    outcome, events = run_one(executor(transport))
    assert len(transport.jobs) == 1 and [c for c in transport.calls if c[0] == "run"] == [("run", None)]
    assert outcome.state == "failed" and "may have accepted the job" in outcome.error
    assert "not sent again" in notices(events)[0]


def test_a_post_that_cannot_have_been_accepted_is_retried_into_exactly_one_job():
    transport = MemoryTransport([COMPLETES], faults={"run": [Retryable("ConnectionError"), Retryable("HTTP 429")]})
    outcome, _ = run_one(executor(transport))
    assert outcome.state == "complete" and len(transport.jobs) == 1
    assert [c[0] for c in transport.calls].count("run") == 3


def test_the_http_transport_tells_a_refused_connection_from_a_lost_answer():
    import requests

    from hpo_nb.executors.runpod.transport import _unsent

    assert _unsent(requests.ConnectTimeout("connect timed out"))
    assert not _unsent(requests.ReadTimeout("read timed out"))  # sent: the server may have acted on it
    assert not _unsent(requests.ConnectionError("Connection aborted: RemoteDisconnected"))


def test_a_stopped_job_is_billed_until_its_cancel_even_without_execution_times():
    # The endpoint reports executionTime only at the end: the final CANCELLED status carries it.
    steps = [queued(), *[running(progress(1, 0), execution_ms=0)] * 1000, ended("CANCELLED", execution_ms=5000)]
    transport = MemoryTransport([steps])
    stop = threading.Event()
    ex = executor(transport)
    outcome, _ = run_one(ex, stop=stop, on_event=lambda e: stop.set() if type(e).__name__ == "TrialStatus"
                         and e.status == "running" else None)
    assert outcome.state == "stopped" and transport.cancelled() == ["job-1"]
    assert outcome.extra["cost_usd"] == pytest.approx(5.0 * PRICE) and ex.spent_usd == pytest.approx(5.0 * PRICE)


def test_stalled_and_lost_attempts_without_execution_times_cost_what_the_client_saw():
    from hpo_nb.executors.runpod.transport import NotFound

    lost = [queued(), running(progress(1, 0), execution_ms=0), running(progress(2, 1), execution_ms=0),
            NotFound("HTTP 404 on status")]
    transport = MemoryTransport([lost, COMPLETES])
    ex = executor(transport)
    ex._clock = FakeClock(step=1.0)  # one second per clock read
    outcome, _ = run_one(ex)
    assert outcome.state == "complete" and outcome.extra["attempts"] == 2
    # the lost attempt counts the seconds it was seen running, on top of the second attempt's 3 s
    assert outcome.extra["cost_usd"] > 3.0 * PRICE + 1.0 * PRICE
    assert ex.spent_usd == pytest.approx(outcome.extra["cost_usd"])


def test_a_trial_that_fell_back_to_local_keeps_its_remote_time_and_cost_and_says_where_it_ran():
    failed = [queued(), running(progress(1, 0), execution_ms=1000), ended("FAILED", error="CUDA error", execution_ms=2000)]
    transport = MemoryTransport([failed])
    ex = executor(transport, http_retries=1, max_retries=1)
    real_run = transport.run
    calls = {"n": 0}

    def run_then_vanish(payload, policy):  # the endpoint goes away after the first job
        calls["n"] += 1
        if calls["n"] > 1:
            raise Retryable("ConnectionError")
        return real_run(payload, policy)

    transport.run = run_then_vanish
    outcome, events = run_one(ex)
    assert outcome.state == "complete" and outcome.extra["executor"] == "local" and outcome.extra["ran"] == "locally"
    assert outcome.extra["cost_usd"] == pytest.approx(2.0 * PRICE) and outcome.extra["execution_s"] == 2.0
    assert outcome.extra["attempts"] == 1 and outcome.extra["job_id"] == "job-1"
    assert "unreachable" in outcome.extra["fallback"]
    assert ex.spent_usd == pytest.approx(2.0 * PRICE)  # the cap counts it


def test_the_spending_cap_counts_cancelled_attempts():
    steps = [queued(), *[running(progress(1, 0), execution_ms=0)] * 1000, ended("CANCELLED", execution_ms=4000)]
    transport = MemoryTransport([steps])
    ex = executor(transport, budget_usd=3.0 * PRICE)
    stop = threading.Event()
    run_one(ex, stop=stop, on_event=lambda e: stop.set() if type(e).__name__ == "TrialStatus"
            and e.status == "running" else None)
    assert ex.spent_usd == pytest.approx(4.0 * PRICE) and not ex.accepting()
