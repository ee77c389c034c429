"""The executor interface: run a ``TrialSpec`` somewhere, publish progress, return an outcome.

The experiment decides *what* to try (Optuna); an executor decides *how and where* it runs.
Every implementation honours the same contract, so the experiment has no code branch per
backend (KerasTuner's oracle/tuner split; httpx's transport ABC).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from ..progress import Publish, Report
from ..spec import TrialOutcome, TrialSpec


@dataclass
class TrialJob:
    """One trial handed to an executor, with the channels it reports through."""

    spec: TrialSpec
    publish: Publish  # thread-safe progress sink (the hub)
    stop: threading.Event  # set => end within one batch, outcome state "stopped"
    report: Report | None = None  # intermediate values for pruning; True => prune
    model_dir: Path | None = None  # where to save the trained model (.keras)


class Executor(ABC):
    """Runs trials concurrently; ``submit`` never blocks on training."""

    name: str = "executor"
    initial_status: str = "running"  # what a submitted trial shows until its first epoch ("queued" for jobs)

    def prepare(self, publish: Publish) -> None:
        """Called once before the first trial (checks, workers, fallbacks). Default: nothing."""

    @abstractmethod
    def submit(self, job: TrialJob) -> "Future[TrialOutcome]":
        """Start a trial; the future resolves to its outcome and should not raise."""

    @abstractmethod
    def shutdown(self, wait: bool = True) -> None:
        """Release threads, workers and connections."""

    def describe(self) -> dict[str, object]:
        """What to record on each trial about where it ran (no secrets)."""
        return {"executor": self.name}

    def accepting(self) -> bool:
        """False once this executor takes no more trials (e.g. a spending cap was reached)."""
        return True
