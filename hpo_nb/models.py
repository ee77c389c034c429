"""Build a Keras model from a trial's parameters, and describe it as JSON.

Every weight initializer and dropout layer gets its own seed derived from the trial seed, so
the same spec builds the same network in any thread or process. Activations are separate
``Activation`` layers: health metrics read their outputs to find dead or saturated units.
"""

from __future__ import annotations

import warnings
from typing import Any

import keras
import numpy as np
from keras import layers

from .errors import ConfigError
from .space import LR_SCHEDULES

_OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "nadam": keras.optimizers.Nadam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": lambda learning_rate: keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9),
}


# Batch normalization's moving statistics must settle within a short trial: validation runs in
# inference mode on them. With Keras' default momentum 0.99 a 2-block CNN on digits (batch 16,
# 5 epochs, ~450 steps) validated at 0.30-0.92 per epoch while training at 0.98; with 0.9 it
# validated at 0.91-0.98 (see benchmarks/RESULTS.md, "Search quality").
BN_MOMENTUM = 0.9


def silence_mask_drop_warning() -> None:
    """"max" pooling over the LSTM's outputs drops the padding mask on purpose (see _lstm_body);
    Keras warns at every build and load that it does. Only that one layer's warning is silenced;
    applied at import and again at each build (a ``warnings.catch_warnings`` block around the
    import would otherwise take the filter away with it)."""
    warnings.filterwarnings("ignore", message=r"Layer 'max_over_time' \(of type GlobalMaxPooling1D\) was passed "
                            r"an input with a mask", category=UserWarning)


silence_mask_drop_warning()

_SATURATING = ("tanh", "sigmoid")


def _kernel_init(activation: str, seed: int) -> keras.initializers.Initializer:
    """He initialization for the ReLU family (He et al. 2015, "Delving Deep into Rectifiers"),
    Glorot for saturating activations (Glorot & Bengio 2010): faster first epochs on digits."""
    if activation in _SATURATING:
        return keras.initializers.GlorotUniform(seed)
    return keras.initializers.HeUniform(seed)


class _Seeds:
    """Hands out a fresh deterministic seed per layer."""

    def __init__(self, seed: int) -> None:
        self._next = seed * 1009 + 17

    def __call__(self) -> int:
        self._next += 1
        return self._next


def build_model(
    params: dict[str, Any],
    *,
    modality: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    vocabulary_size: int | None = None,
    seed: int = 0,
    total_steps: int | None = None,
) -> keras.Model:
    """A compiled Keras model: a CNN for images, an (bi)LSTM for text.

    Args:
        params: the trial's parameters (``space`` names them).
        modality: "image" or "text".
        input_shape: one sample's shape, e.g. (28, 28, 1) or (sequence_length,).
        num_classes: K, the softmax's width.
        vocabulary_size: token ids are below it (text only).
        seed: the trial seed every initializer and dropout layer derives its own from.
        total_steps: optimizer steps the trial will take (epochs x steps per epoch); the
            learning-rate schedule (``params["lr_schedule"]``) decays over them. None: a constant
            learning rate (a model rebuilt for inspection, or trained open-ended).

    Returns:
        keras.Model: compiled (sparse categorical cross-entropy, accuracy).

    Raises:
        ConfigError: an unknown modality, optimizer or schedule.
    """
    silence_mask_drop_warning()
    seeds = _Seeds(seed)
    if modality == "image":
        inputs, x = _cnn_body(params, input_shape, seeds)
    elif modality == "text":
        inputs, x = _lstm_body(params, input_shape, vocabulary_size or 2, seeds)
    else:
        raise ConfigError(f"unknown modality {modality!r}")
    x = _dense_head(params, x, seeds)
    outputs = layers.Dense(
        num_classes, activation="softmax", kernel_initializer=keras.initializers.GlorotUniform(seeds()),
        name="output",
    )(x)
    model = keras.Model(inputs, outputs, name="cnn" if modality == "image" else "lstm")
    compile_model(model, params, total_steps)
    return model


def compile_model(model: keras.Model, params: dict[str, Any], total_steps: int | None = None) -> None:
    """Compile with the trial's optimizer and learning-rate schedule (see ``learning_rate_of``)."""
    name = params.get("optimizer", "adam")
    if name not in _OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose from {sorted(_OPTIMIZERS)}")
    optimizer = _OPTIMIZERS[name](learning_rate=learning_rate_of(params, total_steps))
    # Keras 3: the third positional argument is loss_weights, so metrics go by keyword.
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def learning_rate_of(params: dict[str, Any], total_steps: int | None) -> Any:
    """The optimizer's learning rate: ``params["learning_rate"]`` as the peak of its schedule.

    "linear" (the default) decays it linearly to zero over the trial's ``total_steps``, the
    budget-aware schedule of Li, Yumer & Ramanan (2020, "Budgeted Training: Rethinking Deep
    Neural Network Training Under Resource Constraints", ICLR), which beat a constant rate
    at every budget they tried; "cosine" is Loshchilov & Hutter's (2017, SGDR) without restarts;
    "constant" keeps it flat. Measured here (the default first configuration, seeds 0-2, best
    validation accuracy): benchmarks/RESULTS.md, "Levers".

    Args:
        params: the trial's parameters; ``learning_rate`` (float, > 0) and ``lr_schedule``.
        total_steps: optimizer steps of the whole trial, or None for a constant rate.

    Returns:
        float or keras.optimizers.schedules.LearningRateSchedule.

    Raises:
        ConfigError: an unknown ``lr_schedule``.
    """
    rate = float(params.get("learning_rate", 1e-3))
    schedule = params.get("lr_schedule", "constant")
    if schedule not in LR_SCHEDULES:
        raise ConfigError(f"unknown lr_schedule {schedule!r}; choose from {list(LR_SCHEDULES)}")
    if schedule == "constant" or not total_steps:
        return rate
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(rate, int(total_steps))
    return keras.optimizers.schedules.PolynomialDecay(rate, int(total_steps), end_learning_rate=0.0, power=1.0)


def _cnn_body(params: dict[str, Any], input_shape: tuple[int, ...], seeds: _Seeds):
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    act = params.get("activation", "relu")
    side = min(input_shape[0], input_shape[1])
    for i in range(int(params.get("conv_blocks", 2))):
        x = layers.Conv2D(
            int(params.get("filters", 32)) * 2**i, int(params.get("kernel_size", 3)), padding="same",
            kernel_initializer=_kernel_init(act, seeds()), name=f"conv_{i + 1}",
        )(x)
        if params.get("batch_norm", False):
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"conv_{i + 1}_bn")(x)
        x = layers.Activation(act, name=f"conv_{i + 1}_{act}")(x)
        pooling = params.get("pooling", "max")
        if pooling != "none" and side >= 2:
            pool = layers.MaxPooling2D if pooling == "max" else layers.AveragePooling2D
            x = pool(2, name=f"conv_{i + 1}_pool")(x)
            side //= 2
    x = layers.Flatten(name="flatten")(x)
    return inputs, x


def _lstm_body(params: dict[str, Any], input_shape: tuple[int, ...], vocabulary_size: int, seeds: _Seeds):
    inputs = keras.Input(shape=input_shape, dtype="int32", name="tokens")
    # A text with no token (empty, or punctuation only once standardized: ":-) :-)") is all
    # padding: its mask is all False and the masked mean below divides 0 by 0, a NaN that fails
    # the whole trial. Its first position is read as the out-of-vocabulary id 1 instead (one
    # unknown word); any other text starts with a token >= 1 and is unchanged. A Keras op, not a
    # custom layer, so saved models still load with plain Keras.
    first = np.zeros(input_shape, dtype="int32")
    first[(0,) * len(input_shape)] = 1
    x = keras.ops.maximum(inputs, first)
    x = layers.Embedding(
        vocabulary_size, int(params.get("embedding_dim", 64)), mask_zero=True,
        embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=seeds()), name="embedding",
    )(x)
    embedding_dropout = float(params.get("embedding_dropout", 0.0))
    if embedding_dropout > 0:  # whole embedding channels, as in Gal & Ghahramani (2016)
        x = layers.SpatialDropout1D(embedding_dropout, seed=seeds(), name="embedding_dropout")(x)
    n = int(params.get("lstm_layers", 1))
    pooling = params.get("sequence_pooling", "last")
    for i in range(n):
        lstm = layers.LSTM(
            int(params.get("lstm_units", 64)), return_sequences=i < n - 1 or pooling != "last",
            kernel_initializer=keras.initializers.GlorotUniform(seeds()),
            recurrent_initializer=keras.initializers.Orthogonal(seed=seeds()), name=f"lstm_{i + 1}",
        )
        x = (layers.Bidirectional(lstm, name=f"bilstm_{i + 1}") if params.get("bidirectional") else lstm)(x)
    # Pooling over every step's output instead of the last state gives the classifier every
    # position's evidence. Mean pooling skips padding (it reads the mask); max pooling does not:
    # a masked LSTM outputs zeros at padded steps, so "max" is max(0, max over real steps), a ReLU
    # of the max. Kept that way (no custom layer), so a saved model loads with plain Keras.
    if pooling == "max":
        x = layers.GlobalMaxPooling1D(name="max_over_time")(x)
    elif pooling == "average":
        x = layers.GlobalAveragePooling1D(name="mean_over_time")(x)
    return inputs, x


def _dense_head(params: dict[str, Any], x: Any, seeds: _Seeds) -> Any:
    rate = float(params.get("dropout", 0.0))
    act = params.get("activation", "relu")
    if rate > 0:
        x = layers.Dropout(rate, seed=seeds(), name="dropout")(x)
    for j in range(int(params.get("dense_layers", 0))):
        x = layers.Dense(
            int(params.get("dense_units", 64)), kernel_initializer=_kernel_init(act, seeds()),
            name=f"dense_{j + 1}",
        )(x)
        x = layers.Activation(act, name=f"dense_{j + 1}_{act}")(x)
        if rate > 0:
            x = layers.Dropout(rate, seed=seeds(), name=f"dense_{j + 1}_dropout")(x)
    return x


# ------------------------------------------------------------------ architecture


_KEY_CONFIG = ("filters", "kernel_size", "strides", "padding", "units", "pool_size", "rate",
               "return_sequences", "output_dim", "input_dim", "mask_zero")


def architecture(model: keras.Model, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON-serializable description: each layer (name, type, output shape, parameters,
    activation, key config) plus totals; enough for the 3D view without rebuilding the model."""
    out_layers = []
    for layer in model.layers:
        cfg = layer.get_config()
        inner = cfg.get("layer", {}).get("config", {}) if layer.__class__.__name__ == "Bidirectional" else {}
        activation = cfg.get("activation") or inner.get("activation")
        if isinstance(activation, dict):
            activation = activation.get("config", {}).get("name") or activation.get("class_name")
        entry = {
            "name": layer.name,
            "type": layer.__class__.__name__,
            "output_shape": _shape(layer),
            "params": int(layer.count_params()) if layer.built else 0,
            "activation": activation if activation not in (None, "linear") else None,
            "config": {k: _jsonable(v) for k, v in {**inner, **cfg}.items() if k in _KEY_CONFIG},
        }
        out_layers.append(entry)
    trainable = int(sum(keras.ops.size(w) for w in model.trainable_weights))
    return {
        "model_type": "CNN" if model.name == "cnn" else "LSTM" if model.name == "lstm" else model.name,
        "layers": out_layers,
        "total_params": int(model.count_params()),
        "trainable_params": trainable,
        "input_shape": list(model.input_shape[1:]),
        "num_classes": int(model.output_shape[-1]),
        "summary": summarize(out_layers),
    }


def summarize(layer_list: list[dict[str, Any]]) -> dict[str, Any]:
    """The gallery's one-line view: conv/LSTM/dense layers, their widths, activations."""
    conv = [l for l in layer_list if l["type"] == "Conv2D"]
    lstm = [l for l in layer_list if l["type"] in ("LSTM", "Bidirectional")]
    dense = [l for l in layer_list if l["type"] == "Dense" and l["name"] != "output"]
    acts = sorted({l["activation"] for l in layer_list if l["activation"] and l["name"] != "output"})
    return {
        "conv_layers": len(conv),
        "filters": [l["config"].get("filters") for l in conv],
        "kernel_sizes": [l["config"].get("kernel_size") for l in conv],
        "lstm_layers": len(lstm),
        "lstm_units": [l["config"].get("units") for l in lstm],
        "bidirectional": any(l["type"] == "Bidirectional" for l in lstm),
        "dense_layers": len(dense),
        "dense_units": [l["config"].get("units") for l in dense],
        "activations": acts,
        "total_params": int(sum(l["params"] for l in layer_list)),
    }


def _shape(layer: Any) -> list[int | None]:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        return []
    return [None if d is None else int(d) for d in list(shape)[1:]]


def _jsonable(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_jsonable(i) for i in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)
