"""Lay out a network as 3D solids from its stored architecture metadata (``models.architecture``).

Pure geometry: no widget or plotting import, so a remote trial or a restarted kernel gets the
same scene without rebuilding the model, and the scene is tested as numbers. Data flows along
+x. Sizes are log-scaled so a 10-unit softmax and a 1,024-wide flatten both stay visible:

- ``[H, W, C]`` (images, feature maps): height ``H`` on y, width ``W`` on z, channels ``C`` on x;
- ``[T, F]`` (sequences): features ``F`` on y, time steps ``T`` on z;
- ``[N]`` (vectors): a bar whose height follows ``N``.

Layers that keep their input's shape (activation, dropout, normalization) are drawn as thin
plates of that shape, so the data-changing layers stand out.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace
from typing import Any, Mapping

from ..errors import ConfigError
from ..values import short_value

SCALE = 0.5  # world units per log2 step
MIN_SIZE = 0.3
THIN = 0.15  # thickness of shape-preserving layers along the flow
BAR = 0.5  # thickness of vectors and sequences along the flow
GAP = 0.7  # space between consecutive solids (where the connectors are)
LABEL_LIFT = 0.3  # from a solid's top (or bottom, for thin plates) to its label's centre
LABEL_HEIGHT = 0.32  # world units; a label's width follows its text (label_width)
LABEL_STEP = 0.4  # a label that would overlap one already placed moves one step further out
LABEL_MARGIN = 0.08

SHAPE_PRESERVING = frozenset({
    "Activation", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization", "ReLU",
    "LeakyReLU", "PReLU", "ELU", "Softmax",
})

COLORS: dict[str, str] = {
    "InputLayer": "#9e9e9e",
    "Conv2D": "#1f77b4",
    "Conv1D": "#4f8fd0",
    "SeparableConv2D": "#6baed6",
    "DepthwiseConv2D": "#9ecae1",
    "MaxPooling2D": "#ff7f0e",
    "AveragePooling2D": "#fdae6b",
    "MaxPooling1D": "#e6550d",
    "GlobalAveragePooling2D": "#fd8d3c",
    "GlobalMaxPooling2D": "#d94801",
    "BatchNormalization": "#9467bd",
    "LayerNormalization": "#b39ddb",
    "Activation": "#e6c229",
    "Dropout": "#bdbdbd",
    "Flatten": "#17becf",
    "Dense": "#2ca02c",
    "Embedding": "#8c564b",
    "LSTM": "#d62728",
    "GRU": "#ef5350",
    "Bidirectional": "#e377c2",
}
_FALLBACK = ("#7f7f7f", "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd")


def color_of(layer_type: str) -> str:
    """A fixed colour per layer type; unknown types get a stable colour from their name."""
    return COLORS.get(layer_type) or _FALLBACK[zlib.crc32(layer_type.encode()) % len(_FALLBACK)]


def extent(n: int | None) -> float:
    """Log-scaled length of an axis with ``n`` elements (unknown length: as one element)."""
    n = 1 if n is None or n < 1 else n
    return max(MIN_SIZE, SCALE * math.log2(1 + n))


def label_width(text: str) -> float:
    """Width in world units of a label sprite of ``text`` (as views/arch3d.py draws it)."""
    return LABEL_HEIGHT * (0.56 * len(text) + 0.1)


def _place_labels(blocks: list[tuple[float, float, float, bool, str]]) -> list[tuple[float, float]]:
    """(y, z) of each label: just above its solid (below, for thin plates); where that would overlap
    a label already placed (seen from the front), on the other side, then one step further out. ``blocks``:
    (centre x, half height, half depth, thin, text) in data-flow order."""
    placed: list[tuple[float, float, float, float]] = []  # x0, x1, y0, y1
    out = []
    for cx, half, half_depth, thin, text in blocks:
        w = label_width(text) / 2 + LABEL_MARGIN
        h = LABEL_HEIGHT / 2 + LABEL_MARGIN
        sides = (-1.0, 1.0) if thin else (1.0, -1.0)  # its own side first, then the other one
        for step in range(len(blocks) + 1):
            spots = [side * (half + LABEL_LIFT + step * LABEL_STEP) for side in sides]
            free = [y for y in spots if not any(cx - w < x1 and cx + w > x0 and y - h < y1 and y + h > y0
                                                for x0, x1, y0, y1 in placed)]
            if free:
                y = free[0]
                break
        placed.append((cx - w, cx + w, y - h, y + h))
        out.append((y, half_depth + 0.05))  # on the solid's front face: near it, drawn over it
    return out


def shape_text(shape: list[int | None]) -> str:
    return "×".join("?" if d is None else str(d) for d in shape) if shape else "scalar"


@dataclass(frozen=True)
class Block:
    """One layer as a solid: centre and size in world units, colour, label and details."""

    index: int
    name: str
    type: str
    shape: tuple[int | None, ...]
    params: int
    activation: str | None
    config: Mapping[str, Any]
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    color: str
    label_at: tuple[float, float, float]

    @property
    def label(self) -> str:
        return f"{self.name} {shape_text(list(self.shape))}"

    def details(self) -> dict[str, Any]:
        """What picking the layer shows."""
        return {"name": self.name, "type": self.type, "output shape": shape_text(list(self.shape)),
                "parameters": self.params, "activation": self.activation or "none",
                **{k: v for k, v in self.config.items()}}

    def details_text(self, sep: str = "\n") -> str:
        return sep.join(f"{k}: {short_value(v, grouping=True)}" for k, v in self.details().items())


@dataclass(frozen=True)
class Scene:
    """A laid-out network: solids in data-flow order, connectors between them, a legend."""

    model_type: str
    blocks: tuple[Block, ...]
    connectors: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...]
    legend: dict[str, str]  # layer type -> colour, in order of first appearance
    total_params: int

    @property
    def bounds(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        lo = tuple(min(b.center[i] - b.size[i] / 2 for b in self.blocks) for i in range(3))
        lo = tuple(min(lo[i], *(b.label_at[i] for b in self.blocks)) for i in range(3))
        hi = tuple(max(max(b.center[i] + b.size[i] / 2, b.label_at[i]) for b in self.blocks) for i in range(3))
        return lo, hi  # type: ignore[return-value]

    @property
    def reach(self) -> tuple[float, float, float]:
        """Largest distance from the origin along x, y and z of any solid or label."""
        lo, hi = self.bounds
        return tuple(max(abs(lo[i]), abs(hi[i])) for i in range(3))  # type: ignore[return-value]

    @property
    def radius(self) -> float:
        """Half the side of an origin-centred cube that holds every solid and label."""
        return max(1.0, *self.reach)

    def block(self, name: str) -> Block:
        for b in self.blocks:
            if b.name == name:
                return b
        raise KeyError(name)


def block_size(layer_type: str, shape: list[int | None]) -> tuple[float, float, float]:
    """(flow, height, depth) of a layer with output ``shape`` (batch axis excluded)."""
    dims = list(shape)
    if len(dims) > 3:  # e.g. Conv3D: fold the leading spatial axes into the height
        lead = 1
        for d in dims[:-2]:
            lead *= d or 1
        dims = [lead, *dims[-2:]]
    if len(dims) == 3:
        h, w, c = dims
        flow, height, depth = extent(c), extent(h), extent(w)
    elif len(dims) == 2:
        t, f = dims
        flow, height, depth = BAR, extent(f), extent(t)
    elif len(dims) == 1:
        flow, height, depth = BAR, extent(dims[0]), BAR
    else:
        flow = height = depth = BAR
    if layer_type in SHAPE_PRESERVING:
        flow = THIN
    return flow, height, depth


def layout(architecture: Mapping[str, Any]) -> Scene:
    """The scene for one trial's architecture metadata (a ``models.architecture`` dict, e.g.
    ``exp.best.architecture``, possibly after a JSON round trip)."""
    layers = architecture.get("layers") if isinstance(architecture, Mapping) else None
    if not layers:
        raise ConfigError("this trial has no architecture metadata (it failed before its model was built); "
                          "pick a complete trial, e.g. exp.best.number.")
    sizes = [block_size(str(l.get("type", "?")), list(l.get("output_shape") or [])) for l in layers]
    total = sum(s[0] for s in sizes) + GAP * (len(sizes) - 1)
    x = -total / 2
    blocks: list[Block] = []
    for i, (layer, size) in enumerate(zip(layers, sizes)):
        cx = x + size[0] / 2
        x += size[0] + GAP
        layer_type = str(layer.get("type", "?"))
        blocks.append(Block(
            index=i, name=str(layer.get("name", f"layer_{i}")), type=layer_type,
            shape=tuple(layer.get("output_shape") or ()), params=int(layer.get("params") or 0),
            activation=layer.get("activation"), config=dict(layer.get("config") or {}),
            center=(cx, 0.0, 0.0), size=size, color=color_of(layer_type), label_at=(cx, 0.0, 0.0),
        ))
    spots = _place_labels([(b.center[0], b.size[1] / 2, b.size[2] / 2, b.type in SHAPE_PRESERVING, b.label)
                           for b in blocks])
    blocks = [replace(b, label_at=(b.center[0], y, z)) for b, (y, z) in zip(blocks, spots)]
    connectors = tuple(
        ((a.center[0] + a.size[0] / 2, 0.0, 0.0), (b.center[0] - b.size[0] / 2, 0.0, 0.0))
        for a, b in zip(blocks, blocks[1:])
    )
    legend: dict[str, str] = {}
    for b in blocks:
        legend.setdefault(b.type, b.color)
    total_params = int(architecture.get("total_params") or sum(b.params for b in blocks))
    return Scene(model_type=str(architecture.get("model_type", "model")), blocks=tuple(blocks),
                 connectors=connectors, legend=legend, total_params=total_params)
