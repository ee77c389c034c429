"""The pure health functions: each metric's mapping, the health score, the objective."""

from __future__ import annotations

import math

import pytest

from hpo_nb import health
from hpo_nb.errors import ConfigError

PERFECT = {"gradient_health": 1.0, "dead_units": 0.0, "saturated_units": 0.0, "overfitting_gap": 0.0,
           "learning_progress": 1.0, "loss_stability": 1.0}
WORST = {"gradient_health": 0.0, "dead_units": 1.0, "saturated_units": 1.0, "overfitting_gap": 1.0,
         "learning_progress": 0.0, "loss_stability": 0.0}


def test_goodness_turns_every_metric_into_higher_is_healthier():
    assert health.goodness(PERFECT) == {m: 1.0 for m in health.METRICS}
    assert health.goodness(WORST) == {m: 0.0 for m in health.METRICS}
    half_tolerance = {**PERFECT, "overfitting_gap": health.GAP_TOLERANCE / 2}
    assert health.goodness(half_tolerance)["overfitting_gap"] == pytest.approx(0.5)
    assert health.goodness({**PERFECT, "overfitting_gap": 0.9})["overfitting_gap"] == 0.0  # clipped


def test_health_score_is_the_weighted_mean_of_goodness():
    assert health.health_score(PERFECT) == 1.0 and health.health_score(WORST) == 0.0
    one_bad = {**PERFECT, "dead_units": 1.0}
    assert health.health_score(one_bad) == pytest.approx(5 / 6)
    assert health.health_score(one_bad, {"dead_units": 0.0}) == 1.0  # weight 0: ignored
    assert health.health_score(one_bad, {"dead_units": 4.0}) == pytest.approx(5 / 9)
    with pytest.raises(ValueError):
        health.health_score(PERFECT, {m: 0.0 for m in health.METRICS})


def test_score_is_accuracy_in_simple_mode_and_a_blend_in_health_mode():
    assert health.score("simple", 0.9, WORST) == 0.9
    assert health.score("health", 0.9, PERFECT) == pytest.approx(0.7 * 0.9 + 0.3)
    assert health.score("health", 0.9, WORST, accuracy_weight=1.0) == pytest.approx(0.9)
    assert health.score("health", 0.5, PERFECT, accuracy_weight=0.0) == 1.0


@pytest.mark.parametrize("weights, words", [
    ({"speed": 1.0}, "unknown health weight"),
    ({"dead_units": -1}, "must be a number >= 0"),
    ({"dead_units": "x"}, "must be a number >= 0"),
    ({m: 0 for m in health.METRICS}, "must not all be zero"),
])
def test_bad_weights_are_refused(weights, words):
    with pytest.raises(ConfigError, match=words):
        health.validate_weights(weights)


def test_good_weights_pass():
    health.validate_weights(None)
    health.validate_weights({"dead_units": 2, "loss_stability": 0.5})


@pytest.mark.parametrize("norm, expected", [
    (1.0, 1.0), (1e-3, 1.0), (10.0, 1.0),         # inside the band
    (1e-4, 2 / 3), (1e-6, 0.0), (1e-9, 0.0),      # vanishing: a third per decade
    (100.0, 2 / 3), (1e4, 0.0),                   # exploding
    (0.0, 0.0), (math.inf, 0.0), (math.nan, 0.0),
])
def test_gradient_health_scores_decades_outside_the_band(norm, expected):
    assert health.gradient_health(norm) == pytest.approx(expected)


def test_overfitting_gap_is_train_minus_validation_clipped():
    assert health.overfitting_gap({"accuracy": [0.5, 0.95], "val_accuracy": [0.5, 0.85]}) == pytest.approx(0.1)
    assert health.overfitting_gap({"accuracy": [0.8], "val_accuracy": [0.9]}) == 0.0
    assert health.overfitting_gap({"accuracy": [math.nan], "val_accuracy": [0.9]}) == 1.0
    assert health.overfitting_gap({}) == 0.0


def test_loss_stability_looks_at_the_last_epochs():
    assert health.loss_stability([0.5]) == 1.0 and health.loss_stability([]) == 1.0
    assert health.loss_stability([1.0, 1.0, 1.0]) == 1.0
    assert health.loss_stability([1.0, 0.5]) == pytest.approx(0.5)
    assert health.loss_stability([9.0, 9.0, 1.0, 1.0, 1.0, 1.0]) == 1.0  # only the last four count
    assert health.loss_stability([1.0, math.nan]) == 0.0
    assert health.loss_stability([1.0, 10.0]) == 0.0  # a jump: clipped at 0


def test_every_metric_and_the_score_are_named_and_described_once():
    keys = {*health.METRICS, "health_score"}
    for table in (health.LABELS, health.SHORT, health.DESCRIPTIONS, health.HIGHER_IS_BETTER):
        assert set(table) == keys
    assert {m for m in health.METRICS if health.HIGHER_IS_BETTER[m]} == \
        {m for m in health.METRICS if health.goodness(PERFECT)[m] == PERFECT[m]}


def test_learning_progress_is_the_fall_below_chance_level():
    ln10 = math.log(10)
    assert health.learning_progress({"loss": [ln10] * 5, "val_loss": [ln10] * 5}, 10) == 0.0
    assert health.learning_progress({"loss": [3.0, 2.9], "val_loss": [2.5, 2.6]}, 10) == 0.0  # above chance
    assert health.learning_progress({"loss": [ln10, 0.875 * ln10]}, 10) == pytest.approx(0.5)
    assert health.learning_progress({"loss": [2.0, 0.3], "val_loss": [2.1, 0.4]}, 10) == 1.0
    # the lower of training and validation loss counts (dropout inflates the training loss)
    assert health.learning_progress({"loss": [ln10], "val_loss": [0.1]}, 10) == 1.0
    assert health.learning_progress({"loss": [math.nan]}, 10) == 0.0
    assert health.learning_progress({}, 10) == 0.0


def test_old_records_without_learning_progress_still_score():
    old = {k: v for k, v in PERFECT.items() if k != "learning_progress"}
    assert health.health_score(old) == 1.0


def _digits_model(learning_rate: float):
    import keras
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,))
    hidden = keras.layers.Activation("relu")(keras.layers.Dense(32)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(hidden))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model, x[:1400], y[:1400], x[1400:], y[1400:]


@pytest.mark.slow
def test_a_network_that_learned_nothing_is_not_healthy():
    """A real Keras net whose loss stays flat near ln(10) (learning rate 0, 11 % accuracy) used to
    score health 1.0: its gradients, units and gap all look calm. Now it scores low, and a net that
    learned scores near 1."""
    flat, x, y, xv, yv = _digits_model(0.0)
    # the loss of an untrained softmax sits near ln(10); make the flat history exactly that
    fit = flat.fit(x, y, validation_data=(xv, yv), epochs=3, batch_size=64, verbose=0)
    flat_history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    assert max(flat_history["val_accuracy"]) < 0.3
    assert abs(flat_history["val_loss"][-1] - flat_history["val_loss"][0]) < 1e-6  # flat
    flat_metrics = health.measure(flat, flat_history, xv, yv)
    assert flat_metrics["learning_progress"] < 0.2
    assert flat_metrics["loss_stability"] < 0.2
    assert health.health_score(flat_metrics) < 0.75

    learner, x, y, xv, yv = _digits_model(0.5)
    fit = learner.fit(x, y, validation_data=(xv, yv), epochs=3, batch_size=64, verbose=0)
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    assert max(history["val_accuracy"]) > 0.8
    good = health.measure(learner, history, xv, yv)
    assert good["learning_progress"] == 1.0
    assert health.health_score(good) > 0.85
    assert health.health_score(good) - health.health_score(flat_metrics) > 0.2
