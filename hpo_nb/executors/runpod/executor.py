"""``RunPodExecutor``: each trial one RunPod serverless job, followed to its end.

A trial's ``TrialSpec`` goes out as the job input (``wire``); a worker runs the same
``train_trial`` (``worker``); this executor polls ``/status`` through a ``Transport``. Queue
state and worker id become ``TrialStatus`` events, progress payloads become epoch events and
pruning reports (``tracking``). A pruned or stopped trial's job is cancelled (the worker stops
after its current batch). FAILED, TIMED_OUT and lost jobs (unknown id, or no progress for
``stall_timeout_s``) are retried up to ``max_retries`` times; transport faults back off
(``call_with_backoff``). An endpoint that cannot be reached or rejects the key falls back to
local threads, or raises ``ConfigError`` with ``fallback=False``. A spending cap stops new trials.
Each accepted job is journaled on its trial (``TrialJob.journal``, ``journal``); a later process on
the same endpoint follows a dead process's job to its end (``follow``) instead of starting it again.

The key lives in the settings' ``SecretStr`` and is masked out of every error text this module
produces; it never reaches a log line, a repr, an outcome or an event.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Mapping

from ...errors import ConfigError
from ...progress import Notice, TrialStarted, TrialStatus
from ...spec import TrialOutcome
from ..base import Executor, TrialJob
from . import journal, wire
from .settings import check_options, mask
from .tracking import Attempts, Tracker
from .transport import (HttpError, HttpTransport, MaybeAccepted, NotFound, Transport, TransportError,
                        call_with_backoff)

log = logging.getLogger("hpo_nb")

Attempt = TrialOutcome | str  # the trial's outcome, or the reason to retry


class RunPodExecutor(Executor):
    """Keeps up to ``concurrency`` trials in flight as RunPod jobs (one polling thread each).

    Args:
        concurrency: trials in flight at once.
        endpoint_id: the RunPod endpoint (default: ``RUNPOD_ENDPOINT_ID``).
        api_key: the RunPod API key (default: ``RUNPOD_API_KEY``).
        transport: how to reach the endpoint (default: ``HttpTransport``; tests pass a
            ``MemoryTransport``).
        local: builds the executor trials fall back to, given the concurrency (default:
            ``LocalExecutor``).
        **options: the other ``runpod={...}`` options (``settings.RunPodSettings``).

    Raises:
        ConfigError: a missing endpoint id or key, or a bad option.
    """

    name = "runpod"
    initial_status = "queued"

    def __init__(self, concurrency: int, endpoint_id: str | None = None, api_key: str | None = None,
                 transport: Transport | None = None, local: Callable[[int], Executor] | None = None,
                 **options: Any) -> None:
        opts = dict(options)
        if endpoint_id is not None:
            opts["endpoint_id"] = endpoint_id
        if api_key is not None:
            opts["api_key"] = api_key
        self.settings = check_options(opts)
        self.transport = transport or HttpTransport(self.settings.endpoint_id, self.settings.api_key.get_secret_value,
                                                    self.settings.base_url, self.settings.request_timeout_s)
        self.concurrency = concurrency
        self._local = local
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="hpo-nb-runpod")
        # Jobs a dead process started, followed beside (not instead of) this search's own trials.
        self._adopted = ThreadPoolExecutor(max_workers=32, thread_name_prefix="hpo-nb-runpod-follow")
        self._lock = threading.Lock()
        self._publish: Callable[[Any], None] = lambda event: None
        self._fallback: Executor | None = None
        self._spent_usd = 0.0
        self._live: dict[int, Attempts] = {}
        self._budget_noticed = False
        self._closing = threading.Event()
        self._clock: Callable[[], float] = time.monotonic  # tests pass a fake to reach a stall in ms

    def __repr__(self) -> str:
        return (f"RunPodExecutor(concurrency={self.concurrency}, endpoint={mask(self.settings.endpoint_id)!r}, "
                f"fallback={self.settings.fallback}, local={self._fallback is not None})")

    # ------------------------------------------------------------------ Executor API

    def prepare(self, publish: Callable[[Any], None]) -> None:
        """Check the endpoint once (``/health``); fall back to local threads if it cannot be used.

        Args:
            publish: where notices and trial events go.

        Raises:
            ConfigError: the endpoint cannot be used and ``fallback`` is off.
        """
        self._publish = publish
        try:
            self._call(lambda t: t.health(), retries=2)
        except NotFound:
            self._fall_back("RunPod endpoint not found (404): check RUNPOD_ENDPOINT_ID")
        except TransportError as exc:
            self._fall_back(str(exc))

    def accepting(self) -> bool:
        """Returns: False once the spending cap is reached (the experiment starts no more trials)."""
        budget = self.settings.budget_usd
        if budget is None or self._fallback is not None:
            return True
        spent = self.spent_usd
        if spent < budget:
            return True
        with self._lock:
            first, self._budget_noticed = not self._budget_noticed, True
        if first:
            self._publish(Notice(f"RunPod budget of ${budget:.2f} reached (spent ${spent:.2f}): no new trials."))
            log.warning("RunPod budget of $%.2f reached (spent $%.4f): no new trials", budget, spent)
        return False

    @property
    def spent_usd(self) -> float:
        """Estimated spend so far: finished attempts plus the running ones' time so far."""
        with self._lock:
            return self._spent_usd + sum(a.cost_usd for a in self._live.values())

    def submit(self, job: TrialJob) -> "Future[TrialOutcome]":
        """Start one trial as a job (or locally, after a fallback).

        Args:
            job: the trial and its channels.

        Returns:
            A future of the outcome; it does not raise.
        """
        if self._fallback is not None:
            return self._fallback.submit(job)
        return self._pool.submit(self._run_guarded, job)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the polling threads; with ``wait=False`` running jobs are cancelled first."""
        if not wait:
            self._closing.set()
        self._pool.shutdown(wait=wait, cancel_futures=True)
        self._adopted.shutdown(wait=wait, cancel_futures=True)
        if self._fallback is not None:
            self._fallback.shutdown(wait=wait)

    def follow(self, job: TrialJob, entry: Mapping[str, Any]) -> "Future[TrialOutcome] | None":
        """Follow a job a process that died started for this trial (its journal entry).

        Args:
            job: the trial (its spec and channels), as ``submit`` takes it.
            entry: the trial's journal entry, as ``_attempt`` wrote it.

        Returns:
            A future of the outcome (the job's progress, result and cost, and retries if it
            fails, as for a submitted trial), or None: not a job of this endpoint, or the
            endpoint is out of reach (the search then has it cancelled and retries the trial).
        """
        if not journal.names_endpoint(entry, self.settings.endpoint_id) or self._fallback is not None:
            return None
        return self._adopted.submit(self._run_guarded, job, dict(entry))

    def describe(self) -> dict[str, object]:
        """Returns: ``{"executor": "runpod"}``, or ``"local"`` after a fallback."""
        return {"executor": "local" if self._fallback is not None else "runpod"}

    # ------------------------------------------------------------------ fallback

    def _fall_back(self, reason: str) -> None:
        if not self.settings.fallback:
            raise ConfigError(f"{reason}. Check RUNPOD_API_KEY / RUNPOD_ENDPOINT_ID, or allow "
                              "runpod={'fallback': True} to run trials locally instead.")
        with self._lock:
            if self._fallback is not None:
                return
            if self._local is None:
                from ..local import LocalExecutor

                self._local = LocalExecutor
            self._fallback = self._local(self.concurrency)
        message = f"{reason}: running trials locally instead."
        log.warning("%s", message)
        self._publish(Notice(message))

    # ------------------------------------------------------------------ one trial

    def _run_guarded(self, job: TrialJob, adopted: dict[str, Any] | None = None) -> TrialOutcome:
        attempts = Attempts(price=self.settings.price_per_second, clock=self._clock)
        if adopted:  # what the dead process's earlier attempts of this trial already spent
            attempts.execution_ms = float(adopted.get("earlier_execution_ms") or 0)
            attempts.delay_ms = float(adopted.get("earlier_delay_ms") or 0)
        with self._lock:
            self._live[job.spec.trial_number] = attempts
        started = time.monotonic()
        try:
            outcome = self._run(job, attempts, started, adopted)
        except Exception as exc:  # the future must not raise; never leak the key in the reason
            redact = self.settings.redact
            log.error("trial %d: RunPod executor error: %s", job.spec.trial_number, redact(repr(exc)))
            outcome = TrialOutcome(job.spec.trial_number, "failed", error=redact(f"{type(exc).__name__}: {exc}"),
                                   duration_s=time.monotonic() - started)
        finally:
            attempts.close_attempt()
            with self._lock:
                self._live.pop(job.spec.trial_number, None)
                self._spent_usd += attempts.cost_usd
        if outcome.extra.get("executor") != "local":
            outcome.extra = {**outcome.extra, **attempts.extra()}
        elif attempts.attempts:  # ran locally in the end: keep what its RunPod attempts took and cost
            outcome.extra = {**attempts.extra(), **outcome.extra}
        return outcome

    def _run(self, job: TrialJob, attempts: Attempts, started: float,
             adopted: dict[str, Any] | None = None) -> TrialOutcome:
        spec = job.spec
        try:
            payload = wire.encode_spec(spec)
        except ConfigError as exc:
            return TrialOutcome(spec.trial_number, "failed", error=str(exc))
        reason = ""
        first = max(0, int(adopted.get("attempt") or 1) - 1) if adopted else 0
        for attempt in range(first, max(first, self.settings.max_retries) + 1):
            if adopted and attempt == first:  # the dead process's job: follow it, do not send it again
                attempts.attempts, attempts.job_id = attempt + 1, str(adopted["id"])
                result = self._follow(job, str(adopted["id"]), attempts, Tracker(job, self._publish, self._clock),
                                      started)
                attempts.close_attempt()
                if isinstance(result, TrialOutcome):
                    return result
                reason = result
                continue
            if attempt > first:
                self._publish(Notice(f"trial {spec.trial_number}: RunPod job {reason}; retry "
                                     f"{attempt} of {self.settings.max_retries}."))
                log.warning("trial %d: RunPod job %s; retry %d of %d", spec.trial_number, reason, attempt,
                            self.settings.max_retries)
            if job.stop.is_set() or self._closing.is_set():
                return Tracker(job, self._publish).client_outcome("stopped", started)
            result = self._attempt(job, payload, attempts, started)
            attempts.close_attempt()
            if isinstance(result, TrialOutcome):
                return result
            reason = result
        return TrialOutcome(spec.trial_number, "failed", duration_s=time.monotonic() - started,
                            error=f"RunPod job {reason} ({self.settings.max_retries + 1} attempts)")

    def _attempt(self, job: TrialJob, payload: dict[str, Any], attempts: Attempts, started: float) -> Attempt:
        """One job, queued and followed to its end."""
        spec = job.spec
        tracker = Tracker(job, self._publish, self._clock)
        policy = {"executionTimeout": self.settings.execution_timeout_ms(spec)}
        try:  # sent again only where it cannot have been accepted: a second job would be billed too
            job_id = self._call(lambda t: t.run(payload, policy), stop=job.stop, once_sent=True)
        except MaybeAccepted as exc:
            error = (f"POST /run got no clear answer ({exc}); RunPod may have accepted the job, so it was not sent "
                     "again (a second job would be billed too). Check the endpoint's requests in the RunPod console.")
            self._publish(Notice(f"trial {spec.trial_number}: {error}"))
            log.warning("trial %d: %s", spec.trial_number, error)
            return TrialOutcome(spec.trial_number, "failed", error=error, duration_s=time.monotonic() - started)
        except HttpError as exc:
            return TrialOutcome(spec.trial_number, "failed", error=f"RunPod refused the job ({exc})")
        except TransportError as exc:
            if job.stop.is_set():
                return tracker.client_outcome("stopped", started)
            return self._run_locally(job, "RunPod endpoint not found (404)" if isinstance(exc, NotFound) else str(exc))
        attempts.attempts += 1
        attempts.job_id = job_id
        self._journal(job, job_id, attempts)
        self._publish(TrialStarted(spec.trial_number, spec.max_epochs, dict(spec.params), status="queued",
                                   where="runpod"))
        return self._follow(job, job_id, attempts, tracker, started)

    def _journal(self, job: TrialJob, job_id: str, attempts: Attempts) -> None:
        """Record the accepted job on its trial, so a later process can follow it (no secrets:
        the endpoint as a hash)."""
        if job.journal is None:
            return
        try:
            job.journal(journal.entry(job_id, self.settings.endpoint_id, attempts))
        except Exception as exc:  # the job runs anyway; only a later process could not follow it
            log.warning("trial %d: RunPod job %s not journaled: %s", job.spec.trial_number, job_id, exc)

    def _run_locally(self, job: TrialJob, reason: str) -> TrialOutcome:
        """The endpoint stopped answering mid-search: this trial (and the rest) run locally."""
        if not self.settings.fallback:
            return TrialOutcome(job.spec.trial_number, "failed", error=reason)
        self._fall_back(reason)
        assert self._fallback is not None
        outcome = self._fallback.submit(job).result()
        outcome.extra = {**outcome.extra, "executor": "local", "fallback": reason}
        return outcome

    def _follow(self, job: TrialJob, job_id: str, attempts: Attempts, tracker: Tracker, started: float) -> Attempt:
        """Poll one job until it ends, or until the client ends it (stop, prune, stall)."""
        spec = job.spec
        shown: tuple[str, str | None] = ("IN_QUEUE", None)
        while True:
            if job.stop.wait(self.settings.poll_interval_s) or self._closing.is_set():
                self._cancel(job_id, attempts)
                return tracker.client_outcome("stopped", started)
            try:
                status = self._call(lambda t: t.status(job_id), stop=job.stop)
            except NotFound:
                return "was lost (its id is unknown to the endpoint)"
            except TransportError as exc:
                self._cancel(job_id, attempts)
                if job.stop.is_set():
                    return tracker.client_outcome("stopped", started)
                return f"could not be followed ({exc})"
            attempts.observe(status)
            state = status.get("status")
            if (state, attempts.worker) != shown and state in ("IN_QUEUE", "IN_PROGRESS"):
                if state == "IN_PROGRESS" and shown[0] != "IN_PROGRESS":
                    tracker.last_change = self._clock()  # a stall counts from the start, not from the queue
                shown = (state, attempts.worker)
                where = f"runpod:{attempts.worker}" if attempts.worker and state == "IN_PROGRESS" else "runpod"
                self._publish(TrialStatus(spec.trial_number, "running" if state == "IN_PROGRESS" else "queued", where))
            if state == "IN_PROGRESS":
                if tracker.follow(status.get("output")):
                    self._cancel(job_id, attempts)
                    return tracker.client_outcome("pruned", started)
                stall = self.settings.stall_timeout_s
                if stall is not None and self._clock() - tracker.last_change > stall:
                    self._cancel(job_id, attempts)
                    return f"made no progress for {stall:.0f}s"
            elif state == "COMPLETED":
                return tracker.completed(status.get("output"))
            elif state == "FAILED":
                error = self.settings.redact(str(status.get("error") or "failed without a message"))
                if error.startswith(wire.INVALID_PREFIX):  # deterministic: retrying cannot help
                    return TrialOutcome(spec.trial_number, "failed", error=f"RunPod worker rejected the trial: {error}")
                return f"failed ({short_error(error)})"
            elif state == "TIMED_OUT":
                return f"timed out ({short_error(str(status.get('error') or 'executionTimeout'))})"
            elif state == "CANCELLED":
                return TrialOutcome(spec.trial_number, "failed", duration_s=time.monotonic() - started,
                                    error="RunPod job was cancelled outside hpo-nb (console or purge-queue)")

    # ------------------------------------------------------------------ requests

    def _cancel(self, job_id: str, attempts: Attempts) -> None:
        """Cancel a job the client ends, then read its final status once: the time it ran until
        the cancel took effect is billed and counts (toward the trial's cost and the cap)."""
        try:
            self._call(lambda t: t.cancel(job_id), retries=3)
        except Exception as exc:  # the job ends anyway at its executionTimeout
            log.warning("could not cancel RunPod job %s: %s", job_id, self.settings.redact(str(exc)))
        try:
            attempts.observe(self._call(lambda t: t.status(job_id), retries=1))
        except Exception as exc:  # the time seen so far still counts (Attempts.close_attempt)
            log.info("no final status for RunPod job %s: %s", job_id, self.settings.redact(str(exc)))

    def _call(self, request: Callable[[Transport], Any], *, stop: threading.Event | None = None,
              retries: int | None = None, once_sent: bool = False) -> Any:
        """One transport request under the backoff policy; ``Unreachable`` when it gives up,
        ``MaybeAccepted`` for a ``once_sent`` request that may have been acted on."""
        return call_with_backoff(lambda: request(self.transport), stop=stop,
                                 retries=self.settings.http_retries if retries is None else retries,
                                 max_backoff_s=self.settings.max_backoff_s, once_sent=once_sent)


def short_error(text: str, limit: int = 300) -> str:
    """A FAILED job's error, shortened: the SDK's error JSON (with a traceback) becomes its message.

    Args:
        text: the ``error`` of a ``/status`` answer.
        limit: the most characters kept.

    Returns:
        ``"<type>: <message>"`` for the SDK's JSON, else the text, cut at ``limit``.
    """
    try:
        data = json.loads(text)
        if isinstance(data, dict) and data.get("error_message"):
            text = f"{data.get('error_type', '')}: {data['error_message']}".strip(": ")
    except ValueError:
        pass
    return text if len(text) <= limit else text[:limit] + "…"
