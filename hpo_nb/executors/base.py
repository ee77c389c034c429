"""The executor interface: run a ``TrialSpec`` somewhere, publish progress, return an outcome.

The experiment decides *what* to try (Optuna); an executor decides *how and where* it runs.
Every implementation honours the same contract, so the experiment has no code branch per
backend (KerasTuner's oracle/tuner split; httpx's transport ABC). Backends are chosen by name
through the registry at the end of this module (name -> lazily imported factory and option
check), so nothing here imports a backend before it is chosen.
"""

from __future__ import annotations

import importlib
import threading
from abc import ABC, abstractmethod
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import ConfigError

from ..progress import Publish, Report
from ..spec import TrialOutcome, TrialSpec


@dataclass
class TrialJob:
    """One trial handed to an executor, with the channels it reports through.

    Attributes:
        spec: what to train (JSON-serializable, so it can travel to another machine).
        publish: thread-safe progress sink (the hub); call it with ``progress`` events.
        stop: set => end within one batch; the outcome's state is then "stopped".
        report: ``report(epoch, val_accuracy) -> prune?`` for pruning, or None (no pruning).
        model_dir: where to save the trained model (``.keras``), or None (don't save).
        checkpoint_dir: where to keep epoch checkpoints while it trains, so that a retry after
            a dead process resumes (``hpo_nb.checkpoints``), or None (none kept).
        journal: ``journal(entry)`` records on the trial what the executor started for it (a
            JSON-ready dict naming the executor, e.g. a RunPod job id), so that a later process
            can follow it (``Executor.follow``) or cancel it (``abandon``); None: not recorded.
    """

    spec: TrialSpec
    publish: Publish  # thread-safe progress sink (the hub)
    stop: threading.Event  # set => end within one batch, outcome state "stopped"
    report: Report | None = None  # intermediate values for pruning; True => prune
    model_dir: Path | None = None  # where to save the trained model (.keras)
    checkpoint_dir: Path | None = None  # epoch checkpoints while it trains (hpo_nb.checkpoints)
    journal: Callable[[dict[str, Any]], None] | None = None  # what was started for it, stored on the trial


class Executor(ABC):
    """Runs trials concurrently; ``submit`` never blocks on training. Subclass it to run trials
    somewhere new, and pass an instance as ``Experiment(executor=...)`` (or ``register`` a name).

    Contract: ``submit(job)`` returns a ``concurrent.futures.Future`` that resolves to a
    ``TrialOutcome`` (state complete | pruned | stopped | failed) and should not raise: a future
    that raises gets its trial recorded as failed. Progress goes to ``job.publish``; ``job.stop``
    must end the trial within one batch. ``hpo_nb.executors.InMemoryExecutor`` is the smallest
    implementation.

    Attributes:
        name: shown in the dashboard and recorded per trial ("local", "runpod", ...).
        initial_status: what a submitted trial shows until its first epoch ("queued" for jobs).
    """

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

    def follow(self, job: TrialJob, entry: Mapping[str, Any]) -> "Future[TrialOutcome] | None":
        """Follow work a process that died started for this trial (its journal ``entry``) to its
        end, as ``submit`` would have. Default: None (this executor cannot; the work is abandoned)."""
        return None


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Backend:
    """A named way to run trials (``Experiment(executor="local")``), imported only when chosen.

    ``factory`` and ``check_options`` are ``"module:attribute"`` paths. A local backend is
    built as ``factory(concurrency, device_groups, **options)`` (each running trial takes a free
    group of devices); a ``remote`` one, whose trials each run in another process or machine,
    as ``factory(concurrency=concurrency, **options)``: its datasets travel by registered name
    and each worker places its trial on its own devices (``TrialSpec.devices``)."""

    name: str
    factory: str
    check_options: str | None = None
    remote: bool = False
    abandon: str | None = None  # "module:function": cancel journaled work nobody will follow

    def check(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validate this backend's options before anything trains.

        Args:
            options: the user's options for this backend.

        Returns:
            dict: the options to keep and later pass to ``create``: what the checker returned
            (a pydantic model's fields, secrets still wrapped in ``SecretStr``, so nothing holds
            a key in plain text), or the options as given.

        Raises:
            ConfigError: an option is invalid (or given to a backend that takes none).
        """
        if self.check_options is not None:
            checked = _resolve(self.check_options)(options)
            dump = getattr(checked, "model_dump", None)
            return dict(dump()) if callable(dump) else dict(options)
        if options:
            raise ConfigError(f"executor {self.name!r} takes no options, got {', '.join(map(repr, options))}.")
        return {}

    def create(self, concurrency: int, device_groups: Sequence[tuple[str, ...]] | None = None,
               options: Mapping[str, Any] | None = None) -> Executor:
        """A fresh executor for one search."""
        factory = _resolve(self.factory)
        if self.remote:
            return factory(concurrency=concurrency, **dict(options or {}))
        return factory(concurrency, device_groups, **dict(options or {}))


_BACKENDS: dict[str, Backend] = {}


def register(name: str, factory: str, check_options: str | None = None, remote: bool = False,
             abandon: str | None = None) -> Backend:
    """Make ``Experiment(executor=name)`` run trials on ``factory`` ("module:Class")."""
    backend = Backend(name, factory, check_options, remote, abandon)
    _BACKENDS[name] = backend
    return backend


def backend(name: str) -> Backend:
    """The registered backend ``name``; ``ConfigError`` (listing the names) for any other."""
    if name not in _BACKENDS:
        raise ConfigError(f"executor must be one of {', '.join(repr(n) for n in _BACKENDS)} "
                          f"or an Executor instance, not {name!r}.")
    return _BACKENDS[name]


def names() -> list[str]:
    """Registered backend names, in registration order."""
    return list(_BACKENDS)


def abandon(entry: Mapping[str, Any]) -> str:
    """Cancel work a dead process started (a trial's journal entry) that no executor here follows.

    Args:
        entry: the journal entry; its ``"executor"`` names the registered backend that wrote it.

    Returns:
        What was done, one line for the user (e.g. "cancelled RunPod job ...", or why not).
    """
    name = str(entry.get("executor"))
    found = _BACKENDS.get(name)
    if found is None or found.abandon is None:
        return f"{name} work {entry.get('id')!r} left as it is (no way to cancel it here)"
    return str(_resolve(found.abandon)(entry))


def _resolve(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


register("local", "hpo_nb.executors.local:LocalExecutor")
register("runpod", "hpo_nb.executors.runpod:RunPodExecutor", check_options="hpo_nb.executors.runpod:check_options",
         remote=True, abandon="hpo_nb.executors.runpod:abandon_job")
