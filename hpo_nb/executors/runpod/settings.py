"""The ``runpod={...}`` options of an experiment, validated before any trial starts.

One pydantic model states every option with its type, bounds and default; ``check_options``
turns a validation failure into a ``ConfigError`` that names the option and what it must be.
The API key is a ``SecretStr``: it prints as a mask, and no message built here contains it.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictBool, StrictInt, ValidationError

from ...errors import ConfigError
from ...spec import TrialSpec

MAX_EXECUTION_TIMEOUT_S = 7 * 24 * 3600  # RunPod's longest executionTimeout policy

_Positive = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
_NonNegative = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
_Count = Annotated[StrictInt, Field(ge=0)]


class RunPodSettings(BaseModel):
    """Everything ``runpod={...}`` may set. Build it with ``check_options``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_id: Annotated[str, Field(strict=True, min_length=1)]
    api_key: SecretStr
    base_url: Annotated[str, Field(strict=True, pattern=r"^https?://")] | None = None  # default: env, then RunPod
    poll_interval_s: _Positive = 1.0
    max_retries: _Count = 2  # per trial, for FAILED / TIMED_OUT / lost jobs
    fallback: StrictBool = True  # endpoint unreachable or key rejected -> run locally
    price_per_second: _NonNegative = 0.00019  # an example (a 24 GB GPU's flex rate); set your GPU's
    budget_usd: _Positive | None = None  # stop submitting once spent
    execution_timeout_s: _Positive | None = None  # default: startup_s + epoch_timeout_s * max_epochs
    epoch_timeout_s: _Positive = 600.0
    startup_s: _Positive = 300.0
    request_timeout_s: _Positive = 10.0
    http_retries: _Count = 6
    max_backoff_s: _Positive = 30.0
    # IN_PROGRESS without new progress this long -> the worker is lost: cancel and retry. On by default:
    # an endpoint may leave a dead worker's job IN_PROGRESS until its executionTimeout (25 min at 2
    # epochs, 105 at 10). A live worker reports at job start, every 0.5 s within an epoch and at each
    # epoch end; its longest silence is loading data and compiling before the first batch (seconds for
    # the registered datasets once cached), so 3 minutes leaves a wide margin for a live worker and
    # frees a lost one 8-35x sooner. None turns it off (for a single batch longer than 3 minutes).
    stall_timeout_s: _Positive | None = 180.0

    def __repr_args__(self) -> Any:
        yield "endpoint_id", mask(self.endpoint_id)
        for name in ("base_url", "max_retries", "fallback", "budget_usd"):
            yield name, getattr(self, name)

    def execution_timeout_ms(self, spec: TrialSpec) -> int:
        """RunPod's ``executionTimeout`` policy for one trial, from its budget of epochs.

        Args:
            spec: the trial; its ``max_epochs`` sets the default budget.

        Returns:
            Milliseconds, between 1 s and RunPod's maximum of 7 days.
        """
        seconds = self.execution_timeout_s
        if seconds is None:
            seconds = self.startup_s + self.epoch_timeout_s * spec.max_epochs
        return int(1000 * min(max(seconds, 1.0), MAX_EXECUTION_TIMEOUT_S))

    def redact(self, text: str) -> str:
        """``text`` with the API key (and a long endpoint id) masked out.

        Args:
            text: any message that may have passed through an HTTP library or the endpoint.

        Returns:
            The text, safe to log or to store on a trial.
        """
        key = self.api_key.get_secret_value()
        if len(key) >= 6:
            text = text.replace(key, "***")
        if len(self.endpoint_id) >= 8:
            text = text.replace(self.endpoint_id, "<endpoint>")
        return text


OPTIONS = tuple(RunPodSettings.model_fields)


def check_options(options: Mapping[str, Any]) -> RunPodSettings:
    """Validate ``Experiment(runpod={...})``, filling the endpoint id and key from the environment.

    Args:
        options: the user's options; ``endpoint_id`` and ``api_key`` default to
            ``RUNPOD_ENDPOINT_ID`` and ``RUNPOD_API_KEY``; the key may be a ``str`` or a
            ``SecretStr``.

    Returns:
        The settings, with the key held as a ``SecretStr``.

    Raises:
        ConfigError: an unknown option, a missing endpoint id or key, or a value of the wrong
            type or out of range; the message names the option and never contains the key.
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        hint = " (set concurrency on the Experiment)" if "concurrency" in unknown else ""
        raise ConfigError(f"unknown runpod option(s) {', '.join(map(repr, unknown))}{hint}; "
                          f"valid: {', '.join(sorted(OPTIONS))}.")
    opts = dict(options)
    opts["endpoint_id"] = opts.get("endpoint_id") or os.environ.get("RUNPOD_ENDPOINT_ID")
    opts["api_key"] = opts.get("api_key") or os.environ.get("RUNPOD_API_KEY")
    if not opts["endpoint_id"] or not isinstance(opts["endpoint_id"], str):
        raise ConfigError("executor='runpod' needs an endpoint id: set RUNPOD_ENDPOINT_ID, or pass "
                          "runpod={'endpoint_id': ...} (the id shown in the RunPod console).")
    if not opts["api_key"] or not isinstance(opts["api_key"], (str, SecretStr)):
        raise ConfigError("executor='runpod' needs an API key: set RUNPOD_API_KEY, or pass "
                          "runpod={'api_key': ...}.")
    try:
        return RunPodSettings(**opts)
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None  # never chain: pydantic's text shows input values


_RULES = {"base_url": "an http(s) URL ending in /v2", "fallback": "True or False",
          "max_retries": "an integer >= 0", "http_retries": "an integer >= 0", "price_per_second": "a number >= 0"}


def _explain(exc: ValidationError) -> str:
    """One line per bad option: its name, what it must be, and the value given (never the key's)."""
    lines = []
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else "runpod"
        given = "" if name == "api_key" else f", not {error.get('input')!r}"
        lines.append(f"runpod option {name} must be {_RULES.get(name, 'a number > 0')}{given}.")
    return " ".join(dict.fromkeys(lines))


def mask(text: str) -> str:
    """The first characters of an identifier, for reprs: ``'abc…'``.

    Args:
        text: an endpoint id or similar.

    Returns:
        A short prefix that tells ids apart without printing them.
    """
    return text[:3] + "…" if len(text) > 4 else "…"
