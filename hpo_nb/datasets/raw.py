"""A trained network taking raw inputs: the dataset's preprocessing as Keras layers in front of
it, and raw user inputs checked and shaped into a batch (``Experiment.predict``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ConfigError
from .dataset import Dataset


def with_preprocessing(
    self: Dataset, network: Any, validation_fraction: float = 0.2, seed: int = 0, sample_fraction: float = 1.0,
    test_fraction: float | None = None,
) -> Any:
    """``network`` behind this dataset's preprocessing, as one Keras model taking raw inputs.

    Images: a ``Rescaling(scale)`` layer, so the model takes raw pixel values (uint8 0..255,
    digits 0..16), shape (n, h, w, c). Raw text: a ``TextVectorization`` layer holding the
    training split's vocabulary, so the model takes a string tensor of shape (n,) (as Keras'
    end-to-end text examples export it). Token-id text: the network itself (padded int32 ids).
    Call where Keras may build layers (not concurrently with other model building).

    Args:
        network: the trained ``keras.Model`` (inputs as ``splits(raw=False)`` gives them).
        validation_fraction, seed, sample_fraction, test_fraction: the split it trained on.

    Returns:
        keras.Model: not compiled (``predict`` needs no compiling; compile it to ``evaluate``).
    """
    import keras

    if self.modality == "image":
        inputs = keras.Input(shape=self.input_shape, name="pixels")
        x = keras.layers.Rescaling(self.scale, name="rescale")(inputs)
    elif self.is_raw_text:
        inputs = keras.Input(shape=(), dtype="string", name="text")
        x = keras.layers.TextVectorization(
            max_tokens=self.max_tokens, output_mode="int", output_sequence_length=int(self.sequence_length or 0),
            vocabulary=self.vocabulary(validation_fraction, seed, sample_fraction, test_fraction),
            name="vectorize",
        )(inputs)
    else:
        return network
    return keras.Model(inputs, network(x), name=f"{network.name}_raw_inputs")

def prepare_raw(self: Dataset, inputs: Any) -> Any:
    """Raw user inputs as a batch a saved model takes: one sample or many; images (h, w),
    (h, w, c) or flat square vectors; a str or a list of str; ragged token-id sequences.

    Raises:
        ConfigError: no inputs; NaN/inf pixels; pixel values above the dataset's raw range
            (``raw_max``, e.g. 0..255 given to a 0..16 digits model); a shape that does not fit;
            anything but strings for a raw-text dataset.
    """
    if inputs is None or (not isinstance(inputs, str) and np.size(np.asarray(inputs, dtype=object)) == 0):
        raise ConfigError(f"no inputs to predict: pass one sample or a batch for dataset {self.name!r}.")
    if self.modality == "text":
        if isinstance(inputs, str):
            inputs = [inputs]
        if self.is_raw_text:
            wrong = [t for t in inputs if not isinstance(t, (str, np.str_))]
            if wrong:
                raise ConfigError(
                    f"dataset {self.name!r} is raw text: pass a str or a list of str to predict "
                    f"(got {type(wrong[0]).__name__} {str(wrong[0])[:40]!r}); its model tokenizes them itself."
                )
            return np.asarray([str(t) for t in inputs], dtype=object)
        from keras.utils import pad_sequences

        seqs = list(inputs)
        if seqs and np.ndim(seqs[0]) == 0:
            seqs = [seqs]
        return pad_sequences(seqs, maxlen=int(self.sequence_length or 0), padding="post",
                             truncating="post").astype("int32")
    try:
        x = np.asarray(inputs, dtype="float32")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"images for dataset {self.name!r} must be numeric arrays of one size: {exc}") from None
    if not np.all(np.isfinite(x)):
        raise ConfigError(f"the images hold {int((~np.isfinite(x)).sum())} NaN/inf values; a model cannot score them.")
    top = self.raw_max
    if top is not None and (float(x.max()) > top * (1 + 1e-3) or float(x.min()) < -top * 1e-3):
        raise ConfigError(
            f"dataset {self.name!r} takes raw pixel values in 0..{top:g} (its training data's range; the model "
            f"multiplies them by {self.scale:g}); got values in {float(x.min()):g}..{float(x.max()):g}. "
            f"Rescale them to 0..{top:g} first."
        )
    shape = self.input_shape
    one_channel = shape[-1] == 1
    sample_shapes = [shape, *([shape[:2]] if one_channel else []), (math.prod(shape),)]
    if x.shape in sample_shapes:
        return x.reshape((1, *shape))
    if x.ndim >= 2 and x.shape[1:] in sample_shapes:
        return x.reshape((-1, *shape))
    raise ConfigError(
        f"images for dataset {self.name!r} must have shape (n, {', '.join(map(str, shape))})"
        f"{' or (n, ' + ', '.join(map(str, shape[:2])) + ')' if one_channel else ''} (or one image); "
        f"got an array of shape {x.shape}."
    )


def network_of(model: Any) -> Any:
    """The trained network inside a model saved for raw inputs (``Dataset.with_preprocessing``);
    ``model`` itself when it has no preprocessing around it."""
    import keras

    if model.name.endswith("_raw_inputs"):
        inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        if len(inner) == 1:
            return inner[0]
    return model

