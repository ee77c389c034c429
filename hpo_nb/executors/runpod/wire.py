"""The wire format between the RunPod client and a worker: the validated job input and the
progress payloads. Both sides import this module, so they cannot drift apart.

A job input is exactly a ``TrialSpec`` as JSON (under 1 KB): registered dataset names only,
bounded numbers, known parameter names, no extra keys; nothing a worker could be tricked into
loading, executing or fetching. Progress payloads are cumulative (every ended epoch's metrics)
and numbered, because RunPod delivers them out of order and ``/status`` shows only the latest.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError
from pydantic import field_validator, model_validator

from ... import datasets, health, space as spaces
from ...errors import ConfigError
from ...spec import TrialOutcome, TrialSpec

MAX_INPUT_BYTES = 1024
# A result (the whole TrialOutcome as JSON) is at most 1 MiB: a tenth of the 10 MiB RunPod takes
# in a request body. Its diagnostics are bounded well below (hpo_nb.diagnostics.record: 256 KiB
# summary + 512 KiB inline activation arrays); encode_result enforces the total.
MAX_RESULT_BYTES = 1024 * 1024
PROTOCOL = 1
INVALID_PREFIX = "invalid trial spec"

Scalar = StrictBool | StrictInt | StrictFloat | StrictStr
_DEVICE_PATTERN = r"^/(gpu|GPU|cpu|CPU):[0-9]{1,2}$"


class JobInput(BaseModel):
    """A ``TrialSpec`` as a worker accepts it: strict types, bounded values, nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trial_number: StrictInt = Field(ge=0, le=1_000_000)
    dataset: StrictStr = Field(min_length=1, max_length=64)
    params: dict[StrictStr, Scalar] = Field(max_length=32)
    max_epochs: StrictInt = Field(ge=1, le=10_000)
    seed: StrictInt = Field(default=0, ge=0, le=2**31 - 1)
    mode: Literal["simple", "health"] = "simple"
    sample_fraction: StrictFloat | StrictInt = Field(default=1.0, gt=0, le=1)
    validation_fraction: StrictFloat | StrictInt = Field(default=0.2, gt=0, lt=1)
    health_weights: dict[StrictStr, StrictFloat | StrictInt] | None = Field(default=None, max_length=8)
    accuracy_weight: StrictFloat | StrictInt = Field(default=0.7, ge=0, le=1)
    devices: list[StrictStr] | None = Field(default=None, max_length=16)
    test_fraction: StrictFloat | StrictInt = Field(default=0.2, ge=0, lt=1)
    diagnostics: StrictBool = True
    metric: Literal["accuracy", "balanced_accuracy"] = "accuracy"
    retry_of: StrictInt | None = Field(default=None, ge=0, le=1_000_000)

    @field_validator("dataset")
    @classmethod
    def _registered(cls, name: str) -> str:
        if not datasets.is_registered(name):
            raise ValueError(f"unknown dataset {name[:40]!r}; workers load registered names only: "
                             f"{', '.join(datasets.names())}")
        return name

    @field_validator("devices")
    @classmethod
    def _devices(cls, devices: list[str] | None) -> list[str] | None:
        import re

        for d in devices or []:
            if not re.match(_DEVICE_PATTERN, d):
                raise ValueError(f"device {d[:20]!r} is not like '/gpu:0'")
        return devices

    @model_validator(mode="after")
    def _params_and_weights(self) -> "JobInput":
        modality = datasets.info(self.dataset).modality
        defaults = spaces.default_space(modality)
        for key, value in self.params.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"params[{key[:40]!r}] must be finite")
            if _integral(defaults.get(key)) and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"params[{key[:40]!r}] must be an integer, not {value!r}")
        try:
            spaces.build_space(modality, dict(self.params))
            health.validate_weights(self.health_weights)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    def to_spec(self) -> TrialSpec:
        """Returns: the validated input as the ``TrialSpec`` ``train_trial`` takes."""
        data = self.model_dump()
        data["sample_fraction"] = float(data["sample_fraction"])
        data["validation_fraction"] = float(data["validation_fraction"])
        data["accuracy_weight"] = float(data["accuracy_weight"])
        data["test_fraction"] = float(data["test_fraction"])
        return TrialSpec.from_dict(data)


def _integral(param: Any) -> bool:
    if isinstance(param, spaces.IntRange):
        return True
    return isinstance(param, spaces.Choice) and all(type(o) is int for o in param.options)


def encode_spec(spec: TrialSpec) -> dict[str, Any]:
    """The job input for a trial.

    Args:
        spec: the trial.

    Returns:
        The JSON-ready dict a worker accepts.

    Raises:
        ConfigError: a worker would reject it (e.g. an unregistered dataset).
    """
    data = spec.to_dict()
    problem = validation_problem(data)
    if problem:
        raise ConfigError(f"this trial cannot run on RunPod: {problem}")
    return data


def decode_input(raw: Any) -> TrialSpec:
    """A worker's view of a job input.

    Args:
        raw: the job's ``input``, as received.

    Returns:
        The trial spec.

    Raises:
        ValueError: an invalid input, with a one-line reason starting ``INVALID_PREFIX``.
    """
    problem = validation_problem(raw)
    if problem:
        raise ValueError(problem)
    return JobInput.model_validate(raw).to_spec()


def validation_problem(raw: Any) -> str | None:
    """Check a job input without raising.

    Args:
        raw: anything a client might send.

    Returns:
        None if ``raw`` is a valid job input, else a short reason (at most 600 characters).
    """
    if not isinstance(raw, Mapping):
        return f"{INVALID_PREFIX}: the job input must be a JSON object (a TrialSpec), not {type(raw).__name__}"
    try:
        size = len(json.dumps(raw, separators=(",", ":"), allow_nan=False))
    except (TypeError, ValueError) as exc:
        return f"{INVALID_PREFIX}: not plain JSON ({str(exc)[:80]})"
    if size > MAX_INPUT_BYTES:
        return f"{INVALID_PREFIX}: {size} bytes; a trial spec is at most {MAX_INPUT_BYTES} bytes"
    try:
        JobInput.model_validate(raw)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}" for err in exc.errors()[:5]
        )
        return f"{INVALID_PREFIX}: {reasons}"[:600]
    return None


# ------------------------------------------------------------------ results


class JobResult(BaseModel):
    """A worker's result: ``{"outcome": TrialOutcome.to_dict()}``, at most ``MAX_RESULT_BYTES``."""

    model_config = ConfigDict(extra="allow")

    outcome: dict[StrictStr, Any]

    @model_validator(mode="after")
    def _bounded(self) -> "JobResult":
        size = _json_size(self.outcome)
        if size > MAX_RESULT_BYTES:
            raise ValueError(f"result of {size} bytes; at most {MAX_RESULT_BYTES}")
        return self


def _json_size(data: Any) -> int:
    return len(json.dumps(data, separators=(",", ":"), allow_nan=False))


def encode_result(outcome: TrialOutcome) -> dict[str, Any]:
    """A worker's result for a trial, within ``MAX_RESULT_BYTES``.

    Diagnostics are bounded where they are made; should the whole still be too large, the inline
    activation arrays go first, then the diagnostics (listed under ``extra["dropped"]``), so the
    trial's own record always comes back.

    Args:
        outcome: the trial's outcome.

    Returns:
        ``{"outcome": ...}``, JSON-ready and at most ``MAX_RESULT_BYTES`` as compact JSON.
    """
    data = outcome.to_dict()
    for drop in ("inline", "diagnostics"):
        if _json_size(data) <= MAX_RESULT_BYTES:
            break
        if drop == "inline":
            (data.get("diagnostics") or {}).pop("inline", None)
        else:
            data["diagnostics"] = {}
        data["extra"] = {**data.get("extra", {}), "dropped": [*data.get("extra", {}).get("dropped", []), drop]}
    return JobResult.model_validate({"outcome": data}).model_dump()


def decode_result(output: Any) -> TrialOutcome | str:
    """The client's view of a COMPLETED job's output.

    Args:
        output: the handler's result, as received.

    Returns:
        The trial's outcome, or a one-line reason why the output is not a valid result.
    """
    try:
        result = JobResult.model_validate(output)
    except ValidationError as exc:
        return "returned no valid outcome: " + "; ".join(err["msg"] for err in exc.errors()[:3])[:300]
    return TrialOutcome.from_dict(result.outcome)


# ------------------------------------------------------------------ progress payloads


def progress_payload(seq: int, worker: str, trial: int, state: Mapping[str, Any]) -> dict[str, Any]:
    """One progress update: an ordered counter plus everything seen so far.

    Args:
        seq: increases with every update of a job (RunPod may deliver them out of order).
        worker: the worker's id.
        trial: the trial number.
        state: epoch, batch, losses and every ended epoch's metrics.

    Returns:
        The payload for ``progress_update``.
    """
    return {"hpo_nb": PROTOCOL, "seq": seq, "worker": worker, "trial": trial, **state}


def is_progress(output: Any) -> bool:
    """Returns: True if ``output`` (a ``/status`` answer's output) is an hpo-nb progress payload."""
    return isinstance(output, Mapping) and output.get("hpo_nb") == PROTOCOL and isinstance(output.get("seq"), int)
