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


def test_chance_level_is_the_entropy_of_the_labels():
    """With 87 % of one class, answering the frequencies already gives a loss of 0.39 nats, far below
    ln(2) = 0.69: a net stuck there learned nothing (the CLI said "does not beat the majority class"
    while its health read 0.92-1.00)."""
    labels = [0] * 87 + [1] * 13
    prior = -(0.87 * math.log(0.87) + 0.13 * math.log(0.13))
    assert health.label_entropy(labels) == pytest.approx(prior)
    assert health.label_entropy([3] * 10) == 0.0 and health.label_entropy([]) == 0.0
    stuck = {"loss": [0.45, 0.40], "val_loss": [0.43, 0.40]}
    assert health.learning_progress(stuck, 2) > 0.9  # ln(2) as chance level calls it learned
    assert health.learning_progress(stuck, 2, labels) == 0.0
    assert health.learning_progress({"loss": [0.45, 0.05]}, 2, labels) == 1.0
    assert health.learning_progress({"loss": [0.1]}, 2, [1] * 10) == 0.0  # one class: nothing to learn
    balanced = list(range(10)) * 5  # the same as ln(K) when the classes are balanced
    assert health.learning_progress({"loss": [2.0]}, 10, balanced) == pytest.approx(
        health.learning_progress({"loss": [2.0]}, 10))


def test_a_net_that_did_not_learn_scores_zero_whatever_else_looks_calm():
    flat = {**PERFECT, "learning_progress": 0.0, "loss_stability": 0.0}  # a flat loss at chance level
    assert health.health_score(flat) == 0.0  # was 4/6 = 0.67: calm gradients, no dead units, no gap
    half = {**PERFECT, "learning_progress": 0.5, "loss_stability": 0.5}
    assert health.health_score(half) == pytest.approx(0.5 * (5 / 6))  # counts as far as it learned
    one_bad = {**PERFECT, "dead_units": 1.0}
    assert health.health_score(one_bad) == pytest.approx(5 / 6)  # a net that learned: the plain mean
    assert health.health_score(flat, {"learning_progress": 0.0}) == pytest.approx(4 / 5)  # weight 0: no gate
    # ranking among nets that learned does not change: the gate is 1 for all of them
    learned = [{**PERFECT, "dead_units": d, "overfitting_gap": g} for d, g in ((0.1, 0.0), (0.0, 0.2), (0.3, 0.1))]
    means = [sum(health.goodness(h).values()) / 6 for h in learned]
    assert [health.health_score(h) for h in learned] == pytest.approx(means)


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
    """A real Keras net whose loss stays flat near ln(10) (learning rate 0, chance accuracy) used to
    score health 1.0, then 0.64 with a learning-progress term: its gradients, units and gap all look
    calm. With the other terms gated on learning progress it scores 0, and a net that learned
    keeps its plain weighted mean (about 0.88)."""
    flat, x, y, xv, yv = _digits_model(0.0)
    # the loss of an untrained softmax sits near ln(10); make the flat history exactly that
    fit = flat.fit(x, y, validation_data=(xv, yv), epochs=3, batch_size=64, verbose=0)
    flat_history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    assert max(flat_history["val_accuracy"]) < 0.3
    assert abs(flat_history["val_loss"][-1] - flat_history["val_loss"][0]) < 1e-6  # flat
    flat_metrics = health.measure(flat, flat_history, xv, yv)
    assert flat_metrics["learning_progress"] < 0.2
    assert flat_metrics["loss_stability"] < 0.2
    assert health.health_score(flat_metrics) <= 0.4  # 0.64 before the learning-progress gate

    learner, x, y, xv, yv = _digits_model(0.5)
    fit = learner.fit(x, y, validation_data=(xv, yv), epochs=3, batch_size=64, verbose=0)
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    assert max(history["val_accuracy"]) > 0.8
    good = health.measure(learner, history, xv, yv)
    assert good["learning_progress"] == 1.0
    assert health.health_score(good) > 0.85
    assert health.health_score(good) == pytest.approx(sum(health.goodness(good).values()) / 6)
    assert health.health_score(good) - health.health_score(flat_metrics) > 0.2
