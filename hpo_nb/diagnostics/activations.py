"""Activation maps of a few fixed validation samples, measured at a trial's end: images, the
post-activation output of each conv block (the ``MAX_CHANNELS`` most active channels); text,
each LSTM layer's output at every token (the ``MAX_UNITS`` most varying units), with the words
of the samples' tokens. The arrays travel inline (``record.INLINE_KEY``), shrunk to
``record.MAX_INLINE_BYTES`` by keeping fewer channels."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import record

SAMPLES = 3
MAX_CHANNELS = 16
MAX_UNITS = 32


def fixed_samples(y_val: np.ndarray, n: int = SAMPLES) -> list[int]:
    """Indices of the first validation sample of each of the first ``n`` classes present."""
    seen: dict[int, int] = {}
    for i, label in enumerate(np.asarray(y_val).reshape(-1)):
        seen.setdefault(int(label), i)
    return [seen[c] for c in sorted(seen)[:n]]


def activation_maps(model: Any, x_val: np.ndarray, y_val: np.ndarray, modality: str,
                    vocabulary: Sequence[str] | None = None) -> dict[str, Any]:
    """Activation maps of the fixed validation samples, as summary keys plus an inline ``.npz``.

    Args:
        model: the trained network.
        x_val: validation inputs, shape (n, ...) (text: token ids, int, shape (n, T)).
        y_val: class indices, int, shape (n,).
        modality: "image" or "text".
        vocabulary: text: token id -> word (``TextVectorization.get_vocabulary()``), or None.

    Returns:
        dict: ``activations`` (``kind``, ``layers``, ``samples``: validation indices, ``labels``,
        ``channels``: the kept channel/unit indices per layer; text with a vocabulary also
        ``words``: token id (str) -> word for the samples' tokens) and ``record.INLINE_KEY`` with
        ``activations.npz``: ``input`` (samples x ...) and one float16 array per layer
        (images: samples x h x w x channels; text: samples x tokens x units).
    """
    idx = fixed_samples(y_val)
    xs = x_val[idx]
    layers, outputs = (_conv_outputs(model, xs) if modality == "image" else _lstm_outputs(model, xs))
    if not layers:
        return {}
    limit = MAX_CHANNELS if modality == "image" else MAX_UNITS
    while True:
        arrays: dict[str, np.ndarray] = {"input": np.asarray(xs, dtype=np.float16 if modality == "image" else np.int32)}
        kept: dict[str, list[int]] = {}
        for name, out in zip(layers, outputs):
            out = np.asarray(out, dtype=np.float32)
            flat = out.reshape(-1, out.shape[-1])
            order = np.argsort(-(flat.mean(axis=0) if modality == "image" else flat.std(axis=0)))[:limit]
            keep = sorted(int(c) for c in order)
            kept[name] = keep
            arrays[name] = out[..., keep].astype(np.float16)
        blob = record.encode_arrays(arrays)
        if len(blob) <= record.MAX_INLINE_BYTES or limit <= 1:
            break
        limit //= 2
    info = {"kind": modality, "layers": list(layers), "samples": [int(i) for i in idx],
            "labels": [int(v) for v in np.asarray(y_val)[idx]], "channels": kept}
    if modality == "text" and vocabulary:
        info["words"] = token_words(xs, vocabulary)
    return {"activations": info, record.INLINE_KEY: {record.ACTIVATIONS: blob}}


def token_words(tokens: np.ndarray, vocabulary: Sequence[str]) -> dict[str, str]:
    """The words of the token ids in ``tokens`` (keys: ids as text, JSON's only key type).

    Args:
        tokens: token ids, int, any shape.
        vocabulary: id -> word (index 0 padding, 1 out of vocabulary, as ``TextVectorization``).

    Returns:
        dict[str, str]: id -> word; padding is ``[pad]``, out-of-vocabulary ``[UNK]``.
    """
    words = {}
    for token in sorted({int(t) for t in np.asarray(tokens).reshape(-1)}):
        words[str(token)] = "[pad]" if token == 0 else "[UNK]" if token == 1 else \
            str(vocabulary[token]) if 0 <= token < len(vocabulary) else str(token)
    return words


def _conv_outputs(model: Any, xs: np.ndarray) -> tuple[list[str], list[Any]]:
    import keras

    names, tensors, current = [], [], None
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            if current is not None:
                names.append(current[0]), tensors.append(current[1])
            current = (layer.name, layer.output)
        elif current is not None and isinstance(layer, keras.layers.Activation):
            current = (current[0], layer.output)  # the block's post-activation map
            names.append(current[0]), tensors.append(current[1])
            current = None
    if current is not None:
        names.append(current[0]), tensors.append(current[1])
    if not names:
        return [], []
    outs = keras.Model(model.input, tensors)(xs, training=False)
    return names, list(outs) if isinstance(outs, (list, tuple)) else [outs]


def _lstm_outputs(model: Any, xs: np.ndarray) -> tuple[list[str], list[Any]]:
    """Each LSTM (or Bidirectional) layer's output at every token: a sequence-returning copy
    with the same weights for a layer that returns only its last state."""
    import keras

    recurrent = [l for l in model.layers if isinstance(l, (keras.layers.LSTM, keras.layers.Bidirectional))]
    if not recurrent:
        return [], []
    inputs = [l.input[0] if isinstance(l.input, (list, tuple)) else l.input for l in recurrent]  # (x, mask)
    feeds = keras.Model(model.input, inputs)(xs, training=False)
    feeds = list(feeds) if isinstance(feeds, (list, tuple)) else [feeds]
    mask = np.asarray(xs) != 0
    outputs = []
    for layer, feed in zip(recurrent, feeds):
        config = _return_sequences(layer.get_config())
        copy = layer.__class__.from_config(config)
        copy.build(tuple(feed.shape))
        copy.set_weights(layer.get_weights())
        outputs.append(copy(feed, mask=mask, training=False))
    return [l.name for l in recurrent], outputs


def _return_sequences(config: Any) -> Any:
    if isinstance(config, dict):
        return {k: (True if k == "return_sequences" else _return_sequences(v)) for k, v in config.items()}
    if isinstance(config, list):
        return [_return_sequences(v) for v in config]
    return config
