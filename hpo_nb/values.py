"""Small values, checked and shown one way everywhere: the strict integer, finite float and
fraction checks behind every ``ConfigError`` about a number, and the short display form of a
hyperparameter value (dashboard, console, app, 3D labels). Pure functions, no imports beyond
the standard library, so every layer may use them."""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

from .errors import ConfigError

OBJECTIVE_METRICS = ("accuracy", "balanced_accuracy")
"""``Experiment(metric=)``: what trials are scored on, on the validation split (``objective``)."""
GRACE_BEATS = 6  # heartbeats a running trial may miss before it counts as its dead process's


def grace_period(heartbeat_interval: int) -> int:
    """Seconds a running trial may stay silent before a process sharing the study fails and
    retries it: ``GRACE_BEATS`` intervals plus 1 s, generous because a busy machine can delay a
    beat. The one formula behind ``Experiment`` and ``hpo-nb run --help``.

    Args:
        heartbeat_interval: seconds between heartbeats, >= 1.

    Returns:
        int: the grace period in seconds.
    """
    return GRACE_BEATS * heartbeat_interval + 1


def is_int(value: Any) -> bool:
    """True for a real integer, NumPy's included (``np.int64(7)``: ``numbers.Integral``); a
    ``bool`` is not one, though Python says it is."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """True for a real number, NumPy's scalars included (``numbers.Real``), that is not a ``bool``."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def plain(value: Any) -> Any:
    """A checked number as Python's own ``int`` or ``float`` (``np.int64(7)`` -> 7,
    ``np.float32(0.3)`` -> 0.3), so it can be recorded in a study (JSON) and sent to a worker;
    anything else unchanged."""
    if is_int(value):
        return int(value)
    if is_number(value) and not isinstance(value, float):
        try:  # np.float32(0.3) is 0.3 as written, not its binary 0.30000001192...
            return float(str(value))
        except ValueError:  # e.g. a Fraction
            return float(value)
    return float(value) if is_number(value) else value


def same_value(recorded: Any, now: Any) -> bool:
    """Whether a recorded setting and this run's are the same: numbers by ``math.isclose``
    (0.3 recorded, ``0.1 * 3`` given), mappings and sequences item by item, anything else by
    ``==``."""
    if is_number(recorded) and is_number(now):
        return math.isclose(float(recorded), float(now), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(recorded, dict) and isinstance(now, dict):
        return recorded.keys() == now.keys() and all(same_value(recorded[k], now[k]) for k in recorded)
    if isinstance(recorded, (list, tuple)) and isinstance(now, (list, tuple)):
        return len(recorded) == len(now) and all(same_value(a, b) for a, b in zip(recorded, now))
    return bool(recorded == now)


CLI_FLAGS = {"n_trials": "--trials", "max_epochs": "--max-epochs", "seed": "--seed", "concurrency": "--concurrency",
             "heartbeat_interval": "--heartbeat-interval", "gpus_per_trial": "--gpus-per-trial",
             "sample_fraction": "--sample-fraction", "validation_fraction": "--validation-fraction",
             "test_fraction": "--test-fraction", "accuracy_weight": "--accuracy-weight", "mode": "--mode",
             "metric": "--metric", "pruner": "--pruner", "dataset": "--dataset", "search_space": "--search-space"}
"""``hpo-nb run``'s flag for each ``Experiment`` argument it sets, for errors' ``cli`` form (the
checks below, a reopen's refusals)."""


def _refuse(name: str, rest: str) -> ConfigError:
    """``"<name> <rest>"``, with ``"<--flag> <rest>"`` as its ``cli`` form where the CLI has a flag for it."""
    flag = CLI_FLAGS.get(name)
    return ConfigError(f"{name} {rest}", cli=f"{flag} {rest}" if flag else None)


def check_int(name: str, value: Any, minimum: int) -> None:
    """Raise ``ConfigError`` unless ``value`` is an integer >= ``minimum``."""
    if not is_int(value) or value < minimum:
        raise _refuse(name, f"must be an integer >= {minimum}, not {value!r}.")


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    """Raise ``ConfigError`` unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise _refuse(name, f"must be one of {', '.join(repr(c) for c in choices)}, not {value!r}.")


def check_metric(value: Any) -> None:
    """Raise ``ConfigError`` unless ``value`` is one of ``OBJECTIVE_METRICS``."""
    check_choice("metric", value, OBJECTIVE_METRICS)


def check_fraction(name: str, value: Any, low_open: bool = False, high_open: bool = False) -> None:
    """Raise ``ConfigError`` unless ``value`` is a number in [0, 1] (``low_open``: 0 excluded,
    ``high_open``: 1 excluded)."""
    ok = is_number(value)
    ok = ok and (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)
    if not ok:
        lo, hi = ("(0" if low_open else "[0"), ("1)" if high_open else "1]")
        raise _refuse(name, f"must be a number in {lo}, {hi}, not {value!r}.")


def finite_float(value: Any, default: float | None = None) -> float | None:
    """``float(value)`` when that is a finite number; otherwise ``default`` (None, NaN, inf,
    strings that are not numbers, objects without ``__float__``)."""
    if value is None:
        return default
    try:
        f = float(value)
    except (TypeError, ValueError):
        return default
    return f if math.isfinite(f) else default


def short_value(value: Any, grouping: bool = False, exponent: bool = True) -> str:
    """A value, short: 0.0031 -> '3.1e-03', 0.25 -> '0.25', True -> 'yes', (3, 3) -> '3×3'.
    ``grouping``: integers with thousands separators (12,345); ``exponent=False``: small floats
    in three significant digits (0.00312) rather than e-notation."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if exponent and value != 0 and abs(value) < 0.01:
            return f"{value:.1e}"
        return f"{value:.3g}"
    if grouping and isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return "×".join(str(i) for i in value)
    return str(value)
