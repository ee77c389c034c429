"""How the executor reaches a RunPod endpoint: one request per call, faults as typed errors.

``Transport`` is the small interface the job state machine needs (httpx's transport idea):
``health``, ``run``, ``status``, ``cancel``. ``HttpTransport`` speaks RunPod's ``/v2`` API
over ``requests`` (the same requests the runpod SDK's ``Endpoint`` sends, without its import-
time logging set-up); ``MemoryTransport`` is an in-memory endpoint whose jobs a test scripts
(queued, progress, COMPLETED, FAILED, TIMED_OUT, cancelled, lost, HTTP faults), so every state
of the machine is a millisecond test. A transport never retries: ``call_with_backoff`` is the
one retry policy, for ``Retryable`` faults only.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Union

DEFAULT_BASE_URL = "https://api.runpod.ai/v2"
RETRYABLE_HTTP = (408, 425, 429, 500, 502, 503, 504)
REFUSED_HTTP = (408, 425, 429, 503)  # "not taken, try later": the request was not acted on


class TransportError(Exception):
    """A request to the endpoint did not give an answer."""


class Retryable(TransportError):
    """Worth retrying after a pause: a connection error, a timeout, 429 or a 5xx.

    Args:
        reason: a short label for messages (``"HTTP 429"``, ``"ConnectionError"``).
        retry_after: seconds the server asked to wait, if it said.
        sent: True if the request reached the endpoint and may have been acted on (a read
            timeout, a dropped connection after sending, 500/502/504); False if it cannot have
            been (no connection, 408, 425, 429, 503). Only requests with ``sent=False`` may be
            sent again when sending twice costs something (``POST /run``).
    """

    def __init__(self, reason: str, retry_after: float | None = None, sent: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.sent = sent


class MaybeAccepted(TransportError):
    """A request that must not be sent twice got no clear answer: the endpoint may have acted on it."""


class Rejected(TransportError):
    """The endpoint rejected the API key (401/403)."""


class NotFound(TransportError):
    """404: the job id (or, on ``health``, the endpoint) is unknown."""


class HttpError(TransportError):
    """An HTTP error that retrying cannot fix."""


class Unreachable(TransportError):
    """The endpoint gave no answer, even after backing off."""


def call_with_backoff(call: Callable[[], Any], *, retries: int, max_backoff_s: float,
                      stop: threading.Event | None = None, once_sent: bool = False) -> Any:
    """``call()``, retried with jittered exponential backoff while it raises ``Retryable``.

    Args:
        call: one transport request.
        retries: how many times to retry (0: one try).
        max_backoff_s: the longest pause; a server's ``Retry-After`` is capped by it too.
        stop: if given, a set event ends the pauses (and the retries) at once.
        once_sent: the request must not run twice (``POST /run`` starts a billed job): retry
            only faults where it cannot have reached the endpoint (``Retryable.sent`` False).

    Returns:
        What ``call`` returned.

    Raises:
        MaybeAccepted: with ``once_sent``, a fault after the request may have been acted on.
        Unreachable: every try was ``Retryable`` (or ``stop`` was set while waiting).
        TransportError: any other fault, at once.
    """
    delay = 0.5
    last = ""
    for attempt in range(retries + 1):
        try:
            return call()
        except Retryable as exc:
            if once_sent and exc.sent:
                raise MaybeAccepted(str(exc)) from None
            last, wait = str(exc), exc.retry_after or delay
        if attempt == retries:
            break
        wait = min(max_backoff_s, wait) * random.uniform(0.8, 1.2)
        if stop is not None and stop.wait(wait):
            break
        if stop is None:
            time.sleep(wait)
        delay = min(max_backoff_s, delay * 2)
    raise Unreachable(f"RunPod endpoint unreachable ({last})")


class Transport(ABC):
    """One endpoint's job API. Every method makes one request and raises a ``TransportError``."""

    @abstractmethod
    def health(self) -> dict[str, Any]:
        """Returns: the endpoint's ``/health`` answer (job and worker counts)."""

    @abstractmethod
    def run(self, payload: Mapping[str, Any], policy: Mapping[str, Any]) -> str:
        """Queue one job.

        Args:
            payload: the job input (a wire-format trial spec).
            policy: RunPod's job policy, e.g. ``{"executionTimeout": ms}``.

        Returns:
            The job id.
        """

    @abstractmethod
    def status(self, job_id: str) -> dict[str, Any]:
        """Returns: the job's ``/status`` answer: ``status``, ``delayTime``, ``executionTime``,
        ``workerId``, ``output`` (the latest progress payload while running), ``error``."""

    @abstractmethod
    def cancel(self, job_id: str) -> None:
        """Cancel a queued or running job (its worker stops after the batch in flight)."""


# ---------------------------------------------------------------------- over HTTP


class HttpTransport(Transport):
    """RunPod's ``/v2/{endpoint_id}`` API over ``requests``, one session per thread.

    Args:
        endpoint_id: the endpoint's id.
        api_key: a callable that returns the key (so the key is read only when a request is made).
        base_url: default ``RUNPOD_ENDPOINT_BASE_URL``, else RunPod's API.
        timeout_s: per request.
    """

    def __init__(self, endpoint_id: str, api_key: Callable[[], str], base_url: str | None = None,
                 timeout_s: float = 10.0) -> None:
        self._endpoint_id = endpoint_id
        self._api_key = api_key
        self._base = (base_url or os.environ.get("RUNPOD_ENDPOINT_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._timeout_s = timeout_s
        self._tls = threading.local()

    def __repr__(self) -> str:
        return f"HttpTransport(base_url={self._base!r})"

    def health(self) -> dict[str, Any]:
        return self._request("GET", "health")

    def run(self, payload: Mapping[str, Any], policy: Mapping[str, Any]) -> str:
        return str(self._request("POST", "run", {"input": dict(payload), "policy": dict(policy)})["id"])

    def status(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"status/{job_id}")

    def cancel(self, job_id: str) -> None:
        self._request("POST", f"cancel/{job_id}")

    def _request(self, method: str, op: str, body: Any = None) -> Any:
        import requests

        session = getattr(self._tls, "session", None)
        if session is None:
            session = self._tls.session = requests.Session()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self._api_key()}"}
        try:
            response = session.request(method, f"{self._base}/{self._endpoint_id}/{op}", headers=headers,
                                       json=body, timeout=self._timeout_s)
        except requests.RequestException as exc:  # connection refused, timeouts
            raise Retryable(type(exc).__name__, sent=not _unsent(exc)) from None
        code = response.status_code
        if code in (401, 403):
            raise Rejected(f"RunPod rejected the API key ({code} {'Unauthorized' if code == 401 else 'Forbidden'})")
        if code == 404:
            raise NotFound(f"HTTP 404 on {op.split('/')[0]}")
        if code in RETRYABLE_HTTP:
            raise Retryable(f"HTTP {code}", _retry_after(response.headers.get("Retry-After")),
                            sent=code not in REFUSED_HTTP)
        if code >= 400:
            raise HttpError(f"HTTP {code}")
        try:
            return response.json()
        except ValueError:
            raise HttpError(f"HTTP {code} with a body that is not JSON") from None


def _unsent(exc: Exception) -> bool:
    """True if a ``requests`` error happened before the request reached the server (no
    connection could be made); a read timeout or a connection dropped mid-answer may come after
    the server acted on it."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# ---------------------------------------------------------------------- in memory

Step = Union[Mapping[str, Any], Exception]


def queued() -> dict[str, Any]:
    """Returns: a ``/status`` answer for a job waiting for a worker."""
    return {"status": "IN_QUEUE", "delayTime": 0, "executionTime": 0}


def running(output: Any = None, worker: str = "w1", execution_ms: int = 1000) -> dict[str, Any]:
    """A ``/status`` answer for a running job.

    Args:
        output: the latest progress payload (``wire.progress_payload``), or None.
        worker: the worker id RunPod reports.
        execution_ms: execution time so far (billed).

    Returns:
        The status dict.
    """
    return {"status": "IN_PROGRESS", "workerId": worker, "delayTime": 10, "executionTime": execution_ms,
            "output": output}


def ended(state: str, output: Any = None, error: str | None = None, execution_ms: int = 2000) -> dict[str, Any]:
    """A ``/status`` answer for a job in a final state.

    Args:
        state: ``COMPLETED``, ``FAILED``, ``TIMED_OUT`` or ``CANCELLED``.
        output: the handler's result (``{"outcome": ...}``) for COMPLETED.
        error: the error text for FAILED / TIMED_OUT.
        execution_ms: the execution time billed.

    Returns:
        The status dict.
    """
    data = {"status": state, "workerId": "w1", "delayTime": 10, "executionTime": execution_ms, "output": output}
    return {**data, "error": error} if error is not None else data


@dataclass
class MemoryJob:
    """One job a ``MemoryTransport`` accepted: its input, its remaining script, what happened."""

    id: str
    input: dict[str, Any]
    policy: dict[str, Any]
    steps: list[Step]
    polls: int = 0
    cancelled: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


class MemoryTransport(Transport):
    """An in-memory endpoint for tests: each job plays a script of ``/status`` answers.

    Each ``status`` call takes the next step of the job's script; the last step repeats (so a
    script ending ``running(...)`` is a lost worker that never finishes). A step that is an
    exception is raised instead. After ``cancel``, the job reports CANCELLED.

    Args:
        scripts: one script per ``run`` call, in order; a script is a list of steps or a
            callable ``(job_input) -> steps``. When they run out, ``default`` is used.
        default: the script for jobs beyond ``scripts`` (default: one COMPLETED step with no outcome).
        faults: exceptions to raise from the next calls of an operation, e.g.
            ``{"health": [Rejected("...")], "run": [Retryable("HTTP 429")]}``. A
            ``Retryable(..., sent=True)`` on ``run`` is raised after the job was accepted (the
            answer was lost on the way back).

    After ``cancel``, ``status`` answers the first CANCELLED step left in the job's script
    (e.g. one with the final ``executionTime``), else a bare ``{"status": "CANCELLED"}``.
    """

    def __init__(self, scripts: Iterable[Any] = (), default: Any = None,
                 faults: Mapping[str, Iterable[Exception]] | None = None) -> None:
        self._scripts = list(scripts)
        self._default = default if default is not None else [ended("COMPLETED")]
        self.faults: dict[str, list[Exception]] = defaultdict(list, {k: list(v) for k, v in (faults or {}).items()})
        self.jobs: dict[str, MemoryJob] = {}
        self.calls: list[tuple[str, str | None]] = []  # (operation, job id)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def health(self) -> dict[str, Any]:
        self._enter("health", None)
        return {"jobs": {"inQueue": 0, "inProgress": 0}, "workers": {"idle": 1, "running": 0}}

    def run(self, payload: Mapping[str, Any], policy: Mapping[str, Any]) -> str:
        fault = self._enter("run", None, raise_fault=False)
        if fault is not None and not (isinstance(fault, Retryable) and fault.sent):
            raise fault
        with self._lock:
            script = self._scripts.pop(0) if self._scripts else self._default
            job_id = f"job-{next(self._ids)}"
            steps = list(script(dict(payload)) if callable(script) else script)
            self.jobs[job_id] = MemoryJob(job_id, dict(payload), dict(policy), steps or [ended("COMPLETED")])
        if fault is not None:  # accepted, and the answer lost
            raise fault
        return job_id

    def status(self, job_id: str) -> dict[str, Any]:
        self._enter("status", job_id)
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise NotFound("HTTP 404 on status")
            job.polls += 1
            if job.cancelled:  # a CANCELLED answer left in the script, else a bare one
                step: Step = next((st for st in job.steps if isinstance(st, Mapping) and st.get("status") == "CANCELLED"),
                                  {"status": "CANCELLED"})
            else:
                step = job.steps.pop(0) if len(job.steps) > 1 else job.steps[0]
        if isinstance(step, Exception):
            raise step
        answer = {"id": job_id, **step}
        job.history.append(answer)
        return answer

    def cancel(self, job_id: str) -> None:
        self._enter("cancel", job_id)
        with self._lock:
            if job_id in self.jobs:
                self.jobs[job_id].cancelled = True

    def cancelled(self) -> list[str]:
        """Returns: the ids of the jobs that were cancelled, in id order."""
        return [j.id for j in self.jobs.values() if j.cancelled]

    def _enter(self, op: str, job_id: str | None, raise_fault: bool = True) -> Exception | None:
        with self._lock:
            self.calls.append((op, job_id))
            fault = self.faults[op].pop(0) if self.faults[op] else None
        if fault is not None and raise_fault:
            raise fault
        return fault
