"""One progress model for every renderer: immutable events in, consistent snapshots out.

Training threads (or the RunPod client) call ``ProgressHub.publish`` with small frozen events.
The hub folds them into its state under one lock: cheap, never blocking on a renderer.
Renderers subscribe; each gets its own dispatcher thread that wakes on change and hands
it a ``Snapshot`` at a bounded rate, so no renderer ever runs on a training thread's time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Protocol, Union, runtime_checkable

from .values import finite_float

# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class TrialStarted:
    trial: int
    total_epochs: int
    params: Mapping[str, Any] = field(default_factory=dict)
    status: str = "running"  # "queued" while a remote job waits for a worker
    where: str = "local"  # "local", "runpod:<worker id>", ...
    time: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class TrialStatus:
    """A change of where or how a trial runs (remote queue state, worker id)."""

    trial: int
    status: str
    where: str | None = None


@dataclass(frozen=True, slots=True)
class EpochProgress:
    """Progress inside an epoch; ``epoch`` is 1-based, ``batch`` counts finished batches."""

    trial: int
    epoch: int
    total_epochs: int
    batch: int
    total_batches: int | None
    loss: float | None = None
    accuracy: float | None = None


@dataclass(frozen=True, slots=True)
class EpochEnded:
    trial: int
    epoch: int
    total_epochs: int
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EpochDiagnostics:
    """One ended epoch's gradient norm per trainable layer (mean and max over its batches with a
    finite norm; ``hpo_nb.diagnostics.collect``): what the live gradient flow draws.
    ``non_finite``: per layer, the batches whose norm was NaN or infinite, of ``batches``
    (empty and 0 when not counted: a probe batch under MirroredStrategy)."""

    trial: int
    epoch: int
    layers: tuple[str, ...]
    mean: tuple[float, ...]
    max: tuple[float, ...]
    non_finite: tuple[int, ...] = ()
    batches: int = 0


@dataclass(frozen=True, slots=True)
class TrialFinished:
    """A trial ended; also the snapshot's record of it (``FinishedTrial``)."""

    trial: int
    state: str  # complete | pruned | stopped | failed
    accuracy: float | None = None
    score: float | None = None
    duration_s: float = 0.0
    params: Mapping[str, Any] = field(default_factory=dict)
    health: Mapping[str, float] = field(default_factory=dict)
    architecture: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Notice:
    """A message for the user, e.g. 'RunPod unreachable: running locally'. ``closing``: a verdict
    on the finished search (every trial failed, the best does not beat the majority class), which
    a caller's own summary may show instead (``Snapshot.closing_notices``). ``warned``: already
    raised as a Python ``UserWarning`` (``Snapshot.warned_notices``), so a console in the same
    terminal need not print it again."""

    message: str
    closing: bool = False
    warned: bool = False


Event = Union[TrialStarted, TrialStatus, EpochProgress, EpochEnded, EpochDiagnostics, TrialFinished, Notice]
Publish = Callable[[Event], None]
Report = Callable[[int, float], bool]  # (epoch, val_accuracy) -> prune now? (the pruning channel)

# ------------------------------------------------------------------------- snapshot


@dataclass(frozen=True, slots=True)
class RunningTrial:
    trial: int
    epoch: int  # the epoch in progress, 1-based (0 before the first batch)
    total_epochs: int
    epoch_fraction: float  # 0..1 within the current epoch
    epochs_done: int
    status: str
    where: str
    started_at: float
    loss: float | None = None
    accuracy: float | None = None
    val_accuracy: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    fit_started_at: float | None = None  # when its first batch was reported (Unix time, s): set-up ends
    gradients: tuple[EpochDiagnostics, ...] = ()  # per ended epoch, when diagnostics are on

    @property
    def overall_fraction(self) -> float:
        """Fraction of the trial's epoch budget done (pruning may end it earlier)."""
        if self.total_epochs <= 0:
            return 0.0
        done = self.epochs_done + (self.epoch_fraction if self.epoch > self.epochs_done else 0.0)
        return min(1.0, done / self.total_epochs)

    def projected_duration_s(self, now: float) -> float | None:
        """Its whole duration, extrapolated once an epoch has ended: set-up (model build and
        compile, up to the first batch) plus the epochs so far scaled to the full budget. None
        before the first epoch ends."""
        fraction = self.overall_fraction
        if self.status != "running" or self.epochs_done < 1 or fraction <= 0:
            return None
        fit_start = self.fit_started_at if self.fit_started_at is not None else self.started_at
        setup = max(0.0, fit_start - self.started_at)
        return setup + max(0.0, now - fit_start) / fraction


FinishedTrial = TrialFinished  # the snapshot keeps each finished trial as its own event (copied)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a renderer shows, consistent at one instant (immutable; a ``Renderer`` gets one
    at a time from its own thread).

    Attributes:
        mode: "simple" or "health".
        total_trials: the search's budget (``n_trials``).
        concurrency: trials that may run at once.
        running: trials in progress, by number (epoch, fraction of the epoch, live metrics).
        finished: finished trials, by number (state, accuracy, score, health, duration in s).
        started_at: when the search started (Unix time, s).
        now: when this snapshot was taken (Unix time, s).
        done: the search has ended; this is the final snapshot.
        stopping: ``stop()`` was called; running trials are ending.
        notices: messages for the user (e.g. "RunPod unreachable: running locally").
        version: grows with every change; equal versions mean equal snapshots.
        closing_notices: those of ``notices`` that are verdicts on the finished search.
        warned_notices: those of ``notices`` already raised as a Python ``UserWarning``.
    """

    mode: str
    total_trials: int
    concurrency: int
    running: tuple[RunningTrial, ...]
    finished: tuple[FinishedTrial, ...]
    started_at: float
    now: float
    done: bool
    stopping: bool
    notices: tuple[str, ...]
    version: int
    closing_notices: tuple[str, ...] = ()
    warned_notices: tuple[str, ...] = ()

    def count(self, state: str) -> int:
        return sum(1 for t in self.finished if t.state == state)

    @property
    def completed(self) -> int:
        return self.count("complete")

    @property
    def pruned(self) -> int:
        return self.count("pruned")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def stopped(self) -> int:
        return self.count("stopped")

    @property
    def performed(self) -> int:
        """Trials that count toward the budget: complete, pruned or failed (not stopped)."""
        return self.completed + self.pruned + self.failed

    @property
    def elapsed_s(self) -> float:
        return max(0.0, self.now - self.started_at)

    def _best(self, key: str) -> FinishedTrial | None:
        scored = [t for t in self.finished if t.state == "complete" and getattr(t, key) is not None]
        return max(scored, key=lambda t: getattr(t, key), default=None)

    @property
    def best_trial(self) -> FinishedTrial | None:
        """The complete trial with the highest score (the search objective)."""
        return self._best("score")

    @property
    def best_accuracy(self) -> float | None:
        best = self._best("accuracy")
        return best.accuracy if best else None

    @property
    def best_score(self) -> float | None:
        best = self._best("score")
        return best.score if best else None

    @property
    def mean_duration_s(self) -> float | None:
        durations = [t.duration_s for t in self.finished if t.state in ("complete", "pruned")]
        return sum(durations) / len(durations) if durations else None

    @property
    def eta_s(self) -> float | None:
        """Seconds left: trials not started cost a mean trial each, running ones what is left of it.
        Before any trial finished, the mean comes from running trials extrapolated from their
        first epoch (``RunningTrial.projected_duration_s``); None until then."""
        if self.done:
            return 0.0
        projected = {t.trial: t.projected_duration_s(self.now) for t in self.running}
        mean = self.mean_duration_s
        if mean is None:
            guesses = [d for d in projected.values() if d is not None]
            if not guesses:
                return None
            mean = sum(guesses) / len(guesses)
        not_started = max(0, self.total_trials - self.performed - len(self.running))
        left_running = sum(max(0.0, (projected[t.trial] or mean) - (self.now - t.started_at)) for t in self.running)
        return (not_started * mean + left_running) / max(1, self.concurrency)


# ------------------------------------------------------------------------ renderer


@runtime_checkable
class Renderer(Protocol):
    """Anything that shows snapshots: ``renderer(snapshot)``, called from its own subscription
    thread at a bounded rate and once more with the final snapshot. A renderer may also have a
    ``close()`` method, called once from the search thread after the search ended. A plain
    function ``f(snapshot)`` is a renderer. Which renderer a search gets is decided in
    ``hpo_nb.views`` (notebook dashboard or console bars); the core only knows this protocol."""

    def __call__(self, snapshot: "Snapshot") -> None: ...


# ----------------------------------------------------------------------------- hub


class ProgressHub:
    """Thread-safe fold of events into one snapshot; wakes subscribers on change."""

    def __init__(self, total_trials: int, mode: str = "simple", concurrency: int = 1) -> None:
        self._lock = threading.Condition(threading.Lock())
        self._total = total_trials
        self._mode = mode
        self._concurrency = concurrency
        self._running: dict[int, RunningTrial] = {}
        self._finished: dict[int, FinishedTrial] = {}
        self._notices: list[str] = []
        self._closing: list[str] = []
        self._warned: list[str] = []
        self._started_at = time.time()
        self._done = False
        self._stopping = False
        self._version = 0
        self._subscriptions: list[Subscription] = []

    # -- writers (any thread) -------------------------------------------------------

    def publish(self, event: Event) -> None:
        with self._lock:
            self._apply(event)
            self._version += 1
            self._lock.notify_all()

    def add_finished(self, trials: list[FinishedTrial]) -> None:
        """Seed trials finished before this hub existed (a resumed or shared study)."""
        with self._lock:
            for t in trials:
                if t.trial not in self._running:
                    self._finished[t.trial] = t
            self._version += 1
            self._lock.notify_all()

    def set_stopping(self) -> None:
        with self._lock:
            self._stopping = True
            self._version += 1
            self._lock.notify_all()

    def close(self) -> None:
        """Mark the search done; subscribers get one last snapshot and end."""
        with self._lock:
            self._done = True
            self._version += 1
            self._lock.notify_all()
        for sub in list(self._subscriptions):
            sub.wake()
            sub.join()

    def _apply(self, event: Event) -> None:
        if isinstance(event, TrialStarted):
            self._finished.pop(event.trial, None)
            self._running[event.trial] = RunningTrial(
                trial=event.trial, epoch=0, total_epochs=event.total_epochs, epoch_fraction=0.0,
                epochs_done=0, status=event.status, where=event.where, started_at=event.time,
                params=dict(event.params),
            )
        elif isinstance(event, TrialStatus):
            cur = self._running.get(event.trial)
            if cur is not None:
                began = cur.status != "running" and event.status == "running"
                self._running[event.trial] = replace(
                    cur, status=event.status, where=event.where or cur.where,
                    started_at=time.time() if began else cur.started_at,  # queue time is not trial time
                )
        elif isinstance(event, EpochProgress):
            cur = self._running.get(event.trial)
            if cur is None or event.epoch < cur.epoch or event.epoch <= cur.epochs_done:
                return  # stale (out-of-order remote update) or trial already over
            fraction = (
                min(1.0, event.batch / event.total_batches) if event.total_batches else cur.epoch_fraction
            )
            if event.epoch == cur.epoch and fraction < cur.epoch_fraction:
                return
            self._running[event.trial] = replace(
                cur, epoch=event.epoch, total_epochs=event.total_epochs, epoch_fraction=fraction,
                status="running", fit_started_at=cur.fit_started_at or time.time(),
                loss=event.loss if event.loss is not None else cur.loss,
                accuracy=event.accuracy if event.accuracy is not None else cur.accuracy,
            )
        elif isinstance(event, EpochEnded):
            cur = self._running.get(event.trial)
            if cur is None or event.epoch <= cur.epochs_done:
                return
            m = event.metrics
            self._running[event.trial] = replace(
                cur, epoch=event.epoch, epochs_done=event.epoch, total_epochs=event.total_epochs,
                epoch_fraction=1.0, status="running", fit_started_at=cur.fit_started_at or time.time(),
                loss=finite_float(m.get("loss"), cur.loss), accuracy=finite_float(m.get("accuracy"), cur.accuracy),
                val_accuracy=finite_float(m.get("val_accuracy"), cur.val_accuracy),
            )
        elif isinstance(event, EpochDiagnostics):
            cur = self._running.get(event.trial)
            if cur is not None and all(g.epoch != event.epoch for g in cur.gradients):
                self._running[event.trial] = replace(
                    cur, gradients=tuple(sorted((*cur.gradients, event), key=lambda g: g.epoch)))
        elif isinstance(event, TrialFinished):
            self._running.pop(event.trial, None)
            self._finished[event.trial] = replace(  # copies: the publisher may reuse its dicts
                event, params=dict(event.params), health=dict(event.health),
                architecture=dict(event.architecture), extra=dict(event.extra),
            )
        elif isinstance(event, Notice):
            self._notices.append(event.message)
            if event.closing:
                self._closing.append(event.message)
            if event.warned:
                self._warned.append(event.message)

    # -- readers --------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._version

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot_locked()

    def _snapshot_locked(self) -> Snapshot:
        return Snapshot(
            mode=self._mode, total_trials=self._total, concurrency=self._concurrency,
            running=tuple(sorted(self._running.values(), key=lambda t: t.trial)),
            finished=tuple(sorted(self._finished.values(), key=lambda t: t.trial)),
            started_at=self._started_at, now=time.time(), done=self._done, stopping=self._stopping,
            notices=tuple(self._notices), version=self._version, closing_notices=tuple(self._closing),
            warned_notices=tuple(self._warned),
        )

    def wait_for_change(self, version: int, timeout: float | None = None) -> Snapshot:
        """Block until the hub's version differs from ``version`` (or timeout)."""
        with self._lock:
            self._lock.wait_for(lambda: self._version != version or self._done, timeout)
            return self._snapshot_locked()

    def subscribe(self, render: Renderer, max_hz: float = 5.0) -> "Subscription":
        """Call ``render(snapshot)`` from a dedicated thread, at most ``max_hz`` times a second,
        whenever something changed; always once more with the final snapshot."""
        sub = Subscription(self, render, max_hz)
        with self._lock:
            self._subscriptions.append(sub)
        sub.start()
        return sub


class Subscription:
    """A dispatcher thread that feeds one renderer; ``close()`` ends it after a last render."""

    def __init__(self, hub: ProgressHub, render: Renderer, max_hz: float) -> None:
        self._hub = hub
        self._render = render
        self._interval = 1.0 / max_hz if max_hz > 0 else 0.0
        self._closed = threading.Event()
        self._wake = threading.Event()  # cuts the rate-limit pause short when the search ends
        self._thread = threading.Thread(target=self._loop, name="hpo-nb-render", daemon=True)
        self.errors: list[BaseException] = []

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        seen = -1
        while True:
            snap = self._hub.wait_for_change(seen, timeout=1.0)
            final = snap.done or self._closed.is_set()
            if snap.version != seen or final:
                seen = snap.version
                try:
                    self._render(snap)
                except Exception as exc:  # a broken renderer must not stop the search
                    self.errors.append(exc)
            if final:
                return
            if self._interval:
                self._wake.wait(self._interval)

    def wake(self) -> None:
        """Render the next change now, without waiting out the rate limit (the final snapshot)."""
        self._wake.set()

    def close(self) -> None:
        self._closed.set()
        self.wake()
        with self._hub._lock:
            self._hub._lock.notify_all()
        self.join()

    def join(self, timeout: float | None = 10.0) -> None:
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
