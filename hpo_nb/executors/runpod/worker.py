"""The RunPod serverless worker: ``handler`` is what RunPod's worker loop calls, one job = one trial.

Start it with ``python -m hpo_nb.executors.runpod.worker`` (``runpod_image/handler.py`` does,
and so do the loopback endpoint's worker processes); ``--test_input '{"input": {...}}'`` runs
one job and exits (the SDK's local test mode).

The job input is a ``TrialSpec`` (validated by ``wire``: registered dataset names,
bounded values, no extra keys, under 1 KB). The trial runs ``hpo_nb.training.train_trial``,
the same function local threads run, in a thread so the worker's event loop stays free to
receive a cancel. Progress goes out with ``runpod.serverless.progress_update`` as numbered,
cumulative payloads. A cancel sets the trial's stop event: training ends after the current
batch. The result is ``{"outcome": TrialOutcome.to_dict()}`` (``wire.encode_result``: at most
1 MiB, diagnostics' activation arrays inline for the driver to store); an invalid input ends the job
FAILED with a one-line reason and the worker keeps serving.

Environment (all optional):
  HPO_NB_REFRESH_WORKER=true   restart the worker process after each job (a clean TensorFlow)
  HPO_NB_CHECKPOINT_DIR=PATH   where running trials keep epoch checkpoints, so a job retried after
                               its worker died resumes from the last epoch (hpo_nb.checkpoints);
                               default /runpod-volume/hpo-nb/checkpoints when the endpoint has a
                               network volume attached, else none (a worker's own disk dies with it)
  HPO_NB_SIMULATE_EPOCH_S=2.0  benchmark mode: no training, each epoch sleeps this long while
                               reporting progress like a real trial (measures the job plumbing)
  RUNPOD_LOG_LEVEL=INFO        the SDK logs every handler output at DEBUG
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from typing import Any

os.environ.setdefault("RUNPOD_LOG_LEVEL", "INFO")  # before the SDK reads it: DEBUG logs whole outputs

import runpod  # noqa: E402

from ...progress import EpochDiagnostics, EpochEnded, EpochProgress, Event  # noqa: E402
from ...spec import TrialOutcome, TrialSpec  # noqa: E402
from . import wire  # noqa: E402

WORKER_ID = os.environ.get("RUNPOD_POD_ID", "local")
REFRESH_WORKER = os.environ.get("HPO_NB_REFRESH_WORKER", "").lower() in ("1", "true", "yes")
SIMULATE_EPOCH_S = float(os.environ.get("HPO_NB_SIMULATE_EPOCH_S") or 0)
PROGRESS_INTERVAL_S = 0.5  # within-epoch updates; every epoch end is sent at once
MAX_EPOCHS_IN_PAYLOAD = 200
MAX_GRADIENTS_IN_PAYLOAD = 20  # the live gradient flow's latest epochs (the result holds them all)
VOLUME = "/runpod-volume"  # where RunPod mounts an endpoint's network volume
CHECKPOINT_DIR = os.environ.get("HPO_NB_CHECKPOINT_DIR") or (
    os.path.join(VOLUME, "hpo-nb", "checkpoints") if os.path.isdir(VOLUME) else None)

log = runpod.RunPodLogger()


class StopFlag(threading.Event):
    """The trial's stop event. It counts the checks that found it set; training checks once per
    finished batch, so the count is how many batches ended after the stop was requested."""

    def __init__(self) -> None:
        super().__init__()
        self.seen_set = 0

    def is_set(self) -> bool:
        value = super().is_set()
        if value:
            self.seen_set += 1
        return value


class ProgressReporter:
    """Turns training events into numbered, cumulative ``progress_update`` payloads.

    Args:
        job: the RunPod job (what ``progress_update`` posts for).
        spec: the trial.
        send: ``(job, payload) -> None``; default ``runpod.serverless.progress_update`` when
            the worker has job URLs, else nowhere (``--test_input`` runs).
    """

    def __init__(self, job: dict[str, Any], spec: TrialSpec, send: Any = None) -> None:
        self._job = job
        self._spec = spec
        self._send = send or (runpod.serverless.progress_update if os.environ.get("RUNPOD_WEBHOOK_POST_OUTPUT")
                              else _nowhere)  # `--test_input` runs have no job URLs to post to
        self._lock = threading.Lock()
        self._seq = 0
        self._last = 0.0
        self._state: dict[str, Any] = {"epoch": 0, "total_epochs": spec.max_epochs, "batch": 0,
                                       "total_batches": None, "loss": None, "accuracy": None, "epochs": [],
                                       "gradients": []}

    def __call__(self, event: Event) -> None:
        """Take one training event; epoch ends are sent at once, batches at most every 0.5 s."""
        with self._lock:
            if isinstance(event, EpochProgress):
                self._state.update(epoch=event.epoch, batch=event.batch, total_batches=event.total_batches,
                                   loss=event.loss, accuracy=event.accuracy)
                if event.batch and time.monotonic() - self._last < PROGRESS_INTERVAL_S:
                    return
            elif isinstance(event, EpochDiagnostics):  # sent with the epoch's end, which follows it
                gradients = self._state["gradients"]
                gradients.append({"epoch": event.epoch, "layers": list(event.layers), "mean": _json_floats(event.mean),
                                  "max": _json_floats(event.max),
                                  **({"non_finite": list(event.non_finite), "batches": event.batches}
                                     if event.batches else {})})
                del gradients[:-MAX_GRADIENTS_IN_PAYLOAD]
                return
            elif isinstance(event, EpochEnded):
                epochs = self._state["epochs"]
                epochs.append({"epoch": event.epoch, "metrics": dict(event.metrics)})
                del epochs[:-MAX_EPOCHS_IN_PAYLOAD]
                self._state.update(epoch=event.epoch, batch=self._state["total_batches"] or self._state["batch"])
            else:
                return
            self._emit_locked()

    def started(self) -> None:
        """Send the first payload (epoch 0), so the client sees the trial running."""
        with self._lock:
            self._emit_locked()

    def _emit_locked(self) -> None:
        self._seq += 1
        self._last = time.monotonic()
        state = {**self._state, "epochs": list(self._state["epochs"]), "gradients": list(self._state["gradients"])}
        self._send(self._job, wire.progress_payload(self._seq, WORKER_ID, self._spec.trial_number, state))


def _json_floats(values: Any) -> list[float | None]:
    """Gradient norms for a JSON payload: NaN and infinities as null (strict JSON has neither)."""
    return [float(v) if math.isfinite(v) else None for v in values]


def _nowhere(job: dict[str, Any], payload: Any) -> None:
    """Progress sink for one-off local runs."""


def run_trial(spec: TrialSpec, publish: Any, stop: threading.Event) -> TrialOutcome:
    """The one training path, or (benchmark mode only) a fixed-length simulated trial.

    Args:
        spec: the trial.
        publish: where training events go (a ``ProgressReporter``).
        stop: set => training ends after the batch in flight.

    Returns:
        The trial's outcome.
    """
    if SIMULATE_EPOCH_S:
        return simulate_trial(spec, publish, stop, SIMULATE_EPOCH_S)
    from ...training import train_trial

    return train_trial(spec, publish, stop, checkpoint_dir=CHECKPOINT_DIR)


def simulate_trial(spec: TrialSpec, publish: Any, stop: threading.Event, epoch_s: float,
                   steps: int = 10) -> TrialOutcome:
    """Benchmark mode: sleeps ``epoch_s`` per epoch in ``steps`` batches, reporting like a real
    trial and honouring ``stop`` after each batch. It trains nothing and says so in ``extra``.

    Args:
        spec: the trial (its number and epochs).
        publish: where the events go.
        stop: set => the trial ends after the batch in flight, state ``"stopped"``.
        epoch_s: seconds per simulated epoch.
        steps: batches per epoch.

    Returns:
        An outcome with ``extra={"simulated": True}``.
    """
    started = time.perf_counter()
    epochs = 0
    for epoch in range(1, spec.max_epochs + 1):
        publish(EpochProgress(spec.trial_number, epoch, spec.max_epochs, 0, steps))
        for batch in range(1, steps + 1):
            time.sleep(epoch_s / steps)
            publish(EpochProgress(spec.trial_number, epoch, spec.max_epochs, batch, steps))
            if stop.is_set():
                return TrialOutcome(spec.trial_number, "stopped", epochs_run=epochs,
                                    duration_s=time.perf_counter() - started, extra={"simulated": True})
        epochs = epoch
        publish(EpochEnded(spec.trial_number, epoch, spec.max_epochs, {"loss": 1.0 / epoch, "val_accuracy": 0.0}))
    return TrialOutcome(spec.trial_number, "complete", accuracy=0.0, score=0.0, epochs_run=epochs,
                        duration_s=time.perf_counter() - started, extra={"simulated": True})


async def handler(job: dict[str, Any]) -> dict[str, Any]:
    """RunPod's handler: validate the input, train in a thread, stop within one batch on cancel.

    Args:
        job: ``{"id": ..., "input": <wire-format TrialSpec>}``.

    Returns:
        ``{"outcome": TrialOutcome.to_dict()}``, or ``{"error": reason}`` for an invalid input
        (the job ends FAILED; the worker keeps serving).

    Raises:
        asyncio.CancelledError: the job was cancelled (after training has stopped).
    """
    try:
        spec = wire.decode_input(job.get("input"))
    except ValueError as exc:
        log.error(str(exc), job.get("id"))
        return {"error": str(exc)}
    stop = StopFlag()
    reporter = ProgressReporter(job, spec)
    reporter.started()
    work = asyncio.ensure_future(asyncio.to_thread(run_trial, spec, reporter, stop))
    try:
        outcome = await asyncio.shield(work)
    except asyncio.CancelledError:
        stop.set()
        outcome = await work  # the thread ends after its current batch; keep the worker busy until then
        log.info(f"trial {spec.trial_number} stopped on request: {outcome.state} after {outcome.epochs_run} "
                 f"epoch(s); batches finished after the stop: {stop.seen_set}", job.get("id"))
        raise
    outcome.extra = {**outcome.extra, "worker": WORKER_ID}
    return wire.encode_result(outcome)  # within wire.MAX_RESULT_BYTES


def main() -> None:
    """Serve jobs until the platform stops this worker (the SDK's worker loop; blocks)."""
    if not SIMULATE_EPOCH_S:
        from ... import trial_memory, training  # noqa: F401  (import TensorFlow now: cold start, not job time)

        trial_memory.begin_search()  # a worker runs trials until it is recycled: one search, never ended
    runpod.serverless.start({"handler": handler, "refresh_worker": REFRESH_WORKER})


if __name__ == "__main__":
    main()
