"""Trials as RunPod serverless jobs, shown live like local ones.

Each trial is one job: its ``TrialSpec`` goes out as the job input (``hpo_nb.remote``), a
worker runs the same ``train_trial`` (``runpod_image/handler.py``), and this executor polls
``/status``: queue state and worker id become ``TrialStatus`` events, the worker's numbered
progress payloads become ``EpochProgress`` / ``EpochEnded`` events and pruning reports. A
pruned or stopped trial's job is cancelled (the worker stops after its current batch).
FAILED, TIMED_OUT and lost jobs are retried a bounded number of times; HTTP errors and 429s
back off. An endpoint that cannot be reached or rejects the key falls back to local threads.

The API key lives in one ``_Secret`` and is masked out of every error text this module
produces; it never reaches a log line, a repr, an outcome or an event.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping

from .. import remote
from ..errors import ConfigError
from ..progress import EpochEnded, EpochProgress, Notice, TrialStarted, TrialStatus
from ..spec import TrialOutcome, TrialSpec
from .base import Executor, TrialJob

log = logging.getLogger("hpo_nb")

MAX_EXECUTION_TIMEOUT_S = 7 * 24 * 3600
_RETRYABLE_HTTP = (408, 425, 429, 500, 502, 503, 504)


class _Secret:
    """Holds the API key; prints as a mask."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<hidden>"

    __str__ = __repr__


@dataclass(frozen=True)
class RunPodSettings:
    """Everything ``runpod={...}`` may set; validated before any trial starts."""

    endpoint_id: str
    api_key: _Secret = field(repr=False)
    base_url: str | None = None  # default: RUNPOD_ENDPOINT_BASE_URL, else RunPod's API
    poll_interval_s: float = 1.0
    max_retries: int = 2  # per trial, for FAILED / TIMED_OUT / lost jobs
    fallback: bool = True  # endpoint unreachable or key rejected -> run locally
    price_per_second: float = 0.00019  # an example (a 24 GB GPU's flex rate); set your GPU's
    budget_usd: float | None = None  # stop submitting once spent
    execution_timeout_s: float | None = None  # default: startup_s + epoch_timeout_s * max_epochs
    epoch_timeout_s: float = 600.0
    startup_s: float = 300.0
    request_timeout_s: float = 10.0
    http_retries: int = 6
    max_backoff_s: float = 30.0
    stall_timeout_s: float | None = None  # IN_PROGRESS without new progress this long -> lost

    def __repr__(self) -> str:
        return (f"RunPodSettings(endpoint_id={_mask(self.endpoint_id)!r}, base_url={self.base_url!r}, "
                f"max_retries={self.max_retries}, fallback={self.fallback}, budget_usd={self.budget_usd})")

    def execution_timeout_ms(self, spec: TrialSpec) -> int:
        """RunPod's ``executionTimeout`` policy, from the trial's budget of epochs."""
        seconds = self.execution_timeout_s
        if seconds is None:
            seconds = self.startup_s + self.epoch_timeout_s * spec.max_epochs
        return int(1000 * min(max(seconds, 1.0), MAX_EXECUTION_TIMEOUT_S))


_OPTIONS = {f.name for f in fields(RunPodSettings)}


def check_options(options: Mapping[str, Any]) -> RunPodSettings:
    """Validate ``Experiment(runpod={...})``; ``ConfigError`` says what to fix."""
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        hint = " (set concurrency on the Experiment)" if "concurrency" in unknown else ""
        raise ConfigError(f"unknown runpod option(s) {', '.join(map(repr, unknown))}{hint}; "
                          f"valid: {', '.join(sorted(_OPTIONS))}.")
    opts = dict(options)
    endpoint = opts.pop("endpoint_id", None) or os.environ.get("RUNPOD_ENDPOINT_ID")
    key = opts.pop("api_key", None) or os.environ.get("RUNPOD_API_KEY")
    if not endpoint or not isinstance(endpoint, str):
        raise ConfigError("executor='runpod' needs an endpoint id: set RUNPOD_ENDPOINT_ID, or pass "
                          "runpod={'endpoint_id': ...} (the id shown in the RunPod console).")
    if not key or not isinstance(key, str):
        raise ConfigError("executor='runpod' needs an API key: set RUNPOD_API_KEY, or pass "
                          "runpod={'api_key': ...}.")
    for name in ("poll_interval_s", "epoch_timeout_s", "startup_s", "request_timeout_s", "max_backoff_s"):
        if name in opts:
            _positive(name, opts[name])
    for name in ("execution_timeout_s", "stall_timeout_s", "budget_usd"):
        if opts.get(name) is not None:
            _positive(name, opts[name])
    if "price_per_second" in opts:
        _positive("price_per_second", opts["price_per_second"], allow_zero=True)
    for name in ("max_retries", "http_retries"):
        if name in opts and (isinstance(opts[name], bool) or not isinstance(opts[name], int) or opts[name] < 0):
            raise ConfigError(f"runpod option {name} must be an integer >= 0, not {opts[name]!r}.")
    if "fallback" in opts and not isinstance(opts["fallback"], bool):
        raise ConfigError(f"runpod option fallback must be True or False, not {opts['fallback']!r}.")
    if opts.get("base_url") is not None and not (isinstance(opts["base_url"], str)
                                                 and opts["base_url"].startswith(("http://", "https://"))):
        raise ConfigError("runpod option base_url must be an http(s) URL ending in /v2.")
    return RunPodSettings(endpoint_id=endpoint, api_key=_Secret(key), **opts)


def _positive(name: str, value: Any, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"runpod option {name} must be a number {'>=' if allow_zero else '>'} 0, not {value!r}.")


def _mask(text: str) -> str:
    return text[:3] + "…" if len(text) > 4 else "…"


# ---------------------------------------------------------------------- HTTP faults


class _Unreachable(Exception):
    """The endpoint could not be reached (after backing off)."""


class _Rejected(Exception):
    """The endpoint rejected the API key (401/403) or does not exist (404 on /health)."""


class _NotFound(Exception):
    """The job id is unknown to the endpoint: the job is lost."""


class _HttpError(Exception):
    """A non-retryable HTTP error."""


@dataclass
class _Attempts:
    """Timing and cost over all attempts of one trial (you pay for failed attempts too)."""

    price: float
    delay_ms: float = 0.0
    execution_ms: float = 0.0
    live_delay_ms: float = 0.0
    live_execution_ms: float = 0.0
    worker: str | None = None
    job_id: str | None = None
    attempts: int = 0

    def observe(self, status: Mapping[str, Any]) -> None:
        self.live_delay_ms = _ms(status.get("delayTime"), self.live_delay_ms)
        self.live_execution_ms = _ms(status.get("executionTime"), self.live_execution_ms)
        worker = status.get("workerId") or _progress_worker(status.get("output"))
        if worker:
            self.worker = str(worker)

    def close_attempt(self) -> None:
        self.delay_ms += self.live_delay_ms
        self.execution_ms += self.live_execution_ms
        self.live_delay_ms = self.live_execution_ms = 0.0

    @property
    def cost_usd(self) -> float:
        return (self.execution_ms + self.live_execution_ms) / 1000.0 * self.price

    def extra(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "executor": "runpod", "delay_s": round((self.delay_ms + self.live_delay_ms) / 1000.0, 3),
            "execution_s": round((self.execution_ms + self.live_execution_ms) / 1000.0, 3),
            "cost_usd": round(self.cost_usd, 6), "attempts": self.attempts,
        }
        if self.worker:
            data["worker"] = self.worker
        if self.job_id:
            data["job_id"] = self.job_id
        return data


@dataclass
class _Seen:
    """What this client has already turned into events for one attempt."""

    seq: int = 0
    epochs: list[dict[str, Any]] = field(default_factory=list)
    last_change: float = field(default_factory=time.monotonic)

    def history(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for e in self.epochs:
            for k, v in (e.get("metrics") or {}).items():
                if isinstance(v, (int, float)):
                    out.setdefault(k, []).append(float(v))
        return out


# ---------------------------------------------------------------------- the executor


class RunPodExecutor(Executor):
    """Keeps up to ``concurrency`` trials in flight as RunPod jobs (one polling thread each)."""

    name = "runpod"
    initial_status = "queued"

    def __init__(self, concurrency: int, endpoint_id: str | None = None, api_key: str | None = None,
                 **options: Any) -> None:
        opts = dict(options)
        if endpoint_id is not None:
            opts["endpoint_id"] = endpoint_id
        if api_key is not None:
            opts["api_key"] = api_key
        self.settings = check_options(opts)
        self.concurrency = concurrency
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="hpo-nb-runpod")
        self._tls = threading.local()
        self._lock = threading.Lock()
        self._publish: Callable[[Any], None] = lambda event: None
        self._fallback: Executor | None = None
        self._spent_usd = 0.0
        self._live: dict[int, _Attempts] = {}
        self._budget_noticed = False
        self._closing = threading.Event()

    def __repr__(self) -> str:
        return (f"RunPodExecutor(concurrency={self.concurrency}, endpoint={_mask(self.settings.endpoint_id)!r}, "
                f"fallback={self.settings.fallback}, local={self._fallback is not None})")

    # ------------------------------------------------------------------ Executor API

    def prepare(self, publish: Callable[[Any], None]) -> None:
        """Check the endpoint once (health); fall back to local threads if it cannot be used."""
        self._publish = publish
        try:
            self._request(lambda ep: ep.health(timeout=self.settings.request_timeout_s), retries=2, health=True)
        except (_Unreachable, _Rejected, _HttpError) as exc:
            self._fall_back(str(exc))

    def accepting(self) -> bool:
        """False once the spending cap is reached: the experiment starts no more trials."""
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
        if self._fallback is not None:
            return self._fallback.submit(job)
        return self._pool.submit(self._run_guarded, job)

    def shutdown(self, wait: bool = True) -> None:
        if not wait:
            self._closing.set()
        self._pool.shutdown(wait=wait, cancel_futures=True)
        if self._fallback is not None:
            self._fallback.shutdown(wait=wait)

    def describe(self) -> dict[str, object]:
        return {"executor": "local" if self._fallback is not None else "runpod"}

    # ------------------------------------------------------------------ fallback

    def _fall_back(self, reason: str) -> None:
        if not self.settings.fallback:
            raise ConfigError(f"{reason}. Check RUNPOD_API_KEY / RUNPOD_ENDPOINT_ID, or allow "
                              "runpod={'fallback': True} to run trials locally instead.")
        with self._lock:
            if self._fallback is not None:
                return
            from .local import LocalExecutor

            self._fallback = LocalExecutor(self.concurrency)
        message = f"{reason}: running trials locally instead."
        log.warning("%s", message)
        self._publish(Notice(message))

    # ------------------------------------------------------------------ one trial

    def _run_guarded(self, job: TrialJob) -> TrialOutcome:
        attempts = _Attempts(price=self.settings.price_per_second)
        with self._lock:
            self._live[job.spec.trial_number] = attempts
        started = time.monotonic()
        try:
            outcome = self._run(job, attempts, started)
        except Exception as exc:  # the future must not raise; never leak the key in the reason
            log.error("trial %d: RunPod executor error: %s", job.spec.trial_number, self._redact(repr(exc)))
            outcome = TrialOutcome(job.spec.trial_number, "failed", error=self._redact(f"{type(exc).__name__}: {exc}"),
                                   duration_s=time.monotonic() - started)
        finally:
            attempts.close_attempt()
            with self._lock:
                self._live.pop(job.spec.trial_number, None)
                self._spent_usd += attempts.cost_usd
        if outcome.extra.get("executor") != "local":
            outcome.extra = {**outcome.extra, **attempts.extra()}
        return outcome

    def _run(self, job: TrialJob, attempts: _Attempts, started: float) -> TrialOutcome:
        spec = job.spec
        try:
            payload = remote.encode_spec(spec)
        except ConfigError as exc:
            return TrialOutcome(spec.trial_number, "failed", error=str(exc))
        reason = ""
        for attempt in range(self.settings.max_retries + 1):
            if attempt:
                self._publish(Notice(f"trial {spec.trial_number}: RunPod job {reason}; retry "
                                     f"{attempt} of {self.settings.max_retries}."))
                log.warning("trial %d: RunPod job %s; retry %d of %d", spec.trial_number, reason, attempt,
                            self.settings.max_retries)
            if job.stop.is_set() or self._closing.is_set():
                return self._client_outcome(job, "stopped", _Seen(), started)
            result = self._attempt(job, payload, attempts, started)
            attempts.close_attempt()
            if isinstance(result, TrialOutcome):
                return result
            reason = result
        return TrialOutcome(spec.trial_number, "failed", duration_s=time.monotonic() - started,
                            error=f"RunPod job {reason} ({self.settings.max_retries + 1} attempts)")

    def _attempt(self, job: TrialJob, payload: dict[str, Any], attempts: _Attempts,
                 started: float) -> TrialOutcome | str:
        """One job. Returns the trial's outcome, or the reason to retry."""
        spec = job.spec
        policy = {"executionTimeout": self.settings.execution_timeout_ms(spec)}
        try:
            job_id = self._request(lambda ep: ep.run({"input": payload, "policy": policy}).job_id, stop=job.stop)
        except _HttpError as exc:
            return TrialOutcome(spec.trial_number, "failed", error=f"RunPod refused the job ({exc})")
        except (_Unreachable, _Rejected, _NotFound) as exc:
            if job.stop.is_set():
                return self._client_outcome(job, "stopped", _Seen(), started)
            reason = str(exc) if not isinstance(exc, _NotFound) else "RunPod endpoint not found (404)"
            if not self.settings.fallback:
                return TrialOutcome(spec.trial_number, "failed", error=reason)
            self._fall_back(reason)
            assert self._fallback is not None
            outcome = self._fallback.submit(job).result()
            outcome.extra = {**outcome.extra, "executor": "local", "fallback": reason}
            return outcome
        attempts.attempts += 1
        attempts.job_id = job_id
        seen = _Seen()
        self._publish(TrialStarted(spec.trial_number, spec.max_epochs, dict(spec.params), status="queued",
                                   where="runpod"))
        shown: tuple[str, str | None] = ("IN_QUEUE", None)
        while True:
            if job.stop.wait(self.settings.poll_interval_s) or self._closing.is_set():
                self._cancel(job_id)
                return self._client_outcome(job, "stopped", seen, started)
            try:
                status = self._request(lambda ep: self._status(ep, job_id), stop=job.stop)
            except _NotFound:
                return "was lost (its id is unknown to the endpoint)"
            except (_Unreachable, _Rejected, _HttpError) as exc:
                self._cancel(job_id)
                if job.stop.is_set():
                    return self._client_outcome(job, "stopped", seen, started)
                return f"could not be followed ({exc})"
            attempts.observe(status)
            state = status.get("status")
            if (state, attempts.worker) != shown and state in ("IN_QUEUE", "IN_PROGRESS"):
                shown = (state, attempts.worker)
                where = f"runpod:{attempts.worker}" if attempts.worker and state == "IN_PROGRESS" else "runpod"
                self._publish(TrialStatus(spec.trial_number, "running" if state == "IN_PROGRESS" else "queued", where))
            if state == "IN_PROGRESS":
                if self._follow(job, status.get("output"), seen):
                    self._cancel(job_id)
                    return self._client_outcome(job, "pruned", seen, started)
                stall = self.settings.stall_timeout_s
                if stall is not None and time.monotonic() - seen.last_change > stall:
                    self._cancel(job_id)
                    return f"made no progress for {stall:.0f}s"
            elif state == "COMPLETED":
                return self._completed(job, status.get("output"), seen)
            elif state == "FAILED":
                error = self._redact(str(status.get("error") or "failed without a message"))
                if error.startswith(remote.INVALID_PREFIX):  # deterministic: retrying cannot help
                    return TrialOutcome(spec.trial_number, "failed", error=f"RunPod worker rejected the trial: {error}")
                return f"failed ({_short(error)})"
            elif state == "TIMED_OUT":
                return f"timed out ({_short(str(status.get('error') or 'executionTimeout'))})"
            elif state == "CANCELLED":
                return TrialOutcome(spec.trial_number, "failed", duration_s=time.monotonic() - started,
                                    error="RunPod job was cancelled outside hpo-nb (console or purge-queue)")

    def _follow(self, job: TrialJob, output: Any, seen: _Seen) -> bool:
        """Turn a progress payload into events and pruning reports; True => prune now."""
        if not remote.is_progress(output) or output["seq"] <= seen.seq:
            return False
        seen.seq = output["seq"]
        seen.last_change = time.monotonic()
        spec = job.spec
        prune = False
        for entry in output.get("epochs") or []:
            epoch = entry.get("epoch") if isinstance(entry, dict) else None
            if not isinstance(epoch, int) or epoch <= len(seen.epochs):
                continue
            seen.epochs.append(entry)
            metrics = {k: float(v) for k, v in (entry.get("metrics") or {}).items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            self._publish(EpochEnded(spec.trial_number, epoch, spec.max_epochs, metrics))
            value = metrics.get("val_accuracy")
            if job.report is not None and value is not None and not prune:
                prune = bool(job.report(epoch, value))
        epoch = output.get("epoch")
        if isinstance(epoch, int) and epoch > len(seen.epochs):
            self._publish(EpochProgress(spec.trial_number, epoch, spec.max_epochs, int(output.get("batch") or 0),
                                        output.get("total_batches"), loss=output.get("loss"),
                                        accuracy=output.get("accuracy")))
        return prune

    def _completed(self, job: TrialJob, output: Any, seen: _Seen) -> TrialOutcome | str:
        spec = job.spec
        if not isinstance(output, dict) or not isinstance(output.get("outcome"), dict):
            return "returned no outcome"
        outcome = TrialOutcome.from_dict(output["outcome"])
        outcome.trial_number = spec.trial_number
        outcome.model_path = None  # the model stays on the worker
        # Epochs that ended after the last poll saw progress: publish them and keep the pruner's
        # record whole, as if they had been seen live.
        history = outcome.history
        for epoch in range(len(seen.epochs) + 1, len(history.get("loss") or []) + 1):
            metrics = {k: float(v[epoch - 1]) for k, v in history.items() if len(v) >= epoch}
            self._publish(EpochEnded(spec.trial_number, epoch, spec.max_epochs, metrics))
            if job.report is not None and "val_accuracy" in metrics:
                job.report(epoch, metrics["val_accuracy"])
        return outcome

    def _client_outcome(self, job: TrialJob, state: str, seen: _Seen, started: float) -> TrialOutcome:
        """A pruned or stopped trial: its job was cancelled, so the record is what was seen."""
        history = seen.history()
        values = history.get("val_accuracy") or []
        accuracy = values[-1] if values else None
        return TrialOutcome(job.spec.trial_number, state, accuracy=accuracy,
                            score=accuracy if job.spec.mode == "simple" else None, history=history,
                            epochs_run=len(seen.epochs), duration_s=time.monotonic() - started)

    # ------------------------------------------------------------------ HTTP

    def _endpoint(self) -> Any:
        ep = getattr(self._tls, "endpoint", None)
        if ep is None:
            runpod = _import_runpod()
            from requests.adapters import HTTPAdapter

            ep = runpod.Endpoint(self.settings.endpoint_id, api_key=self.settings.api_key.reveal())
            ep.rp_client.endpoint_url_base = (self.settings.base_url or os.environ.get("RUNPOD_ENDPOINT_BASE_URL")
                                              or runpod.endpoint_url_base).rstrip("/")
            # The SDK retries http:// (not https://) inside requests for ~30 s; ours is the one policy.
            ep.rp_client.rp_session.mount("http://", HTTPAdapter(max_retries=0))
            self._tls.endpoint = ep
        return ep

    def _status(self, ep: Any, job_id: str) -> dict[str, Any]:
        return ep.rp_client.get(f"{ep.endpoint_id}/status/{job_id}", timeout=self.settings.request_timeout_s)

    def _cancel(self, job_id: str) -> None:
        try:
            self._request(lambda ep: ep.rp_client.post(f"{ep.endpoint_id}/cancel/{job_id}", None,
                                                       timeout=self.settings.request_timeout_s), retries=3)
        except Exception as exc:  # the job ends anyway at its executionTimeout
            log.warning("could not cancel RunPod job %s: %s", job_id, self._redact(str(exc)))

    def _request(self, call: Callable[[Any], Any], *, stop: threading.Event | None = None,
                 retries: int | None = None, health: bool = False) -> Any:
        """One SDK call with backoff on connection errors, 429 and 5xx."""
        import requests

        retries = self.settings.http_retries if retries is None else retries
        delay = 0.5
        last = ""
        for attempt in range(retries + 1):
            try:
                return call(self._endpoint())
            except RuntimeError as exc:  # the SDK's 401 message
                if "401" in str(exc) or "Unauthorized" in str(exc):
                    raise _Rejected("RunPod rejected the API key (401 Unauthorized)") from None
                raise
            except requests.HTTPError as exc:
                code = exc.response.status_code if exc.response is not None else 0
                if code == 403:
                    raise _Rejected("RunPod rejected the API key (403 Forbidden)") from None
                if code == 404:
                    if health:
                        raise _Rejected("RunPod endpoint not found (404): check RUNPOD_ENDPOINT_ID") from None
                    raise _NotFound() from None
                if code not in _RETRYABLE_HTTP:
                    raise _HttpError(f"HTTP {code}") from None
                last = f"HTTP {code}"
                wait = _retry_after(exc.response) or delay
            except requests.RequestException as exc:  # connection errors, timeouts, the SDK's own 429 retries
                last = type(exc).__name__
                wait = delay
            if attempt == retries:
                break
            wait = min(self.settings.max_backoff_s, wait) * random.uniform(0.8, 1.2)
            if stop is not None and stop.wait(wait):
                break
            if stop is None:
                time.sleep(wait)
            delay = min(self.settings.max_backoff_s, delay * 2)
        raise _Unreachable(f"RunPod endpoint unreachable ({last})")

    def _redact(self, text: str) -> str:
        key = self.settings.api_key.reveal()
        if len(key) >= 6:
            text = text.replace(key, "***")
        if len(self.settings.endpoint_id) >= 8:
            text = text.replace(self.settings.endpoint_id, "<endpoint>")
        return text


def _import_runpod() -> Any:
    """``import runpod``, undoing its import-time ``logging.basicConfig(level=INFO)`` (in
    ``runpod.serverless.utils.rp_upload``): otherwise every INFO log line of every library,
    hpo_nb's included, lands in the user's notebook or terminal."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import runpod

    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    return runpod


def _ms(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _progress_worker(output: Any) -> str | None:
    return str(output.get("worker")) if remote.is_progress(output) and output.get("worker") else None


def _retry_after(response: Any) -> float | None:
    try:
        return float(response.headers.get("Retry-After"))
    except (AttributeError, TypeError, ValueError):
        return None


def _short(text: str, limit: int = 300) -> str:
    """A FAILED job's error may be the SDK's JSON with a traceback: keep the message."""
    import json

    try:
        data = json.loads(text)
        if isinstance(data, dict) and data.get("error_message"):
            text = f"{data.get('error_type', '')}: {data['error_message']}".strip(": ")
    except ValueError:
        pass
    return text if len(text) <= limit else text[:limit] + "…"
