"""What the client learns from ``/status`` answers: cost over attempts, and progress as events.

``Attempts`` adds up the timing and cost of every attempt of one trial (failed attempts are
billed too). ``Tracker`` turns one attempt's numbered, cumulative progress payloads (which
arrive out of order, and only the latest is visible) into each ``EpochEnded`` exactly once,
within-epoch ``EpochProgress`` and pruning reports; and builds the trial's outcome when the
job ends, or when the client ends it (pruned, stopped).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ...diagnostics import record
from ...progress import EpochDiagnostics, EpochEnded, EpochProgress
from ...spec import TrialOutcome
from ..base import TrialJob
from . import wire


@dataclass
class Attempts:
    """Timing and cost over all attempts of one trial, however each ended (completed, failed,
    cancelled by the client, stalled or lost: every one was billed).

    An endpoint may leave ``executionTime`` out until a job ends (or for good, when the job is
    lost): until it says, the attempt's execution time is what the client saw, from the first
    IN_PROGRESS answer on, so the spending cap counts it while it runs.

    Args:
        price: dollars per second of execution time.
        clock: seconds, monotonic (tests pass a fake).
    """

    price: float
    clock: Callable[[], float] = time.monotonic
    delay_ms: float = 0.0
    execution_ms: float = 0.0
    live_delay_ms: float = 0.0
    live_execution_ms: float = 0.0
    running_since: float | None = None
    reported: bool = False
    worker: str | None = None
    job_id: str | None = None
    attempts: int = 0

    def observe(self, status: Mapping[str, Any]) -> None:
        """Take the running attempt's times and worker id from a ``/status`` answer."""
        if status.get("status") == "IN_PROGRESS" and self.running_since is None:
            self.running_since = self.clock()
        self.live_delay_ms = _ms(status.get("delayTime"), self.live_delay_ms)
        execution = _ms(status.get("executionTime"), 0.0)
        if execution > 0:
            self.live_execution_ms, self.reported = execution, True
        elif not self.reported:
            self.seen_running()
        output = status.get("output")
        worker = status.get("workerId") or (wire.is_progress(output) and output.get("worker"))
        if worker:
            self.worker = str(worker)

    def seen_running(self) -> None:
        """No ``executionTime`` from the endpoint: count the time seen since IN_PROGRESS."""
        if self.running_since is not None and not self.reported:
            self.live_execution_ms = max(self.live_execution_ms, 1000.0 * (self.clock() - self.running_since))

    def close_attempt(self) -> None:
        """The running attempt ended: its times count as spent."""
        self.seen_running()
        self.delay_ms += self.live_delay_ms
        self.execution_ms += self.live_execution_ms
        self.live_delay_ms = self.live_execution_ms = 0.0
        self.running_since, self.reported = None, False

    @property
    def cost_usd(self) -> float:
        """Estimated dollars: execution time of all attempts so far times the price."""
        return (self.execution_ms + self.live_execution_ms) / 1000.0 * self.price

    def extra(self) -> dict[str, Any]:
        """Returns: what a RunPod trial adds to ``TrialOutcome.extra`` (times, cost, worker, job)."""
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


class Tracker:
    """Turns one attempt's progress payloads into events, once each, in order.

    Args:
        job: the trial (its spec, and ``report`` for the pruner).
        publish: where events go (the progress hub).
        clock: seconds, monotonic, for ``last_change`` (tests pass a fake).
    """

    def __init__(self, job: TrialJob, publish: Callable[[Any], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._job = job
        self._publish = publish
        self._clock = clock
        self.seq = 0
        self.epochs: list[dict[str, Any]] = []
        self.last_change = clock()

    def follow(self, output: Any) -> bool:
        """Publish what a progress payload shows that was not shown yet.

        Args:
            output: a ``/status`` answer's ``output`` while the job runs (anything; payloads
                that are not newer hpo-nb progress are ignored).

        Returns:
            True if the pruner, told about a newly ended epoch, says to stop the trial.
        """
        if not wire.is_progress(output) or output["seq"] <= self.seq:
            return False
        self.seq = output["seq"]
        self.last_change = self._clock()
        spec = self._job.spec
        prune = False
        for entry in output.get("epochs") or []:
            epoch = entry.get("epoch") if isinstance(entry, dict) else None
            if not isinstance(epoch, int) or epoch <= len(self.epochs):
                continue
            self.epochs.append(entry)
            metrics = {k: float(v) for k, v in (entry.get("metrics") or {}).items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            self._publish_gradients(output.get("gradients"), epoch)
            self._publish(EpochEnded(spec.trial_number, epoch, spec.max_epochs, metrics))
            value = metrics.get("val_accuracy")
            if self._job.report is not None and value is not None and not prune:
                prune = bool(self._job.report(epoch, value))
        epoch = output.get("epoch")
        if isinstance(epoch, int) and epoch > len(self.epochs):
            self._publish(EpochProgress(spec.trial_number, epoch, spec.max_epochs, int(output.get("batch") or 0),
                                        output.get("total_batches"), loss=output.get("loss"),
                                        accuracy=output.get("accuracy")))
        return prune

    def _publish_gradients(self, entries: Any, epoch: int) -> None:
        """The live gradient flow of ``epoch`` from a payload's ``gradients`` list, if there."""
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("epoch") == epoch:
                try:
                    self._publish(EpochDiagnostics(self._job.spec.trial_number, epoch, tuple(map(str, entry["layers"])),
                                                   record.unround(entry["mean"]), record.unround(entry["max"]),
                                                   tuple(int(n) for n in entry.get("non_finite") or ()),
                                                   int(entry.get("batches") or 0)))
                except (KeyError, TypeError, ValueError):
                    pass
                return

    def completed(self, output: Any) -> TrialOutcome | str:
        """The outcome of a COMPLETED job, publishing the epochs that ended after the last poll.

        Args:
            output: the handler's result, ``{"outcome": TrialOutcome.to_dict()}``.

        Returns:
            The trial's outcome (its ``model_path`` cleared: the model stays on the worker), or
            a reason to retry if the result holds no outcome.
        """
        spec = self._job.spec
        if not isinstance(output, dict) or not isinstance(output.get("outcome"), dict):
            return "returned no outcome"
        outcome = wire.decode_result(output)
        if isinstance(outcome, str):
            return outcome
        outcome.trial_number = spec.trial_number
        outcome.model_path = None
        history = outcome.history
        for epoch in range(len(self.epochs) + 1, len(history.get("loss") or []) + 1):
            metrics = {k: float(v[epoch - 1]) for k, v in history.items() if len(v) >= epoch}
            self._publish(EpochEnded(spec.trial_number, epoch, spec.max_epochs, metrics))
            if self._job.report is not None and "val_accuracy" in metrics:
                self._job.report(epoch, metrics["val_accuracy"])
        return outcome

    def client_outcome(self, state: str, started: float) -> TrialOutcome:
        """The record of a trial the client ended (its job was cancelled): what was seen.

        Args:
            state: ``"pruned"`` or ``"stopped"``.
            started: ``time.monotonic()`` when the trial began.

        Returns:
            The outcome, with the history and accuracy of the epochs seen.
        """
        history = self.history()
        values = history.get("val_accuracy") or []
        accuracy = values[-1] if values else None
        spec = self._job.spec
        return TrialOutcome(spec.trial_number, state, accuracy=accuracy,
                            score=accuracy if spec.mode == "simple" else None, history=history,
                            epochs_run=len(self.epochs), duration_s=time.monotonic() - started)

    def history(self) -> dict[str, list[float]]:
        """Returns: metric name -> one value per ended epoch seen so far."""
        out: dict[str, list[float]] = {}
        for e in self.epochs:
            for k, v in (e.get("metrics") or {}).items():
                if isinstance(v, (int, float)):
                    out.setdefault(k, []).append(float(v))
        return out


def _ms(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default
