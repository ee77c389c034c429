"""What to try: the CNN and LSTM search spaces, user overrides, and Optuna suggestions.

A space maps parameter names to ``IntRange``, ``FloatRange``, ``Choice`` or ``Fixed``. Users
narrow or fix any parameter with ``search_space={...}``: a list is a choice, a ``(low, high)``
tuple a range, a plain value fixes it. Fixed values reach the model but are not searched
(so importance analysis leaves them out).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Union

from .errors import ConfigError
from .values import plain


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
SEQUENCE_POOLING = ("last", "max", "average")
LR_SCHEDULES = ("linear", "cosine", "constant")

_ALLOWED: dict[str, tuple[Any, ...]] = {
    "activation": ACTIVATIONS,
    "optimizer": OPTIMIZERS,
    "pooling": POOLING,
    "batch_norm": (False, True),
    "bidirectional": (False, True),
    "sequence_pooling": SEQUENCE_POOLING,
    "lr_schedule": LR_SCHEDULES,
}
_BOUNDS: dict[str, tuple[float, float]] = {
    "conv_blocks": (1, 6), "filters": (1, 1024), "kernel_size": (1, 11), "dense_layers": (0, 6),
    "dense_units": (1, 4096), "dropout": (0.0, 0.9), "embedding_dropout": (0.0, 0.9), "learning_rate": (1e-7, 1.0),
    "batch_size": (1, 8192), "embedding_dim": (1, 1024), "lstm_layers": (1, 4), "lstm_units": (1, 1024),
}

# Priors for short trainings. Every range below learns within a few epochs; measured on digits
# (40 random configurations x 5 epochs, benchmarks/RESULTS.md "Search quality"): the configurations
# that stayed near chance or below 0.85 all had average pooling, a learning rate of 3e-4 or
# batch 64 on 1,437 samples; plain SGD and tanh were the slowest learners in the runs.
# Users can still search any of these (``search_space={"optimizer": ["sgd", "adam"]}``).
#
# The learning rate is the peak of a schedule that decays linearly to zero over the trial
# (``models.learning_rate_of``; Li et al. 2020). With it, the default first configuration's
# best validation accuracy rose on all three corpora it was tried on (seeds 0-2, RESULTS.md
# "Levers") once the peak was doubled against the constant rate it replaced, so the image range
# is twice the constant-rate one (5e-4..5e-3 before).
COMMON: SearchSpace = {
    "dropout": FloatRange(0.0, 0.5),
    "dense_layers": IntRange(0, 2),
    "dense_units": Choice((64, 128, 256)),
    "optimizer": Choice(("adam", "rmsprop")),
    "learning_rate": FloatRange(1e-3, 1e-2, log=True),
    "lr_schedule": Fixed("linear"),
    "batch_size": Choice((16, 32, 64, 128)),
}

CNN_SPACE: SearchSpace = {
    "conv_blocks": IntRange(1, 3),
    "filters": Choice((16, 32, 64)),  # first block; each further block doubles it
    "kernel_size": Choice((3, 5)),
    "activation": Choice(("relu", "elu", "gelu")),
    "pooling": Fixed("max"),
    "batch_norm": Choice((False, True)),
    **COMMON,
}

# Text priors, from 40 random configurations of a wider space x 3 epochs on sentence polarity
# (``benchmarks/text_priors_sweep.py``, benchmarks/RESULTS.md): the clearly weak corners were a
# learning rate of 5e-4 (mean best validation accuracy 0.716 against 0.741-0.745 for 1e-3..1e-2)
# and batch 128 (0.714 against 0.740-0.749); a second LSTM layer doubled the time for no gain
# (0.736 vs 0.741), so one layer is searched unless asked (``search_space={"lstm_layers": [1, 2]}``).
# Max pooling over a bidirectional LSTM's outputs is in the space: the best of three poolings in
# Conneau et al. (2017, "Supervised Learning of Universal Sentence Representations", table 3), and
# level with the others here (0.744 vs last 0.741, mean 0.732).
LSTM_SPACE: SearchSpace = {
    "embedding_dim": Choice((32, 64, 128)),
    "embedding_dropout": FloatRange(0.0, 0.5),
    "lstm_layers": Fixed(1),
    "lstm_units": Choice((32, 64, 128)),
    "bidirectional": Choice((False, True)),
    "sequence_pooling": Choice(("average", "max", "last")),
    **COMMON,
    # Doubled with the linear decay, as for images: in 8 x 3 searches (polarity, SMS; seeds 0-2)
    # every trial below 2e-3 scored at the bottom of its search (polarity 0.695-0.746, SMS 0.953).
    "learning_rate": FloatRange(2e-3, 2e-2, log=True),
    "dense_layers": IntRange(0, 1),
    "batch_size": Choice((32, 64)),
}

# Known-good first configurations, tried before anything is sampled (KerasTuner likewise starts
# from its hyperparameters' defaults): a textbook small CNN (two 3x3 conv blocks with max pooling,
# one dense layer, dropout, Adam peaking at 4e-3 and decaying linearly: 0.976-0.997 after 5
# epochs on digits, seeds 0-4), and a bidirectional LSTM with mean pooling over its outputs and
# embedding dropout (Adam peaking at 2e-3: doubling this one configuration's peak, as for
# images, lost 0.004 on polarity, seeds 0-2, within the noise of 1,706 validation sentences).
DEFAULT_CONFIGS: dict[str, dict[str, Any]] = {
    "image": {"conv_blocks": 2, "filters": 32, "kernel_size": 3, "activation": "relu", "pooling": "max",
              "batch_norm": False, "dropout": 0.3, "dense_layers": 1, "dense_units": 128,
              "optimizer": "adam", "learning_rate": 4e-3, "batch_size": 32},
    "text": {"embedding_dim": 64, "embedding_dropout": 0.3, "lstm_layers": 1, "lstm_units": 64,
             "bidirectional": True, "sequence_pooling": "average", "dropout": 0.3, "dense_layers": 0,
             "dense_units": 64, "optimizer": "adam", "learning_rate": 2e-3, "batch_size": 32},
}

# At least this many optimizer steps per epoch: on 1,437 digits, batch 64 (23 steps) and 128
# (12 steps) per epoch left 5-epoch trials far below batch 16-32 (45-90 steps).
MIN_STEPS_PER_EPOCH = 40


def batch_sizes_for(n_train: int | None, options: tuple[int, ...]) -> tuple[int, ...]:
    """The batch sizes that give at least ``MIN_STEPS_PER_EPOCH`` steps per epoch on
    ``n_train`` samples. When fewer than two fit, the two smallest of ``options`` plus 8 and 16
    are kept (so a tiny dataset still searches small batches: 200 samples give (8, 16)).

    Args:
        n_train: training samples per epoch, or None to keep ``options`` as they are.
        options: candidate batch sizes, ascending.

    Returns:
        The batch sizes to search, ascending.
    """
    if not n_train:
        return options
    fitting = tuple(b for b in options if n_train / b >= MIN_STEPS_PER_EPOCH)
    smallest = tuple(sorted(set(options) | {8, 16}))[:2]
    return fitting if len(fitting) >= 2 else tuple(sorted(set(fitting) | set(smallest)))


# The largest CNN of the default space may cost at most this many multiply-adds per sample in
# its convolutions (forward pass). A budget counted in trials x epochs must not go mostly to one
# trial: on the 28x28 MNIST split, 3 blocks of 64 -> 128 -> 256 filters with 5x5 kernels (about
# 81 M) took 52-85 s of an 8 x 3 search's 127-141 s, and was never the best of its search
# (benchmarks/RESULTS.md "Levers"); 3 blocks from 32 filters fit (about 21 M on 28x28 grey,
# 29 M on 32x32 colour), and on 8x8 digits everything does (64 filters: about 7 M).
MAX_CONV_MACS = 30e6


def conv_macs(input_shape: tuple[int, ...], blocks: int, filters: int, kernel_size: int) -> float:
    """Multiply-adds per sample of ``models``' convolution blocks (each doubles the filters and,
    with pooling, halves the side), as built for ``input_shape`` (h, w, channels)."""
    h, w, channels = (tuple(input_shape) + (1, 1, 1))[:3]
    macs, side_h, side_w = 0.0, int(h), int(w)
    for i in range(blocks):
        out = filters * 2**i
        macs += side_h * side_w * channels * out * kernel_size**2
        channels = out
        if min(side_h, side_w) >= 2:
            side_h, side_w = side_h // 2, side_w // 2
    return macs


def filters_for(input_shape: tuple[int, ...] | None, space: SearchSpace) -> tuple[int, ...] | None:
    """The first-block filter counts whose largest network in ``space`` (most blocks, largest
    kernel) stays within ``MAX_CONV_MACS``; at least the smallest option stays.

    Args:
        input_shape: one image's shape (h, w, channels), or None to keep the options.
        space: a CNN space whose ``filters``, ``conv_blocks`` and ``kernel_size`` are read.

    Returns:
        The filter counts to search, ascending, or None when ``filters`` is not a choice.
    """
    filters = space.get("filters")
    if not isinstance(filters, Choice):
        return None
    if not input_shape or len(input_shape) < 2:
        return filters.options
    blocks = _largest(space.get("conv_blocks"), 2)
    kernel = _largest(space.get("kernel_size"), 3)
    fitting = tuple(f for f in filters.options if conv_macs(input_shape, blocks, f, kernel) <= MAX_CONV_MACS)
    return fitting or (min(filters.options),)


def _largest(param: Param | None, default: int) -> int:
    if isinstance(param, (IntRange, FloatRange)):
        return int(param.high)
    if isinstance(param, Choice):
        return int(max(param.options))
    if isinstance(param, Fixed):
        return int(param.value)
    return default


def default_space(modality: str, n_train: int | None = None) -> SearchSpace:
    """The modality picks the architecture: a CNN for images, an (bi)LSTM for text.

    Args:
        modality: "image" or "text".
        n_train: training samples per epoch; when given, batch sizes that would give fewer
            than ``MIN_STEPS_PER_EPOCH`` steps per epoch are left out.

    Returns:
        A fresh dict of parameter name -> range or choice.
    """
    space = dict(CNN_SPACE if modality == "image" else LSTM_SPACE)
    batch = space["batch_size"]
    if isinstance(batch, Choice):
        space["batch_size"] = Choice(batch_sizes_for(n_train, batch.options))
    return space


def _fit_filters(space: SearchSpace, input_shape: tuple[int, ...] | None) -> None:
    filters = filters_for(input_shape, space)
    if filters is not None:
        space["filters"] = Choice(filters) if len(filters) > 1 else Fixed(filters[0])


def default_config(modality: str, space: SearchSpace) -> dict[str, Any] | None:
    """The known-good first configuration for ``modality``, fitted into ``space``.

    Each searched parameter takes the default value when the space allows it, else the
    nearest allowed value (a choice's closest option, a range's clipped value); fixed
    parameters are left out (Optuna does not store them).

    Returns:
        Parameter name -> value for ``study.enqueue_trial``, or None when nothing is searched.
    """
    wanted = DEFAULT_CONFIGS.get(modality, {})
    config: dict[str, Any] = {}
    for name, param in space.items():
        if isinstance(param, Fixed) or name not in wanted:
            continue
        config[name] = _nearest(param, wanted[name])
    return config or None


def _nearest(param: Param, value: Any) -> Any:
    if isinstance(param, Choice):
        if value in param.options:
            return value
        numeric = all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in param.options)
        if numeric and isinstance(value, (int, float)):
            return min(param.options, key=lambda o: abs(o - value))
        return param.options[0]
    if isinstance(param, IntRange):
        return int(min(max(int(value), param.low), param.high))
    if isinstance(param, FloatRange):
        return float(min(max(float(value), param.low), param.high))
    return value


def build_space(modality: str, overrides: Mapping[str, Any] | None = None,
                n_train: int | None = None, input_shape: tuple[int, ...] | None = None) -> SearchSpace:
    """The default space for ``modality`` with the user's overrides applied and validated.

    Args:
        modality: "image" (CNN space) or "text" (LSTM space).
        overrides: parameter name -> a list (choice), a ``(low, high)`` tuple (range) or a
            plain value (fixed).
        n_train: training samples per epoch (sizes the default batch-size choice).
        input_shape: one sample's shape (sizes the default filter-count choice for images;
            the user's own ``filters``, ``conv_blocks`` or ``kernel_size`` are kept as given).

    Returns:
        Parameter name -> ``IntRange`` / ``FloatRange`` / ``Choice`` / ``Fixed``; ``dense_units``
        is fixed (not searched) when ``dense_layers`` is fixed at 0.

    Raises:
        ConfigError: an unknown key, or a value outside what the model builder supports.
    """
    space = default_space(modality, n_train)
    for key, value in (overrides or {}).items():
        if key not in space:
            raise ConfigError(
                f"unknown search-space key {key!r} for a {'CNN' if modality == 'image' else 'LSTM'} "
                f"({modality} data). Valid keys: {', '.join(sorted(space))}."
            )
        space[key] = _parse(key, value, space[key])
    if modality == "image" and "filters" not in (overrides or {}):  # sized to the blocks and kernels searched
        _fit_filters(space, input_shape)
    _fix_unused(modality, space)
    return space


def comparable_reprs(reprs: Mapping[str, str]) -> dict[str, str]:
    """A recorded search space (parameter name -> repr, as a study stores it) with what
    ``_fix_unused`` changed left out: ``dense_units`` when ``dense_layers`` is fixed at 0. A
    study recorded before that change searched it for nothing; its trials are comparable.

    Args:
        reprs: parameter name -> ``repr`` of its ``Param``.

    Returns:
        dict[str, str]: the same, less the parameters no model of the space uses.
    """
    unused = {"dense_units"} if reprs.get("dense_layers") == repr(Fixed(0)) else set()
    return {k: v for k, v in reprs.items() if k not in unused}


def _fix_unused(modality: str, space: SearchSpace) -> None:
    """Fix the parameters the model cannot use in ``space`` (as ``active_params`` leaves them out
    of what is shown): ``dense_units`` when ``dense_layers`` is fixed at 0, at the value the first
    configuration would take, so no trial is spent on, and no importance given to, a no-op."""
    layers, units = space.get("dense_layers"), space.get("dense_units")
    if isinstance(layers, Fixed) and not int(layers.value or 0) and units is not None and not isinstance(units, Fixed):
        space["dense_units"] = Fixed(_nearest(units, DEFAULT_CONFIGS.get(modality, {}).get("dense_units", 64)))


def _python(value: Any) -> Any:
    """NumPy values as Python's own (``np.int64(16)`` -> 16, ``np.float32(1e-3)`` -> 0.001 as
    written, an array -> a list), inside lists and tuples too: the space is checked, recorded
    in the study as JSON and compared on reopening, which NumPy's types would all trip."""
    if isinstance(value, (list, tuple)):
        return type(value)(_python(v) for v in value)
    if getattr(value, "ndim", 0) and hasattr(value, "tolist"):  # an array: its items
        return [_python(v) for v in value]
    return plain(value)


def _parse(key: str, value: Any, default: Param) -> Param:
    value = _python(value)
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


def from_json(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The command line's JSON search space (``hpo-nb run --search-space``) as ``build_space``
    overrides. JSON has no tuples, so a range is spelled ``{"range": [low, high]}``; a choice
    is a list (or ``{"choice": [...]}``); any other value fixes the parameter.

    A two-number list for a parameter that is a float range by default (``learning_rate``,
    ``dropout``, ``embedding_dropout``) is refused: ``[1e-4, 1e-2]`` would try only those two
    values, which is rarely what was meant.

    Args:
        overrides: the parsed JSON object, parameter name -> value.

    Returns:
        dict: name -> tuple (range), list (choice) or plain value (fixed).

    Raises:
        ConfigError: the value is not an object, a ``range`` is not two numbers, or a list is
            ambiguous as above.
    """
    if not isinstance(overrides, Mapping):
        raise ConfigError('--search-space must be a JSON object, e.g. \'{"conv_blocks": [1, 2]}\'.')
    float_ranges = {k for m in ("image", "text") for k, p in default_space(m).items() if isinstance(p, FloatRange)}
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if isinstance(value, Mapping) and set(value) == {"range"}:
            bounds = value["range"]
            if not (isinstance(bounds, list) and len(bounds) == 2
                    and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)):
                raise ConfigError(f'search space {key!r}: "range" takes two numbers [low, high], not {bounds!r}.')
            out[key] = tuple(bounds)
        elif isinstance(value, Mapping) and set(value) == {"choice"} and isinstance(value["choice"], list):
            out[key] = list(value["choice"])
        elif isinstance(value, Mapping):
            raise ConfigError(f'search space {key!r}: an object is {{"range": [low, high]}} or '
                              f'{{"choice": [a, b, ...]}}, not {json.dumps(value)}.')
        elif (key in float_ranges and isinstance(value, list) and len(value) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            raise ConfigError(
                f"search space {key!r}: {json.dumps(value)} is ambiguous. For the range between them write "
                f'{{"{key}": {{"range": {json.dumps(value)}}}}}; to try only these two values write '
                f'{{"{key}": {{"choice": {json.dumps(value)}}}}}.')
        else:
            out[key] = value
    return out


def active_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` without the ones the built model ignores (``models.build_model``): ``dense_units``
    when ``dense_layers`` is 0, and for the LSTM (text) model ``activation``, which only the dense
    layers use. What a user should read as the trial's configuration.

    Args:
        params: a trial's hyperparameters (name -> value).

    Returns:
        dict[str, Any]: the ones that shape the model or its training.
    """
    if int(params.get("dense_layers", 1) or 0) > 0:
        return dict(params)
    unused = {"dense_units"} | ({"activation"} if "embedding_dim" in params or "lstm_units" in params else set())
    return {k: v for k, v in params.items() if k not in unused}
