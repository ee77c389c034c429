"""What to try: the CNN and LSTM search spaces, user overrides, and Optuna suggestions.

A space maps parameter names to ``IntRange``, ``FloatRange``, ``Choice`` or ``Fixed``. Users
narrow or fix any parameter with ``search_space={...}``: a list is a choice, a ``(low, high)``
tuple a range, a plain value fixes it. Fixed values reach the model but are not searched
(so importance analysis leaves them out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Union

from .errors import ConfigError


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    step: int = 1
    log: bool = False


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Choice:
    options: tuple[Any, ...]


@dataclass(frozen=True)
class Fixed:
    value: Any


Param = Union[IntRange, FloatRange, Choice, Fixed]
SearchSpace = dict[str, Param]

ACTIVATIONS = ("relu", "elu", "selu", "gelu", "swish", "tanh", "sigmoid")
OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd")
POOLING = ("max", "average", "none")

_ALLOWED: dict[str, tuple[Any, ...]] = {
    "activation": ACTIVATIONS,
    "optimizer": OPTIMIZERS,
    "pooling": POOLING,
    "batch_norm": (False, True),
    "bidirectional": (False, True),
}
_BOUNDS: dict[str, tuple[float, float]] = {
    "conv_blocks": (1, 6), "filters": (1, 1024), "kernel_size": (1, 11), "dense_layers": (0, 6),
    "dense_units": (1, 4096), "dropout": (0.0, 0.9), "learning_rate": (1e-7, 1.0),
    "batch_size": (1, 8192), "embedding_dim": (1, 1024), "lstm_layers": (1, 4), "lstm_units": (1, 1024),
}

COMMON: SearchSpace = {
    "dropout": FloatRange(0.0, 0.5),
    "dense_layers": IntRange(0, 2),
    "dense_units": Choice((32, 64, 128, 256)),
    "optimizer": Choice(("adam", "rmsprop", "sgd")),
    "learning_rate": FloatRange(1e-4, 1e-2, log=True),
    "batch_size": Choice((16, 32, 64, 128)),
}

CNN_SPACE: SearchSpace = {
    "conv_blocks": IntRange(1, 3),
    "filters": Choice((16, 32, 64)),  # first block; each further block doubles it
    "kernel_size": Choice((3, 5)),
    "activation": Choice(("relu", "elu", "tanh")),
    "pooling": Choice(("max", "average")),
    "batch_norm": Choice((False, True)),
    **COMMON,
}

LSTM_SPACE: SearchSpace = {
    "embedding_dim": Choice((16, 32, 64, 128)),
    "lstm_layers": IntRange(1, 2),
    "lstm_units": Choice((16, 32, 64, 128)),
    "bidirectional": Choice((False, True)),
    **COMMON,
    "dense_layers": IntRange(0, 1),
    "batch_size": Choice((32, 64, 128)),
}


def default_space(modality: str) -> SearchSpace:
    """The modality picks the architecture: a CNN for images, an (bi)LSTM for text."""
    return dict(CNN_SPACE if modality == "image" else LSTM_SPACE)


def build_space(modality: str, overrides: Mapping[str, Any] | None = None) -> SearchSpace:
    """The default space for ``modality`` with the user's overrides applied and validated."""
    space = default_space(modality)
    for key, value in (overrides or {}).items():
        if key not in space:
            raise ConfigError(
                f"unknown search-space key {key!r} for a {'CNN' if modality == 'image' else 'LSTM'} "
                f"({modality} data). Valid keys: {', '.join(sorted(space))}."
            )
        space[key] = _parse(key, value, space[key])
    return space


def _parse(key: str, value: Any, default: Param) -> Param:
    if isinstance(value, (IntRange, FloatRange, Choice, Fixed)):
        param = value
    elif isinstance(value, list):
        if not value:
            raise ConfigError(f"search_space[{key!r}] is an empty list; give at least one value.")
        param = Choice(tuple(value)) if len(value) > 1 else Fixed(value[0])
    elif isinstance(value, tuple):
        if len(value) != 2:
            raise ConfigError(f"search_space[{key!r}]: a range is a (low, high) tuple; got {value!r}.")
        low, high = value
        if isinstance(default, FloatRange) or isinstance(low, float) or isinstance(high, float):
            log = default.log if isinstance(default, FloatRange) else False
            param = FloatRange(float(low), float(high), log=log)
        else:
            param = IntRange(int(low), int(high))
    else:
        param = Fixed(value)
    _validate(key, param)
    return param


def _validate(key: str, param: Param) -> None:
    values: tuple[Any, ...]
    if isinstance(param, (IntRange, FloatRange)):
        if param.low > param.high:
            raise ConfigError(f"search_space[{key!r}]: low {param.low} is above high {param.high}.")
        if param.log and param.low <= 0:
            raise ConfigError(f"search_space[{key!r}] is log-scaled, so low must be > 0.")
        values = (param.low, param.high)
    elif isinstance(param, Choice):
        values = param.options
    else:
        values = (param.value,)
    if key in _ALLOWED:
        bad = [v for v in values if v not in _ALLOWED[key]]
        if bad:
            raise ConfigError(f"search_space[{key!r}]: {bad} not supported; choose from {list(_ALLOWED[key])}.")
    elif key in _BOUNDS:
        lo, hi = _BOUNDS[key]
        bad = [v for v in values if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= v <= hi]
        if bad:
            raise ConfigError(f"search_space[{key!r}]: {bad} out of range; values must be numbers in [{lo}, {hi}].")


def suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """Ask an Optuna trial for every searched parameter; fixed ones are added as they are."""
    params: dict[str, Any] = {}
    for name, p in space.items():
        if isinstance(p, Fixed):
            params[name] = p.value
        elif isinstance(p, IntRange):
            params[name] = trial.suggest_int(name, p.low, p.high, step=p.step, log=p.log)
        elif isinstance(p, FloatRange):
            params[name] = trial.suggest_float(name, p.low, p.high, log=p.log)
        else:
            params[name] = trial.suggest_categorical(name, list(p.options))
    return params


def searched(space: SearchSpace) -> list[str]:
    """Names the search varies (fixed parameters excluded)."""
    return [k for k, p in space.items() if not isinstance(p, Fixed)]
