"""What a search tries first, and how a trial is scored: the start-up design as data, then real
short searches on digits."""

from __future__ import annotations

from collections import Counter

import keras
import numpy as np
import optuna
import pytest

from hpo_nb import Experiment
from hpo_nb.callbacks import PruningCallback
from hpo_nb.space import DEFAULT_CONFIGS, Choice, Fixed, FloatRange, IntRange, batch_sizes_for, build_space, default_config
from hpo_nb.startup import balanced_design, startup_configs, startup_size


@pytest.mark.parametrize("modality", ["image", "text"])
@pytest.mark.parametrize("n", [3, 5, 9])
def test_the_design_covers_every_choice_evenly_at_any_seed(modality, n):
    space = build_space(modality, n_train=1437)
    for seed in range(10):
        design = balanced_design(space, n, seed)
        assert len(design) == n
        for name, param in space.items():
            if isinstance(param, Fixed):
                assert all(name not in config for config in design)
                continue
            column = [config[name] for config in design]
            if isinstance(param, Choice) or (isinstance(param, IntRange) and param.high - param.low < 10):
                options = param.options if isinstance(param, Choice) else range(param.low, param.high + 1)
                counts = Counter(column)
                assert set(counts) <= set(options)
                per_option = [counts.get(o, 0) for o in options]
                assert max(per_option) - min(per_option) <= 1, (seed, name, counts)
            elif isinstance(param, FloatRange):  # one point in each of n equal strata
                lo, hi = (np.log(param.low), np.log(param.high)) if param.log else (param.low, param.high)
                scaled = (np.log(column) if param.log else np.array(column)) - lo
                strata = np.floor(scaled / (hi - lo) * n).astype(int)
                assert sorted(strata) == list(range(n)), (seed, name)


def test_the_design_is_a_pure_function_of_space_size_and_seed():
    space = build_space("image")
    assert balanced_design(space, 5, 3) == balanced_design(space, 5, 3)
    assert balanced_design(space, 5, 3) != balanced_design(space, 5, 4)


def test_the_known_good_configuration_comes_first_and_fits_a_narrowed_space():
    space = build_space("image", {"filters": [8, 16], "learning_rate": (1e-2, 5e-2), "activation": "elu"})
    first = startup_configs("image", space, 4, seed=0)[0]
    assert first["filters"] == 16 and first["learning_rate"] == 1e-2  # nearest allowed values
    assert "activation" not in first  # fixed: not a searched parameter
    assert first["kernel_size"] == DEFAULT_CONFIGS["image"]["kernel_size"]
    assert default_config("image", build_space("image", {k: 1 for k in ("conv_blocks",)})) is not None


def test_startup_size_follows_the_budget():
    assert [startup_size(n) for n in (1, 3, 12, 30, 100)] == [1, 3, 4, 10, 10]


def test_batch_sizes_keep_enough_steps_per_epoch():
    assert batch_sizes_for(1437, (16, 32, 64, 128)) == (16, 32)  # digits' train split
    assert batch_sizes_for(8000, (16, 32, 64, 128)) == (16, 32, 64, 128)
    assert batch_sizes_for(200, (16, 32, 64, 128)) == (8, 16)  # tiny data: the smallest batches
    assert batch_sizes_for(None, (32, 64)) == (32, 64)


def test_pruning_never_files_a_fully_trained_trial_as_pruned():
    x, y = np.random.default_rng(0).random((64, 4)), np.arange(64) % 2
    for epochs, pruned_at in [(1, None), (3, 1)]:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        prune = PruningCallback(lambda step, value: True)  # a pruner that always says "prune"
        history = model.fit(x, y, validation_data=(x, y), epochs=epochs, verbose=0, callbacks=[prune])
        assert prune.pruned_at == pruned_at
        assert len(history.history["loss"]) == (1 if pruned_at else epochs)


@pytest.mark.slow
def test_enqueued_defaults_run_first_count_in_the_budget_and_score_by_the_best_epoch(runs_dir):
    exp = Experiment("digits", n_trials=3, max_epochs=3, runs_dir=runs_dir, progress="none", name="startup-t",
                     search_space={"conv_blocks": [1, 2], "filters": [8, 16], "dense_layers": 0, "batch_norm": False})
    exp.run()
    trials = sorted(exp.study.get_trials(), key=lambda t: t.number)
    assert len(trials) == 3 and all(t.state.is_finished() for t in trials)
    assert trials[0].params == {**startup_configs("image", exp.space, 3, 0)[0]}
    assert all(t.user_attrs.get("startup") for t in trials)  # n_trials=3: the whole budget is the design
    for t in exp.trials:
        if t.state == "complete":
            assert t.accuracy == pytest.approx(max(t.history["val_accuracy"]))


def test_pruner_choice_is_checked_before_training(runs_dir):
    from hpo_nb.errors import ConfigError

    with pytest.raises(ConfigError, match="pruner must be one of"):
        Experiment("digits", n_trials=1, runs_dir=runs_dir, progress="none", pruner="asha")
    exp = Experiment("digits", n_trials=1, runs_dir=runs_dir, progress="none", pruner="hyperband", name="hb")
    assert isinstance(exp.study.pruner, optuna.pruners.HyperbandPruner)


@pytest.mark.slow
def test_defaults_find_a_good_digits_model_in_a_ci_sized_budget(runs_dir):
    exp = Experiment("digits", n_trials=4, max_epochs=5, runs_dir=runs_dir, progress="none", name="ci-size")
    exp.run()
    assert exp.best.accuracy >= 0.95


def test_a_study_reopened_with_another_test_split_is_refused(runs_dir):
    from hpo_nb.errors import ConfigError

    Experiment("digits", n_trials=1, runs_dir=runs_dir, progress="none", name="split-t")
    with pytest.raises(ConfigError, match="test_fraction=0.2 \\(now 0.5\\)"):
        Experiment("digits", n_trials=1, runs_dir=runs_dir, progress="none", name="split-t", test_fraction=0.5)
    fresh = Experiment("digits", n_trials=1, runs_dir=runs_dir, progress="none", name="split-t")
    assert fresh.results.empty  # the queued start-up design is not a row until it runs


@pytest.mark.parametrize("change, shown", [
    ({"seed": 3}, r"seed=0 \(now 3\); its trials were trained and scored on other samples.*seed=0 \(hpo-nb run --seed 0\)"),
    ({"sample_fraction": 0.5}, r"sample_fraction=1.0 \(now 0.5\).*--sample-fraction 1.0"),
    ({"validation_fraction": 0.3}, r"validation_fraction=0.2 \(now 0.3\).*To reopen it, leave it out or pass validation_fraction=0.2 \(hpo-nb run --validation-fraction 0.2\); or"),
])
def test_a_study_reopened_with_another_seed_or_fraction_is_refused(runs_dir, change, shown):
    """Another seed draws another validation split: trials scored on it cannot be ranked together."""
    from hpo_nb.errors import ConfigError

    Experiment("digits", n_trials=1, runs_dir=runs_dir, progress="none", name="seed-t")
    with pytest.raises(ConfigError, match=shown):
        Experiment("digits", n_trials=1, runs_dir=runs_dir, progress="none", name="seed-t", **change)
    Experiment("digits", n_trials=1, runs_dir=runs_dir, progress="none", name="seed-t", seed=0)  # the same: resumes
