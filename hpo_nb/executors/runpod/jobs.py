"""RunPod's job semantics, in memory: the state behind the loopback endpoint's HTTP routes.

A FIFO queue of jobs; each job goes IN_QUEUE -> IN_PROGRESS (a worker took it) -> COMPLETED,
FAILED, CANCELLED or TIMED_OUT, following RunPod's documented API: ``/cancel`` ends a queued
job at once and asks a running job's worker to stop; ``policy.executionTimeout`` (ms) ends a
job TIMED_OUT; ``/retry`` re-queues a FAILED or TIMED_OUT job. No I/O and no clock of its own
beyond ``time.monotonic``: ``loopback`` serves it over HTTP and runs the worker processes.
"""

from __future__ import annotations

import collections
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")
DEFAULT_EXECUTION_TIMEOUT_MS = 600_000  # RunPod's default: 10 minutes


@dataclass
class Job:
    """One job as the endpoint holds it."""

    id: str
    input: Any
    policy: dict[str, Any]
    created: float = field(default_factory=time.monotonic)
    status: str = "IN_QUEUE"
    worker: str | None = None
    taken_at: float | None = None
    done_at: float | None = None
    output: Any = None
    error: str | None = None
    stream: list[Any] = field(default_factory=list)
    streamed: int = 0
    retries: int = 0

    def delay_ms(self) -> int:
        """Returns: milliseconds queued (until taken, or until now)."""
        end = self.taken_at if self.taken_at is not None else (self.done_at or time.monotonic())
        return int(1000 * (end - self.created))

    def execution_ms(self) -> int:
        """Returns: milliseconds on a worker (until done, or until now)."""
        if self.taken_at is None:
            return 0
        return int(1000 * ((self.done_at or time.monotonic()) - self.taken_at))

    def status_json(self) -> dict[str, Any]:
        """Returns: the job's ``/status`` answer, shaped like RunPod's."""
        data: dict[str, Any] = {"id": self.id, "status": self.status, "delayTime": self.delay_ms(),
                                "executionTime": self.execution_ms()}
        if self.worker:
            data["workerId"] = self.worker
        if self.output is not None:
            data["output"] = self.output
        if self.error is not None:
            data["error"] = self.error
        if self.retries:
            data["retries"] = self.retries
        return data

    def finish(self, status: str, *, output: Any = None, error: str | None = None) -> None:
        """End the job in ``status``; a job that did not complete keeps no output.

        Args:
            status: a final state.
            output: the handler's result (COMPLETED).
            error: the reason (FAILED, TIMED_OUT).
        """
        self.status = status
        self.done_at = time.monotonic()
        if output is not None or status == "COMPLETED":
            self.output = output
        else:
            self.output = None  # drop the last progress payload: a failed job has no output
        self.error = error


class JobBoard:
    """All jobs of one endpoint: the queue, the states, the stop requests for workers."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.queue: collections.deque[str] = collections.deque()
        self.stops: dict[str, set[str]] = collections.defaultdict(set)  # worker id -> job ids to stop
        self.retried = 0

    def create(self, job_input: Any, policy: Any) -> Job:
        """Queue a job (``/run``).

        Args:
            job_input: the request's ``input``.
            policy: the request's ``policy`` (ignored unless a dict).

        Returns:
            The new job, IN_QUEUE.
        """
        job = Job(id=f"{uuid.uuid4()}-local", input=job_input, policy=policy if isinstance(policy, dict) else {})
        self.jobs[job.id] = job
        self.queue.append(job.id)
        return job

    def cancel(self, job: Job) -> None:
        """``/cancel``: a queued job ends at once; a running one also asks its worker to stop."""
        if job.status == "IN_QUEUE":
            self.queue.remove(job.id)
            job.finish("CANCELLED")
        elif job.status == "IN_PROGRESS":
            job.finish("CANCELLED")
            if job.worker:
                self.stops[job.worker].add(job.id)

    def retry(self, job: Job) -> str | None:
        """``/retry``: queue a FAILED or TIMED_OUT job again.

        Returns:
            None, or why the job cannot be retried.
        """
        if job.status not in ("FAILED", "TIMED_OUT"):
            return f"only FAILED or TIMED_OUT jobs can be retried, not {job.status}"
        job.status, job.worker, job.taken_at, job.done_at = "IN_QUEUE", None, None, None
        job.output = job.error = None
        job.created = time.monotonic()
        job.retries += 1
        self.retried += 1
        self.queue.append(job.id)
        return None

    def purge(self) -> int:
        """``/purge-queue``: cancel every queued job. Returns: how many."""
        removed = 0
        while self.queue:
            self.jobs[self.queue.popleft()].finish("CANCELLED")
            removed += 1
        return removed

    def job_counts(self) -> dict[str, int]:
        """Returns: the ``jobs`` part of ``/health``."""
        states = collections.Counter(j.status for j in self.jobs.values())
        return {"completed": states["COMPLETED"], "failed": states["FAILED"] + states["TIMED_OUT"],
                "inProgress": states["IN_PROGRESS"], "inQueue": states["IN_QUEUE"], "retried": self.retried}

    def take(self, worker_id: str, size: int) -> list[Job]:
        """A worker takes up to ``size`` queued jobs, oldest first. Returns: those jobs, IN_PROGRESS."""
        taken = []
        while self.queue and len(taken) < size:
            job = self.jobs[self.queue.popleft()]
            job.status, job.worker, job.taken_at = "IN_PROGRESS", worker_id, time.monotonic()
            taken.append(job)
        return taken

    def report(self, job: Job, body: dict[str, Any]) -> bool:
        """A worker posted to job-done: progress (``IN_PROGRESS``) or the result.

        Args:
            job: the job.
            body: the posted JSON (``status``, ``output``, ``error``).

        Returns:
            True if this was the job's result (the worker no longer holds it).
        """
        if body.get("status") == "IN_PROGRESS":
            if job.status == "IN_PROGRESS":
                job.output = body.get("output")
            return False
        if job.status == "IN_PROGRESS":
            if body.get("error"):
                job.finish("FAILED", error=str(body["error"]))
            else:
                job.finish("COMPLETED", output=body.get("output"))
        return True

    def fail_running(self, job_ids: Iterable[str], error: str) -> None:
        """Jobs whose worker died or dropped them end FAILED with ``error``."""
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is not None and job.status == "IN_PROGRESS":
                job.finish("FAILED", error=error)

    def expire(self, now: float) -> bool:
        """End running jobs past their ``executionTimeout`` TIMED_OUT (and ask workers to stop).

        Returns:
            True if any job ended.
        """
        changed = False
        for job in self.jobs.values():
            if job.status == "IN_PROGRESS" and job.taken_at is not None:
                limit = job.policy.get("executionTimeout", DEFAULT_EXECUTION_TIMEOUT_MS)
                if isinstance(limit, (int, float)) and 1000 * (now - job.taken_at) > limit:
                    job.finish("TIMED_OUT", error=f"execution timeout of {int(limit)} ms exceeded")
                    if job.worker:
                        self.stops[job.worker].add(job.id)
                    changed = True
        return changed
