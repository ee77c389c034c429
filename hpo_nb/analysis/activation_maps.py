"""Activation maps of a trial's fixed validation samples as plain data (split from
``analysis.diagnostics``, which re-exports them): the stored summary plus the arrays from the
artifact store, ready for ``views.diagnostic_plots.activations``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class ActivationMaps:
    """Activations of a few fixed validation samples.

    Attributes:
        kind: "image" (conv maps) or "text" (LSTM outputs per token).
        layers: the layers shown, input to output.
        samples: the samples' validation indices; labels: their true class names.
        inputs: the samples (images: float, shape (S, h, w, c); text: token ids, shape (S, T)).
        maps: layer -> float array (images: (S, h, w, C); text: (S, T, U)).
        channels: layer -> the channel / unit indices kept (the most active / varying), in the
            order of the maps' last axis.
        words: text: token id -> word for the samples' tokens (``[pad]``, ``[UNK]`` for ids 0 and
            1); empty when the record has no vocabulary (ids are shown).
    """

    kind: str
    layers: list[str]
    samples: list[int]
    labels: list[str]
    inputs: np.ndarray
    maps: dict[str, np.ndarray]
    channels: dict[str, list[int]]
    words: dict[int, str] = field(default_factory=dict)

    def token_labels(self, sample: int) -> list[str]:
        """The tokens of sample row ``sample`` as words (text), padding included.

        Args:
            sample: the row in ``samples`` (0-based).

        Returns:
            list[str]: one label per token position: the word, ``[pad]`` for padding (id 0),
            ``[UNK]`` out of vocabulary (id 1, with a vocabulary), else the id as text.
        """
        ids = np.asarray(self.inputs[sample]).reshape(-1).astype(int)
        return [self.words.get(int(t)) or ("[pad]" if t == 0 else str(int(t))) for t in ids]


def activation_maps(diagnostics: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None,
                    trial: int, store: str = "", hint: str = "") -> ActivationMaps:
    """A trial's activation maps from its summary and its stored arrays.

    Args:
        diagnostics: the trial's stored diagnostics.
        arrays: its ``activations.npz`` artifact as arrays (``diagnostics.store.load_arrays``),
            or None if not readable here.
        trial: its number (for error messages).
        store: where the arrays were looked for (the artifact stores' folders), for the error.
        hint: what the study recorded about other stores (``diagnostics.store.read_stores``),
            for the error.

    Returns:
        ActivationMaps: per layer, the fixed samples' maps.

    Raises:
        ConfigError: no activations were measured, or their arrays are not in this run folder's
            artifact store.
    """
    from .diagnostics import require  # the shared "why is it missing" check (that module imports this one)

    info = require(diagnostics, "activations", trial)
    if arrays is None:
        artifact = (diagnostics.get("artifacts") or {}).get("activations.npz")
        where = f"the artifact store at {store}" if store else "this run folder's artifact store"
        raise ConfigError(
            f"trial {trial}'s activation arrays{f' (artifact {artifact})' if artifact else ''} are not in {where}. "
            + (f"{hint} " if hint else "")
            + "The study (e.g. on PostgreSQL) holds every other diagnostic, but the arrays are files in the "
            "artifact store of the process that ran the trial (by default the artifacts/ folder of its run folder). "
            "Copy that folder here, or share one: Experiment(..., artifact_store='/shared/folder') (or an "
            "optuna.artifacts store, e.g. Boto3ArtifactStore) on every machine.")
    names = diagnostics.get("class_names") or []
    labels = [str(names[i]) if i < len(names) else str(i) for i in info.get("labels") or []]
    layers = [l for l in info.get("layers") or [] if l in arrays]
    words = {int(k): str(v) for k, v in (info.get("words") or {}).items()}
    return ActivationMaps(str(info.get("kind")), layers, list(info.get("samples") or []), labels,
                          np.asarray(arrays["input"]), {l: np.asarray(arrays[l], dtype=np.float32) for l in layers},
                          {l: list((info.get("channels") or {}).get(l) or []) for l in layers}, words)
