"""Importance table and history as data, on a real Optuna study built by a real ``Experiment``.

Only the training is replaced (``InMemoryExecutor``): each outcome is a known function of its
params, so the table's answer is known: accuracy depends on the learning rate only, the health
score on dropout only, the duration on the batch size only; the other health metrics are constant.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import optuna
import pytest

from hpo_nb import Experiment
from hpo_nb.analysis.history import history_frame
from hpo_nb.analysis.importance import TARGETS, importance_table
from hpo_nb.errors import ConfigError
from hpo_nb.executors import InMemoryExecutor
from hpo_nb.health import METRICS
from hpo_nb.space import searched
from hpo_nb.spec import TrialOutcome
from hpo_nb.views.importance import heatmap

SPACE = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_layers": 0, "batch_norm": False,
         "activation": "relu", "pooling": "max", "optimizer": "adam", "dense_units": 32,
         "learning_rate": (1e-4, 1e-1), "batch_size": [16, 32, 64, 128], "dropout": (0.0, 0.5)}
SEARCHED = {"learning_rate", "batch_size", "dropout"}
N_TRIALS, FAILED = 24, 3


def _outcome(job) -> TrialOutcome:
    p, n = job.spec.params, job.spec.trial_number
    if n == FAILED:
        return TrialOutcome(n, "failed", error="RuntimeError: out of memory")
    acc = 0.95 - 0.12 * abs(math.log10(p["learning_rate"]) + 2.5)
    health = {"gradient_health": 1.0, "dead_units": 0.0, "saturated_units": 0.0, "overfitting_gap": 0.05,
              "learning_progress": 1.0, "loss_stability": 0.9, "health_score": 1.0 - p["dropout"]}
    return TrialOutcome(n, "complete", accuracy=acc, score=acc, health=health,
                        duration_s=200.0 / p["batch_size"], epochs_run=1)


@pytest.fixture(scope="module")
def exp(tmp_path_factory) -> Experiment:
    e = Experiment("digits", n_trials=N_TRIALS, executor=InMemoryExecutor(_outcome), progress="none",
                   runs_dir=tmp_path_factory.mktemp("runs"), name="importance", search_space=SPACE, pruning=False)
    e.run()
    return e


def test_table_has_one_row_per_searched_parameter_and_one_column_per_target(exp):
    table = importance_table(exp.study, searched(exp.space))
    assert set(table.params) == SEARCHED  # fixed ones (filters, conv_blocks, ...) are left out
    assert table.targets == ["accuracy", "health_score", *METRICS, "duration_s"]
    assert table.evaluator == "PED-ANOVA"
    assert set(table.n_trials.values()) == {N_TRIALS - 1}  # the failed trial is not counted


def test_each_computed_column_sums_to_one_and_keeps_optunas_raw_values(exp):
    table = importance_table(exp.study, searched(exp.space))
    for col in ("accuracy", "health_score", "duration_s"):
        assert table.importance[col].sum() == pytest.approx(1.0)
        assert (table.raw[col] >= 0).all()
        assert np.allclose(table.raw[col] / table.raw[col].sum(), table.importance[col])
    # The same numbers as Optuna's own call (PED-ANOVA ranks "lower is better": accuracy negated).
    with pytest.warns(UserWarning):
        direct = optuna.importance.get_param_importances(
            exp.study, params=sorted(SEARCHED), target=lambda t: -t.user_attrs["accuracy"])
    for param, value in direct.items():
        assert table.importance.at[param, "accuracy"] == pytest.approx(value)


@pytest.mark.parametrize("evaluator", ["ped-anova", "fanova"])
def test_the_parameter_that_drives_a_target_is_the_most_important_for_it(exp, evaluator):
    imp = importance_table(exp.study, searched(exp.space), evaluator=evaluator).importance
    assert imp["accuracy"].idxmax() == "learning_rate" and imp.at["learning_rate", "accuracy"] > 0.6
    assert imp["health_score"].idxmax() == "dropout" and imp.at["dropout", "health_score"] > 0.6
    if evaluator == "fanova":  # duration has 4 tied values: PED-ANOVA's top-10 % set is all of one tie
        assert imp["duration_s"].idxmax() == "batch_size" and imp.at["batch_size", "duration_s"] > 0.6


def test_constant_targets_say_so_instead_of_showing_equal_shares(exp):
    table = importance_table(exp.study, searched(exp.space))
    for metric in ("gradient_health", "dead_units", "saturated_units", "overfitting_gap", "learning_progress",
                   "loss_stability"):
        assert table.importance[metric].isna().all()
        assert table.notes[metric].startswith("constant:") and f"{N_TRIALS - 1} trials" in table.notes[metric]
    assert "accuracy" not in table.notes


def test_too_few_trials_leaves_every_column_empty_with_the_reason(exp):
    table = importance_table(exp.study, searched(exp.space), min_trials=N_TRIALS + 10)
    assert table.importance.isna().all().all()
    assert table.notes["accuracy"] == f"too few trials: {N_TRIALS - 1} complete, needs {N_TRIALS + 10}"


def test_an_all_empty_importance_says_why_in_attrs_and_a_warning(exp):
    """exp.importance() with too few trials was an all-NaN DataFrame with no reason at the top."""
    with pytest.warns(UserWarning, match=r"importance\(\) is empty\. Not enough signal to rank the parameters: too "
                                         rf"few trials: {N_TRIALS - 1} complete, needs {N_TRIALS + 10}\.$"):
        df = exp.importance(min_trials=N_TRIALS + 10)
    assert df.isna().all().all()
    assert df.attrs["reason"] == (f"Not enough signal to rank the parameters: too few trials: {N_TRIALS - 1} "
                                  f"complete, needs {N_TRIALS + 10}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a computed table warns nothing and has no reason
        assert exp.importance().attrs["reason"] is None


def test_a_partly_empty_importance_has_no_reason_and_mixed_notes_are_grouped(exp):
    table = importance_table(exp.study, searched(exp.space))
    assert table.reason is None  # accuracy, health score and duration were computed
    two = [t for t in TARGETS if t.key in ("dead_units", "overfitting_gap")]
    constant = importance_table(exp.study, searched(exp.space), targets=two)
    assert constant.reason == "Not enough signal to rank the parameters: " + "; ".join(
        f"{t.label}: constant: {v} in all {N_TRIALS - 1} trials, nothing to explain" for t, v in zip(two, ("0", "0.05")))


def test_bad_evaluator_or_min_trials_is_a_config_error(exp):
    with pytest.raises(ConfigError, match="evaluator must be one of"):
        exp.importance(evaluator="shap")
    with pytest.raises(ConfigError, match="min_trials"):
        exp.importance(min_trials=1)


def test_importance_dataframe_carries_raw_values_and_notes(exp):
    df = exp.importance()
    assert list(df.columns) == [t.key for t in TARGETS] and set(df.index) == SEARCHED
    assert df.attrs["evaluator"] == "PED-ANOVA"
    assert df.attrs["raw"].shape == df.shape
    assert "dead_units" in df.attrs["notes"] and "accuracy" not in df.attrs["notes"]


@pytest.mark.parametrize("evaluator,name", [("ped-anova", "PED-ANOVA"), ("fanova", "fANOVA")])
def test_heatmap_annotates_every_cell_and_names_its_evaluator(exp, evaluator, name):
    table = importance_table(exp.study, searched(exp.space), evaluator=evaluator)
    fig = heatmap(table)
    assert name in fig.layout.title.text
    assert len(fig.layout.annotations) == len(table.params) * len(table.targets)
    texts = {(a.y, a.x.split("<br>")[0]): a.text for a in fig.layout.annotations}
    assert texts[("learning_rate", "val accuracy")] == f"{table.importance.at['learning_rate', 'accuracy']:.2f}"
    assert texts[("dropout", "dead units")] == "–"
    hover = fig.data[0].text
    row = list(fig.data[0].y).index("learning_rate")
    assert "raw" in hover[row][0] and f"{table.raw.at['learning_rate', 'accuracy']:.4g}" in hover[row][0]
    assert "constant" in hover[row][list(table.targets).index("dead_units")]
    assert any("(constant)" in x for x in fig.data[0].x)


def test_experiment_heatmap_uses_the_searched_space(exp):
    fig = exp.importance_heatmap()
    assert "PED-ANOVA" in fig.layout.title.text and set(fig.data[0].y) == SEARCHED


def test_every_parameter_fixed_is_a_config_error(exp):
    with pytest.raises(ConfigError, match="every one is fixed"):
        importance_table(exp.study, [])


def test_history_has_best_so_far_over_complete_trials_only(exp):
    df = history_frame(exp.study.get_trials())
    assert len(df) == N_TRIALS and list(df["number"]) == list(range(N_TRIALS))
    assert df.loc[FAILED, "state"] == "failed" and math.isnan(df.loc[FAILED, "value"])
    complete = df[df["state"] == "complete"]
    assert np.allclose(complete["best"], complete["value"].cummax())
    assert df["best"].dropna().is_monotonic_increasing
    assert df["best"].iloc[-1] == pytest.approx(exp.best.score)


def test_plot_history_colours_states_and_draws_the_best_line(exp):
    fig = exp.plot_history()
    names = [t.name for t in fig.data]
    assert any(n.startswith(f"complete ({N_TRIALS - 1})") for n in names)
    assert "failed (1), 1 without a value" in names
    best = next(t for t in fig.data if t.name == "best so far")
    assert best.line.shape == "hv" and max(best.y) == pytest.approx(exp.best.score)
