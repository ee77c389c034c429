"""Model health: six metrics in [0, 1] and the health-aware score.

Metrics (what each means; "good" is the direction the health score rewards):

- ``gradient_health`` (1 good): global gradient norm of the loss on one validation batch of up
  to 64 inputs.
  1.0 inside [1e-3, 10]; it loses 1/3 per decade outside (vanishing below, exploding above);
  0 for NaN/inf.
- ``dead_units`` (0 good): fraction of ReLU units (conv channels, dense units) whose output is
  never positive on a validation sample of up to 256 inputs.
- ``saturated_units`` (0 good): fraction of tanh/sigmoid units and LSTM outputs at their
  limits (|tanh| > 0.99, sigmoid < 0.01 or > 0.99) for more than 90 % of samples.
- ``overfitting_gap`` (0 good): final training accuracy minus validation accuracy, clipped to
  [0, 1]. The health score tolerates up to ``GAP_TOLERANCE`` before it counts as fully bad.
- ``learning_progress`` (1 good): how far the lowest loss (training or validation) fell below
  chance level, as a share of ``PROGRESS_TOLERANCE`` x chance level: 1.0 once it fell by a
  quarter of it or more, 0.0 for a loss that stayed at (or above) it. Chance level is the
  cross-entropy of always answering the class frequencies (the validation labels' entropy): ln(K)
  for K balanced classes, less with imbalanced ones, where answering the majority class already
  gets there. A network that learned nothing is not healthy, however calm its gradients and
  units look.
- ``loss_stability`` (1 good): 1 minus the mean relative change of the validation loss over
  the last (up to four) epochs, times ``learning_progress``: a loss that never fell is stuck, not
  stable. 0 when the loss became NaN. A single epoch counts as settled.

What health does not say: whether the accuracy is good (that is ``accuracy``), or whether the
model will generalise beyond the validation split (that is the test split, ``exp.evaluate()``).
It flags training pathologies: vanishing/exploding gradients, dead or saturated units,
overfitting, a loss that did not fall or did not settle.

``health_score`` is the weighted mean of the goodness of each (equal weights by default), times
``learning_progress``: the other five describe how a network learned, so they count only as far
as it did. A network whose loss never left chance level scores 0 (before this gate a flat-loss
net at chance accuracy scored about 0.65: calm gradients, no dead units, no gap); one that
learned (``learning_progress`` 1.0, as nearly every trial that beats chance) keeps its weighted
mean unchanged. With ``weights={"learning_progress": 0}`` neither the term nor the gate applies.
``score`` in health mode is ``accuracy_weight * accuracy + (1 - accuracy_weight) * health_score``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

METRICS = ("gradient_health", "dead_units", "saturated_units", "overfitting_gap", "learning_progress",
           "loss_stability")
DEFAULT_WEIGHTS: dict[str, float] = {m: 1.0 for m in METRICS}
GAP_TOLERANCE = 0.25
PROGRESS_TOLERANCE = 0.25
# What each metric (and the health score) is called and means, for every view of it: the
# dashboard's short column heads, the importance heatmap's labels, the app's health table.
HIGHER_IS_BETTER = {"gradient_health": True, "dead_units": False, "saturated_units": False,
                    "overfitting_gap": False, "learning_progress": True, "loss_stability": True, "health_score": True}
LABELS = {m: m.replace("_", " ") for m in (*METRICS, "health_score")}
SHORT = {"gradient_health": "grad", "dead_units": "dead", "saturated_units": "sat",
         "overfitting_gap": "gap", "learning_progress": "learn", "loss_stability": "stab", "health_score": "health"}
DESCRIPTIONS = {
    "gradient_health": "1 = gradients neither vanish nor explode",
    "dead_units": "share of ReLU units that never fire (0 is best)",
    "saturated_units": "share of tanh/sigmoid/LSTM units stuck at their limits (0 is best)",
    "overfitting_gap": "train accuracy minus validation accuracy (0 is best)",
    "learning_progress": "1 = the loss fell well below chance level (0 = nothing was learned)",
    "loss_stability": "1 = validation loss fell and then settled over the last epochs",
    "health_score": "weighted mean of the six, as 'higher is healthier', times learning progress",
}
_GRAD_OK = (1e-3, 10.0)


def goodness(health: Mapping[str, float]) -> dict[str, float]:
    """Each metric turned into 'higher is healthier', in [0, 1].

    Trials stored before ``learning_progress`` existed have no such key; they count as having
    learned (their ``loss_stability`` was measured without the progress factor).
    """
    return {
        "gradient_health": health["gradient_health"],
        "dead_units": 1.0 - health["dead_units"],
        "saturated_units": 1.0 - health["saturated_units"],
        "overfitting_gap": 1.0 - min(1.0, health["overfitting_gap"] / GAP_TOLERANCE),
        "learning_progress": health.get("learning_progress", 1.0),
        "loss_stability": health["loss_stability"],
    }


def stored_goodness(health: Mapping[str, Any]) -> dict[str, float]:
    """``goodness`` of a stored trial's metrics; empty when one it needs was not recorded."""
    try:
        return goodness(health)
    except (KeyError, TypeError):
        return {}


def health_score(health: Mapping[str, float], weights: Mapping[str, float] | None = None) -> float:
    """The weighted mean of ``goodness``, gated by learning progress (module docstring).

    Args:
        health: the six metrics (``METRICS``), as ``measure`` returns them.
        weights: metric -> weight >= 0 (default 1 each); a 0 leaves that metric out, and
            ``learning_progress: 0`` also drops the gate.

    Returns:
        float: in [0, 1]; 0 for a network that did not learn.

    Raises:
        ValueError: every weight is zero.
    """
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    good = goodness(health)
    total = sum(w[m] for m in METRICS)
    if total <= 0:
        raise ValueError("health weights must not all be zero")
    gate = good["learning_progress"] if w["learning_progress"] > 0 else 1.0
    return float(gate * sum(w[m] * good[m] for m in METRICS) / total)


def score(mode: str, accuracy: float, health: Mapping[str, float], accuracy_weight: float = 0.7,
          weights: Mapping[str, float] | None = None) -> float:
    """The search objective: accuracy ("simple") or accuracy balanced with health ("health")."""
    if mode == "simple":
        return float(accuracy)
    return float(accuracy_weight * accuracy + (1.0 - accuracy_weight) * health_score(health, weights))


def validate_weights(weights: Mapping[str, float] | None) -> None:
    from .errors import ConfigError
    from .values import is_number

    if weights is not None and not isinstance(weights, Mapping):
        raise ConfigError(f"health_weights must be a mapping of metric -> weight, not {weights!r}.")
    for key, value in (weights or {}).items():
        if key not in METRICS:
            raise ConfigError(f"unknown health weight {key!r}; metrics are {', '.join(METRICS)}.")
        if not is_number(value) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"health weight {key!r} must be a number >= 0, not {value!r}.")
    if weights and sum({**DEFAULT_WEIGHTS, **weights}.values()) <= 0:
        raise ConfigError("health weights must not all be zero.")


def effective_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """Every metric's weight (``DEFAULT_WEIGHTS`` where ``weights`` leaves one out), as floats:
    what a health study records, so a reopen compares what the score uses."""
    return {m: float({**DEFAULT_WEIGHTS, **(weights or {})}[m]) for m in METRICS}


def same_weights(a: Mapping[str, float] | None, b: Mapping[str, float] | None) -> bool:
    """Whether two sets of health weights give the same health score: the score is a weighted
    mean, so only their proportions count ({all: 2} is the default equal weighting)."""
    wa, wb = effective_weights(a), effective_weights(b)
    ta, tb = sum(wa.values()), sum(wb.values())
    return all(math.isclose(wa[m] / ta, wb[m] / tb, rel_tol=1e-9, abs_tol=1e-12) for m in METRICS)


# -------------------------------------------------------------------- measuring


def measure(model: Any, history: Mapping[str, list[float]], x_val: np.ndarray, y_val: np.ndarray,
            sample: int = 256, gradient_sample: int = 64) -> dict[str, float]:
    """All six metrics for a trained model.

    The gradient is taken on one batch of ``gradient_sample`` inputs: an eager backward pass is
    the costliest probe (0.3 s per trial on MNIST for four batches of 64), and one batch
    estimates the same per-batch norm, to within the decade-wide band the metric scores.
    """
    xs, ys = x_val[:sample], y_val[:sample]
    dead, saturated = activation_health(model, xs)
    progress = learning_progress(history, int(model.output_shape[-1]), y_val)
    return {
        "gradient_health": gradient_health(gradient_norm(model, xs[:gradient_sample], ys[:gradient_sample])),
        "dead_units": dead,
        "saturated_units": saturated,
        "overfitting_gap": overfitting_gap(history),
        "learning_progress": progress,
        "loss_stability": loss_stability(history.get("val_loss", [])) * progress,
    }


def gradient_norm(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 64) -> float:
    """Mean global L2 norm of d(loss)/d(weights) over validation batches."""
    import keras
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    weights = [w.value for w in model.trainable_weights]
    norms = []
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=False))
        grads = [g for g in tape.gradient(loss, weights) if g is not None]
        norms.append(float(tf.linalg.global_norm(grads)) if grads else 0.0)
    return float(np.mean(norms)) if norms else 0.0


def gradient_health(norm: float) -> float:
    if not math.isfinite(norm):
        return 0.0
    low, high = _GRAD_OK
    if norm <= 0:
        return 0.0
    decades = math.log10(low / norm) if norm < low else math.log10(norm / high) if norm > high else 0.0
    return float(max(0.0, 1.0 - decades / 3.0))


def activation_health(model: Any, x: np.ndarray) -> tuple[float, float]:
    """(dead ReLU fraction, saturated tanh/sigmoid/LSTM fraction) over all probed units."""
    import keras

    probes = [l for l in model.layers if _kind(l) is not None]
    if not probes:
        return 0.0, 0.0
    probe_model = keras.Model(model.input, [l.output for l in probes])
    # Called eagerly, not with predict(): a new probe model per trial would otherwise trace a new
    # tf.function each time (TensorFlow's retracing warnings). 256 samples fit in one call.
    outputs = probe_model(x, training=False)
    if len(probes) == 1:
        outputs = [outputs]
    outputs = [np.asarray(o) for o in outputs]
    dead = relu_units = saturated = bounded_units = 0
    for layer, out in zip(probes, outputs):
        kind = _kind(layer)
        per_unit = np.asarray(out).reshape(-1, np.asarray(out).shape[-1])  # samples*positions x units
        if kind == "relu":
            dead += int(np.sum(per_unit.max(axis=0) <= 0.0))
            relu_units += per_unit.shape[1]
        else:
            at_limit = np.abs(per_unit) > 0.99 if kind == "tanh" else (per_unit < 0.01) | (per_unit > 0.99)
            saturated += int(np.sum(at_limit.mean(axis=0) > 0.9))
            bounded_units += per_unit.shape[1]
    return (dead / relu_units if relu_units else 0.0, saturated / bounded_units if bounded_units else 0.0)


def _kind(layer: Any) -> str | None:
    name = layer.__class__.__name__
    if name in ("LSTM", "Bidirectional"):
        return "tanh"
    if name == "Activation":
        act = layer.get_config().get("activation")
        return {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid"}.get(act)
    return None


def overfitting_gap(history: Mapping[str, list[float]]) -> float:
    train, val = history.get("accuracy"), history.get("val_accuracy")
    if not train or not val:
        return 0.0
    gap = float(train[-1]) - float(val[-1])
    return float(min(1.0, max(0.0, gap))) if math.isfinite(gap) else 1.0


def learning_progress(history: Mapping[str, list[float]], num_classes: int, labels: Any = None) -> float:
    """How far the loss fell below chance level, in [0, 1].

    Args:
        history: Keras ``History.history``; reads ``loss`` and ``val_loss`` (cross-entropy, nats).
        num_classes: K, the width of the softmax output.
        labels: integer class labels, shape (n,) (the validation split's): chance level is their
            entropy, the loss of always answering the class frequencies. None: ln(K) nats, a
            uniform guess (the same for balanced classes).

    Returns:
        float: (chance - lowest finite loss) / (``PROGRESS_TOLERANCE`` x chance), clipped to
        [0, 1]; 0.0 when no finite loss was recorded, K < 2 or the labels hold one class.
    """
    losses = [float(v) for key in ("loss", "val_loss") for v in history.get(key, []) if math.isfinite(float(v))]
    if not losses or num_classes < 2:
        return 0.0
    chance = math.log(num_classes) if labels is None else label_entropy(labels)
    if chance <= 0:
        return 0.0
    return float(min(1.0, max(0.0, (chance - min(losses)) / (PROGRESS_TOLERANCE * chance))))


def label_entropy(labels: Any) -> float:
    """Entropy in nats of the class frequencies of ``labels`` (integers, shape (n,)); 0 if empty."""
    _, counts = np.unique(np.asarray(labels).reshape(-1), return_counts=True)
    if counts.size == 0:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def loss_stability(val_loss: list[float], window: int = 4) -> float:
    tail = [float(v) for v in val_loss[-window:]]
    if any(not math.isfinite(v) for v in tail):
        return 0.0
    if len(tail) < 2:
        return 1.0
    changes = [abs(b - a) / max(abs(a), 1e-8) for a, b in zip(tail, tail[1:])]
    return float(max(0.0, 1.0 - float(np.mean(changes))))
