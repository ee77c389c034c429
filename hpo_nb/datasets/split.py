"""How a dataset is split and vectorized: stratified hold-outs, and text as token ids with a
vocabulary fitted on the training part only."""

from __future__ import annotations

import numpy as np


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out): ``fraction`` of every class held out, at least one sample each."""
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        n_held = int(round(len(idx) * fraction))
        if len(idx) > 1:
            n_held = min(max(n_held, 1), len(idx) - 1)
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    keep_idx, held_idx = np.concatenate(keep), np.concatenate(held)
    rng.shuffle(keep_idx)
    return keep_idx, np.sort(held_idx)


def vectorize(x_train: np.ndarray, x_val: np.ndarray, x_test: np.ndarray, *, raw_text: bool, length: int,
              max_tokens: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Text as int32 token ids (n, length): raw strings through a ``TextVectorization`` adapted on
    ``x_train`` only, token-id sequences padded/truncated at the end. Returns the three arrays and
    the vocabulary (empty for token ids)."""
    if not raw_text:
        from keras.utils import pad_sequences

        def pad(seqs: np.ndarray) -> np.ndarray:
            if len(seqs) == 0:
                return np.zeros((0, length), dtype="int32")
            return pad_sequences(list(seqs), maxlen=length, padding="post", truncating="post").astype("int32")

        return pad(x_train), pad(x_val), pad(x_test), []
    import keras

    vectorizer = keras.layers.TextVectorization(max_tokens=max_tokens, output_mode="int",
                                                output_sequence_length=length)
    vectorizer.adapt(x_train.astype(str), batch_size=1024)

    def vec(texts: np.ndarray) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, length), dtype="int32")
        return np.asarray(vectorizer(texts.astype(str)), dtype="int32")

    return vec(x_train), vec(x_val), vec(x_test), [str(t) for t in vectorizer.get_vocabulary()]
