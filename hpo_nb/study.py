"""Opening the Optuna study: its sampler and pruner, the settings it records, and the start-up
design queued when it is created.

A study remembers what makes its scores comparable (dataset and its fingerprint, mode, seed,
split fractions, epochs, search space). Reopening it with data or a seed that would move the
splits or describe other samples is refused; other settings only stop new trials from being added.
Settings a reopen leaves out take the recorded values (``reopen``), so only given ones can differ.
"""

from __future__ import annotations

import os
import time
from typing import Any

import optuna

from . import startup
from .errors import ConfigError
from .space import SearchSpace, comparable_reprs
from .datasets import is_registered
from .values import CLI_FLAGS, check_choice, same_value

PRUNERS = ("median", "hyperband", "none")
DEFAULT_N_TRIALS = 20  # a new study's budget when n_trials is not given


def make_pruner(choice: str | optuna.pruners.BasePruner, max_epochs: int) -> optuna.pruners.BasePruner:
    """The pruner for ``Experiment(pruner=...)``.

    "none" is the default: the budget counts trials, pruned ones included, so pruning saves time
    but not budget, and on digits (12 trials x 5 epochs, seeds 0-4) the median rule lowered the
    mean best validation accuracy from 0.993 to 0.989 (benchmarks/RESULTS.md, "Search quality").
    "median" is Optuna's median rule (a trial below the median of earlier trials at the same
    epoch stops, after 3 trials and 1 epoch); "hyperband" is successive halving over brackets
    from 1 epoch to ``max_epochs`` (Li et al. 2018, "Hyperband", JMLR 18). No pruner stops a
    trial after its last epoch (``callbacks.PruningCallback``), where it would save nothing.

    Args:
        choice: "none", "median", "hyperband", or any ``optuna.pruners.BasePruner``.
        max_epochs: epochs per trial (>= 1), Hyperband's largest resource.

    Returns:
        optuna.pruners.BasePruner: the pruner.

    Raises:
        ConfigError: an unknown name.
    """
    if isinstance(choice, optuna.pruners.BasePruner):
        return choice
    check_choice("pruner", choice, PRUNERS)
    if choice == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if choice == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs, reduction_factor=3)
    return optuna.pruners.NopPruner()


def make_sampler(seed: int, n_trials: int, concurrency: int) -> optuna.samplers.TPESampler:
    """TPE, multivariate, with a lie for running trials when several run at once. Its own random
    start-up phase is the enqueued start-up design (``startup``), so TPE models as soon as those
    trials have finished.

    Args:
        seed: the sampler's seed (>= 0).
        n_trials: the search's budget (sizes the start-up phase).
        concurrency: trials running at once (a constant liar above 1).

    Returns:
        optuna.samplers.TPESampler: the sampler.
    """
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup.startup_size(n_trials),
                                      multivariate=True, constant_liar=concurrency > 1)


def open_study(storage: Any, name: str, *, n_trials: int | None, seed: int, concurrency: int,
               pruner: optuna.pruners.BasePruner, modality: str, space: SearchSpace, settings: dict[str, Any],
               split: dict[str, Any], comparable: dict[str, Any]) -> tuple[optuna.Study, ConfigError | None, int]:
    """Create the study, or reopen it after checking that it describes the same search.

    A new study records ``settings``, ``split``, ``comparable`` and its budget, and queues the
    start-up design (``ask()`` pops queued trials first; a process joining later finds them queued
    or tried). A reopened one gets a sampler seeded apart from its creator's, so two processes on
    one study do not propose the very same configurations.

    Args:
        storage: an Optuna storage.
        name: the study name.
        n_trials: the search's budget; None: ``DEFAULT_N_TRIALS`` for a new study, the recorded
            budget (``record_budget``) for a reopened one.
        seed, concurrency: the search's seed and trials at once.
        pruner: from ``make_pruner``.
        modality, space: pick the start-up design.
        settings: dataset name, mode, modality: a reopen with others is refused.
        split: test, validation and sample fractions: a reopen with others (or another
            ``seed``) is refused, since its trials would be scored on other samples.
        comparable: data fingerprint, max_epochs, metric, search space (see ``incomparable``).

    Returns:
        (optuna.Study, ConfigError | None, int): the study; why new trials may not be added to it
        (other epochs, metric or space), or None; and the budget in effect (``n_trials``, or the recorded one).

    Raises:
        ConfigError: the study exists with other data, mode, seed or split settings.
    """
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                sampler=make_sampler(seed, n_trials or DEFAULT_N_TRIALS, concurrency), pruner=pruner,
                                load_if_exists=True)
    stored = study.user_attrs.get("hpo_nb")
    if stored is None:
        budget = n_trials or DEFAULT_N_TRIALS
        study.set_user_attr("hpo_nb", {**settings, **split, **comparable, "seed": seed, "n_trials": budget})
        for params in startup.startup_configs(modality, space, startup.startup_size(budget), seed):
            study.enqueue_trial(params, user_attrs={"startup": True})
        return study, None, budget
    data, others = incomparable(name, stored, comparable, settings.get("dataset"))
    if data:  # results and evaluate() would be read against other data
        raise data
    refuse_other_samples(name, stored, {**split, "seed": seed}, settings)
    budget = n_trials or recorded_budget(stored)
    study.sampler = make_sampler(joiner_seed(seed), budget, concurrency)
    return study, others, budget


def recorded_budget(stored: dict[str, Any]) -> int:
    """The budget a study recorded (its creation's, or the last search started on it with another
    ``n_trials``); ``DEFAULT_N_TRIALS`` for a study from before budgets were recorded."""
    value = stored.get("n_trials")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else DEFAULT_N_TRIALS


def record_budget(study: optuna.Study, n_trials: int) -> None:
    """Record ``n_trials`` as the study's budget (a search started with another one extends or
    shrinks it), so a later reopen without ``n_trials`` shows and resumes that budget."""
    stored = study.user_attrs.get("hpo_nb")
    if isinstance(stored, dict) and stored.get("n_trials") != n_trials:
        study.set_user_attr("hpo_nb", {**stored, "n_trials": n_trials})


def refuse_other_samples(name: str, stored: dict[str, Any], now: dict[str, Any],
                         settings: dict[str, Any] | None = None) -> None:
    """Refuse a reopen with another dataset, mode or score weights (scores not comparable), or
    whose seed or fractions would pick other samples: the seed draws the validation split and the
    kept training part, so trials run with another seed (or fractions) are scored on other samples
    and cannot be ranked against the stored ones. Keys an older study did not record are not
    compared; numbers compare by ``math.isclose``; your own data compares by its fingerprint, not
    its name (``incomparable``). One message names every difference and the arguments that reopen
    the study; its ``cli`` form names ``hpo-nb run``'s flags.

    Args:
        name: the study name.
        stored: the study's recorded settings (``study.user_attrs["hpo_nb"]``).
        now: this run's ``seed``, ``test_fraction``, ``validation_fraction``, ``sample_fraction``
            (a subset: only those given).
        settings: this run's ``dataset``, ``mode``, ``modality`` and, in health mode,
            ``accuracy_weight`` and ``health_weights`` (None: not compared).

    Raises:
        ConfigError: a value differs; the message names each, and how to continue.
    """
    other = {k: v for k, v in (settings or {}).items() if k in stored and _differs(k, stored[k], v)}
    if "modality" in other and len(other) > 1:  # follows from the dataset: name what to pass
        other.pop("modality")
    diffs = {**{k: stored[k] for k in other},
             **{k: stored[k] for k, v in now.items() if k in stored and _differs(k, stored[k], v)}}
    if not diffs:
        return
    current = {**(settings or {}), **now}
    why = ("its scores are not comparable with this one" if other else
           "its test split would overlap what trials trained on" if "test_fraction" in diffs else
           "its trials were trained and scored on other samples, so new trials would not be comparable")
    same = {k: v for k, v in diffs.items() if k != "modality"}
    own = "dataset" in same and not is_registered(str(same["dataset"]))  # only the user can pass it again
    py = ", ".join(_py(k, v, passed=True) for k, v in same.items())
    flags = " ".join("--data PATH" if own and k == "dataset" else _cli(k, v, passed=True)
                     for k, v in same.items() if k in CLI_FLAGS)
    hint = f" (hpo-nb run {flags})" if flags else ""
    reopen = (f"To reopen it, pass {py}{hint}; or pick" if own else
              f"To reopen it, leave {'it' if len(same) == 1 else 'them'} out or pass {py}{hint}; or pick" if same
              else "Pick")
    cli_same = " ".join(_cli(k, v, passed=True) for k, v in same.items())
    left = " and ".join(CLI_FLAGS.get(k, f"{k}=") for k in same)
    resume = (f"To resume it, pass {cli_same}; or pick" if own else
              f"To resume it, leave {left} out or pass {cli_same}; or pick" if same else "Pick")
    raise ConfigError(
        f"study {name!r} was searched with "
        + ", ".join(f"{_py(k, stored[k])} (now {current[k]!r})" for k in diffs)
        + f"; {why}. {reopen} another name= (--name) to start a new study.",
        cli=f"study {name!r} was searched with "
        + ", ".join(f"{_cli(k, stored[k])} (now {current[k] if k in CLI_FLAGS else repr(current[k])})"
                    for k in diffs)
        + f"; {why}. {resume} another --name to start a new study.")


def _py(key: str, value: Any, passed: bool = False) -> str:
    """A recorded setting in Python's words; your own data by what to pass, not its name."""
    if key == "dataset" and not is_registered(str(value)):
        return ("the same data as dataset= (e.g. datasets.from_arrays(x, y); its name does not matter)" if passed
                else f"your own data {value!r}")
    return f"{key}={value!r}"


def _cli(key: str, value: Any, passed: bool = False) -> str:
    """A recorded setting as ``hpo-nb run`` takes it (``--mode health``), or Python's ``key=value``
    for one it has no flag for."""
    if key == "dataset" and not is_registered(str(value)):
        return ("--data PATH (the file or folder it was read from, with the same options)" if passed
                else f"your own data {value!r}")
    return f"{CLI_FLAGS[key]} {value}" if key in CLI_FLAGS else f"{key}={value!r}"


def _differs(key: str, recorded: Any, now: Any) -> bool:
    """Whether a recorded setting and this run's differ: your own data by fingerprint alone (its
    name follows how it was read: 'arrays-<fingerprint>', 'own-<fingerprint>'), health weights by
    their proportions, numbers by ``math.isclose``."""
    if key == "dataset" and not is_registered(str(recorded)) and not is_registered(str(now)):
        return False  # both your own data: incomparable() compares their fingerprints
    if key == "health_weights":
        from .health import same_weights

        return not same_weights(recorded, now)
    return not same_value(recorded, now)


def joiner_seed(seed: int) -> int:
    """A sampler seed for a process joining an existing study: distinct per process."""
    return (seed * 1_000_003 + os.getpid() * 7919 + time.monotonic_ns()) % (2**32 - 1)


def incomparable(name: str, stored: dict[str, Any], now: dict[str, Any],
                 dataset: str | None = None) -> tuple[ConfigError | None, ConfigError | None]:
    """What differs from the study's recorded data, and from its settings, as ConfigErrors (None
    where nothing does), each with its ``cli`` form. Keys an older study did not record are not
    compared; a choice's options compare as a set (their order changes nothing searched).

    Args:
        name: the study name.
        stored: the study's recorded settings.
        now: this run's ``fingerprint``, ``max_epochs``, ``metric``, ``search_space`` (reprs).
        dataset: this run's dataset name (for the message).

    Returns:
        (ConfigError | None, ConfigError | None): other data (refuse to open), other epochs,
        metric or search space (refuse new trials; reading results and ``evaluate()`` still work).
    """
    data = None
    if stored.get("fingerprint", now["fingerprint"]) != now["fingerprint"]:
        was, own = stored.get("dataset", "?"), not is_registered(str(stored.get("dataset")))
        said = (f"study {name!r} was searched on other data ({'your own, ' if own else ''}{was!r}, fingerprint "
                f"{stored['fingerprint'][:10]}; now {dataset or '?'!r}, fingerprint {now['fingerprint'][:10]}); its "
                "results do not describe this dataset.")
        python = ("Pass the same samples and labels again (e.g. datasets.from_arrays(x, y), under any name)" if own
                  else f"Pass dataset={was!r} (or leave dataset out)")
        cli = ("Pass the file it was read from again (--data PATH, with the options it was read with)" if own
               else f"Pass --dataset {was} (or leave --dataset and --data out)")
        said_cli = said
        scales = rescaled(stored, now)
        if scales:  # the same samples and labels: only the scale differs
            (was_scale, was_frac), (scale, frac) = scales
            said, said_cli = (f"study {name!r} was searched on the same samples and labels scaled otherwise: the "
                              f"study's data was scaled by {was_frac} ({word}{was_scale!r}), this data by {frac} "
                              f"({word}{scale!r}); its results do not describe this data." for word in ("scale=", "--scale "))
            python = f"Pass the same scale= (e.g. datasets.from_arrays(x, y, scale={was_scale!r}))"
            cli = f"Pass the same scale: --data PATH --scale {was_scale!r}"
        data = ConfigError(f"{said} {python}, or another name= to start a new study.",
                           cli=f"{said_cli} {cli}, or another --name to start a new study.")
    changed: list[tuple[str, str]] = []  # (Python's words, the CLI's)
    if stored.get("max_epochs", now["max_epochs"]) != now["max_epochs"]:
        changed.append((f"max_epochs={stored['max_epochs']} (now {now['max_epochs']})",
                        f"--max-epochs {stored['max_epochs']} (now {now['max_epochs']})"))
    was_metric, metric = stored.get("metric", "accuracy"), now.get("metric", "accuracy")  # older: accuracy
    if was_metric != metric:
        changed.append((f"metric={was_metric!r} (now {metric!r})", f"--metric {was_metric} (now {metric})"))
    old_space, new_space = (comparable_reprs(s) for s in (stored.get("search_space", now["search_space"]),
                                                          now["search_space"]))
    keys = sorted(k for k in {*old_space, *new_space} if not same_param(old_space.get(k), new_space.get(k)))
    if keys:
        what = "another search space (" + "; ".join(
            f"{k}: {old_space.get(k)} -> {new_space.get(k)}" for k in keys[:3]) + ")"
        changed.append((what, what.replace("another search space", "another --search-space")))
    if not changed:
        return data, None
    new = "new trials would not be comparable with its trials"
    return data, ConfigError(
        f"study {name!r} was searched with {', '.join(p for p, _ in changed)}; {new} (reading its results and "
        "evaluate() still work). Leave max_epochs, metric and search_space out to reopen it with its own, or pass "
        "another name= to start a new study.",
        cli=f"study {name!r} was searched with {', '.join(c for _, c in changed)}; {new} (hpo-nb show and "
        "hpo-nb evaluate still work). Leave --max-epochs, --metric and --search-space out to resume it with its "
        "own, or pass another --name to start a new study.")


def rescaled(stored: dict[str, Any], now: dict[str, Any]) -> tuple[tuple[float, str], tuple[float, str]] | None:
    """The study's and this run's ``(scale, "1/16")`` when they differ but the data is otherwise
    the same (``Dataset.unscaled``: labels and shapes alike, raw pixel sums within 1e-6); None
    otherwise, or for a study that recorded no scale."""
    import math

    was, is_ = stored.get("unscaled"), now.get("unscaled")
    if not (isinstance(was, dict) and isinstance(is_, dict) and stored.get("scale") and now.get("scale")):
        return None
    if math.isclose(stored["scale"], now["scale"]) or was.get("labels") != is_.get("labels"):
        return None
    sums, now_sums = was.get("raw_sums"), is_.get("raw_sums")
    if not (isinstance(sums, list) and isinstance(now_sums, list) and len(sums) == len(now_sums)) \
            or not all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6) for a, b in zip(sums, now_sums)):
        return None

    def fraction(scale: float) -> str:
        inverse = 1 / scale
        return f"1/{round(inverse)}" if abs(inverse - round(inverse)) < 1e-6 * inverse else f"{scale:g}"

    return (stored["scale"], fraction(stored["scale"])), (now["scale"], fraction(now["scale"]))


def same_param(recorded: str | None, now: str | None) -> bool:
    """Whether two recorded parameters (reprs) search the same values: a ``Choice``'s options as
    a set (``[32, 16]`` is ``[16, 32]``), anything else as written."""
    if recorded == now:
        return True
    if recorded is None or now is None:
        return False
    from .space import Choice
    from .stored import parse_param

    a, b = parse_param(recorded), parse_param(now)
    if not (isinstance(a, Choice) and isinstance(b, Choice)) or len(a.options) != len(b.options):
        return False
    return sorted(map(repr, a.options)) == sorted(map(repr, b.options))
