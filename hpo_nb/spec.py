"""The two small records that cross every executor boundary: what to train, and what came of it.

A ``TrialSpec`` is JSON-serializable and under 1 KB, so the same object travels to a local
thread, a MirroredStrategy scope or a RunPod worker. A ``TrialOutcome`` carries everything the
trial produced back, and is stored on the Optuna trial as user attributes.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["simple", "health"]
TrialState = Literal["complete", "pruned", "stopped", "failed"]


@dataclass(frozen=True)
class TrialSpec:
    """What one trial trains. Identical specs give identical accuracy (everything is seeded).
    JSON-serializable (``to_json`` / ``from_dict``), under 1 KB: the same object goes to a local
    thread or a RunPod worker. Fields: the trial's number, the registered dataset name, the
    hyperparameters, the epoch budget, the experiment's seed, the mode, the training and
    validation fractions, the health weights, the accuracy weight, the devices (None:
    the default device; 2+: MirroredStrategy over them), the test fraction, the metric the
    trial is scored on ("accuracy" or "balanced_accuracy", ``objective``), and the trial a retry
    continues (``retry_of``)."""

    trial_number: int
    dataset: str
    params: dict[str, Any]
    max_epochs: int
    seed: int = 0  # the experiment's seed: fixes the validation split; trial seeds derive from it
    mode: Mode = "simple"
    sample_fraction: float = 1.0
    validation_fraction: float = 0.2
    health_weights: dict[str, float] | None = None
    accuracy_weight: float = 0.7
    devices: tuple[str, ...] | None = None  # None: default device; 2+: MirroredStrategy over them
    # Held out for the final test before validation is drawn, never trained or scored on
    # (Dataset.splits); ignored for data with an official test split. Experiment passes its own.
    test_fraction: float = 0.2
    metric: str = "accuracy"  # what the trial is scored on (objective.METRICS), on the validation split
    # The trial this one retries (Optuna's ``failed_trial``: its process died), or None. A retry
    # trains with the original's seed and resumes from its epoch checkpoint (hpo_nb.checkpoints).
    retry_of: int | None = None
    # Per-trial diagnostics (gradient flow, weight histograms, confusion matrix, activation maps;
    # hpo_nb.diagnostics): measured inside training unless False.
    diagnostics: bool = True

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["devices"] = list(self.devices) if self.devices is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrialSpec":
        data = dict(data)
        if data.get("devices") is not None:
            data["devices"] = tuple(data["devices"])
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


@dataclass
class TrialOutcome:
    """Everything a finished (or stopped, pruned, failed) trial produced; JSON-serializable, and
    stored on its Optuna trial as user attributes.

    Attributes:
        trial_number: the trial's number in the study.
        state: "complete", "pruned", "stopped" or "failed".
        accuracy: validation accuracy in [0, 1] (None if it never evaluated).
        score: the objective (accuracy, or the health-mode blend), in [0, 1].
        health: each health metric and ``health_score``, in [0, 1] (``hpo_nb.health``).
        history: Keras history per metric, one value per epoch run.
        architecture: the model's layers and summary, as JSON (for the 3D view).
        duration_s: wall time of the whole trial, in seconds; ``fit_s``: of ``fit`` alone.
        epochs_run: epochs actually trained (pruning and stop end early).
        param_count: the model's trainable and non-trainable parameters.
        replicas: model replicas trained in sync (1: one device); ``devices``: where.
        error: why it failed, or None.
        model_path: the saved ``.keras`` file, or None.
        extra: executor-specific facts (RunPod: ``cost_usd``, ``delay_s``, ``worker``, ...).
        diagnostics: gradient norms, weight histograms, confusion matrix, activation maps
            (``hpo_nb.diagnostics.record``; bounded in size), or empty when turned off.
    """

    trial_number: int
    state: TrialState
    accuracy: float | None = None
    score: float | None = None
    health: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    architecture: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    fit_s: float = 0.0
    epochs_run: int = 0
    param_count: int = 0
    replicas: int = 1
    devices: list[str] = field(default_factory=list)
    error: str | None = None
    model_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrialOutcome":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
