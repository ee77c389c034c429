"""Reopening a stored study without repeating its settings.

A study records what makes its scores comparable (``study.open_study``). ``Experiment`` passes
None for every such argument the user left out; here those take the study's recorded value when
it exists, and the new-study default (``DEFAULTS``) when it does not. A value the user did give
is kept as given, so one that differs from the study's is still refused by ``study.open_study``.
Pure data, plus one read of the storage (``recorded_settings``).
"""

from __future__ import annotations

from typing import Any, Mapping

from . import health, objective
from .errors import ConfigError
from .values import check_choice, check_fraction, check_int, plain, same_value

MODES = ("simple", "health")
# A new study's value of each setting a reopened study adopts. test_fraction (the dataset's own
# test split, else 0.2) and search_space (the modality's full space) are None for a new study;
# health_weights None is equal weights (``health.DEFAULT_WEIGHTS``).
DEFAULTS: dict[str, Any] = {"dataset": "digits", "mode": "simple", "seed": 0, "max_epochs": 10, "metric": "accuracy",
                            "sample_fraction": 1.0, "validation_fraction": 0.2, "test_fraction": None,
                            "accuracy_weight": 0.7, "health_weights": None}


def check_given(given: Mapping[str, Any]) -> dict[str, Any]:
    """Check the settings the user gave (None: not given, adopted or defaulted later).

    Args:
        given: ``mode``, ``metric``, ``max_epochs``, ``seed``, ``sample_fraction``,
            ``validation_fraction``, ``accuracy_weight``, ``health_weights`` (and others,
            passed through) as passed to ``Experiment``.

    Returns:
        dict: ``given``, with NumPy scalars (``np.int64(7)``) as Python's ``int`` and ``float``.

    Raises:
        ConfigError: a given value is out of range or not one of the choices.
    """
    checks = {"mode": lambda v: check_choice("mode", v, MODES), "metric": objective.check_metric,
              "max_epochs": lambda v: check_int("max_epochs", v, 1), "seed": lambda v: check_int("seed", v, 0),
              "sample_fraction": lambda v: check_fraction("sample_fraction", v, low_open=True),
              "validation_fraction": lambda v: check_fraction("validation_fraction", v, low_open=True,
                                                              high_open=True),
              "accuracy_weight": lambda v: check_fraction("accuracy_weight", v),
              "health_weights": health.validate_weights}
    for key, check in checks.items():
        if given.get(key) is not None:
            check(given[key])
    out = {k: plain(v) for k, v in given.items()}
    if given.get("health_weights") is not None:
        out["health_weights"] = {k: float(plain(v)) for k, v in given["health_weights"].items()}
    return out


def recorded_settings(storage: Any, name: str) -> dict[str, Any]:
    """The settings study ``name`` recorded (its ``hpo_nb`` user attribute), without creating it.

    Args:
        storage: an Optuna storage (``storage.open_storage``).
        name: the study name.

    Returns:
        dict: dataset, mode, seed, split fractions, max_epochs, metric, search space (reprs), ...;
        empty when there is no such study (or it recorded nothing).
    """
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return {}
    stored = storage.get_study_user_attrs(study_id).get("hpo_nb")
    return dict(stored) if isinstance(stored, dict) else {}


def adopt(given: Mapping[str, Any], recorded: Mapping[str, Any]) -> dict[str, Any]:
    """Each of ``DEFAULTS``' settings: as given, else as the study recorded it, else the default
    (a given number equal to the recorded one up to rounding is the recorded one).

    Args:
        given: the user's values (None: not given).
        recorded: the study's settings (``recorded_settings``; empty for a new study).

    Returns:
        dict: a value for every key of ``DEFAULTS`` (test_fraction may stay None: the dataset's
        default split).
    """
    out = {}
    for key, default in DEFAULTS.items():
        value = given.get(key)
        if value is not None and key in recorded and same_value(recorded[key], value):
            value = recorded[key]  # 0.1 * 3 given, 0.3 recorded: the study's own, to the last bit
        out[key] = value if value is not None else recorded.get(key, default)
    return out


def adopted_dataset(recorded: Mapping[str, Any]) -> Any:
    """The dataset to load when the user gave none: the study's, when it is a registered one (or
    your own, attached in this process by an earlier ``Experiment``); "digits" for a new study.

    Returns:
        str | Dataset: what ``datasets.load`` takes.

    Raises:
        ConfigError: the study searched your own data, which only you can pass again.
    """
    from . import datasets

    name = recorded.get("dataset", DEFAULTS["dataset"])
    if datasets.is_registered(name):
        return name
    same = datasets.registry.attached(recorded.get("fingerprint"))  # used in this process, under any name
    if same is not None:
        return same
    raise ConfigError(f"this study searched your own data ({name!r}); pass it again as dataset= (the Dataset it "
                      "was built from, e.g. datasets.from_arrays(x, y)) to reopen it.",
                      cli=f"this study searched your own data ({name!r}); pass it again with --data PATH (and the "
                      "options it was read with) to resume it.")


def refuse_given(name: str, recorded: Mapping[str, Any], given: Mapping[str, Any]) -> None:
    """Refuse, before any dataset is loaded (or downloaded), a given setting that differs from the
    study's record: a registered dataset's name, mode, seed, fractions, score weights. Your own
    data and the settings that need it loaded are checked when the study opens (``study.open_study``).

    Args:
        name: the study name.
        recorded: its settings (``recorded_settings``; empty: a new study, nothing refused).
        given: the user's values (None: not given).

    Raises:
        ConfigError: a given value differs (``study.refuse_other_samples``' message).
    """
    from .study import refuse_other_samples

    if not recorded:
        return
    from . import datasets

    named = given.get("dataset") if isinstance(given.get("dataset"), str) else None
    settings = {k: v for k, v in {"dataset": named if named and datasets.is_registered(named) else None,
                                  "mode": given.get("mode"), "accuracy_weight": given.get("accuracy_weight"),
                                  "health_weights": given.get("health_weights")}.items() if v is not None}
    split = {k: given[k] for k in ("seed", "test_fraction", "validation_fraction", "sample_fraction")
             if given.get(k) is not None}
    refuse_other_samples(name, dict(recorded), split, settings)


def recorded_order(space: dict[str, Any], recorded: Mapping[str, Any]) -> dict[str, Any]:
    """``space`` with each choice the study recorded with the same options in another order put
    back in the recorded order: the same search (``study.same_param``), and Optuna refuses a
    parameter whose choices change order within a study."""
    from .space import Choice
    from .stored import parse_param
    from .study import same_param

    reprs = recorded.get("search_space")
    if not isinstance(reprs, dict):
        return space
    out = dict(space)
    for key, param in space.items():
        old = reprs.get(key)
        if isinstance(param, Choice) and isinstance(old, str) and same_param(old, repr(param)):
            out[key] = parse_param(old)
    return out


def adopted_space(recorded: Mapping[str, Any], modality: str) -> dict[str, Any] | None:
    """The search space the study recorded, as ``Experiment(search_space=)`` takes it; None when
    it recorded none, searched another modality, or a parameter cannot be read back (the full
    default space applies then, and ``study.incomparable`` names the difference)."""
    from .stored import parse_param

    reprs = recorded.get("search_space")
    if not isinstance(reprs, dict) or not reprs or recorded.get("modality", modality) != modality:
        return None
    from .space import default_space

    known = default_space(modality)
    params = {k: parse_param(v) if isinstance(v, str) and k in known else None for k, v in reprs.items()}
    return params if all(p is not None for p in params.values()) else None


def records(exp: Any) -> dict[str, dict[str, Any]]:
    """What ``study.open_study`` records of (and checks against) ``exp``: ``settings`` (dataset,
    mode, modality; in health mode the accuracy and health weights of its score), ``split`` (test,
    validation, sample fractions) and ``comparable`` (data fingerprint, max_epochs, metric, search
    space as reprs, and the data's scale apart from its samples, so a reopen can name a new scale:
    ``study.rescaled``)."""
    settings = {"dataset": exp.dataset.name, "mode": exp.mode, "modality": exp.dataset.modality}
    if exp.mode == "health":  # what its score weighs (simple mode scores accuracy alone)
        settings.update(accuracy_weight=exp.accuracy_weight, health_weights=health.effective_weights(exp.health_weights))
    return {
        "settings": settings,
        "split": {"test_fraction": exp.test_fraction, "validation_fraction": exp.validation_fraction,
                  "sample_fraction": exp.sample_fraction},
        "comparable": {"fingerprint": exp.dataset.fingerprint, "max_epochs": exp.max_epochs, "metric": exp.metric,
                       "search_space": {k: repr(v) for k, v in sorted(exp.space.items())},
                       "scale": exp.dataset.scale, "unscaled": exp.dataset.unscaled},
    }
