"""Plotly drawings of per-trial diagnostics (the data comes from ``hpo_nb.analysis.diagnostics``):
learning curves, confusion matrix, gradient flow, weight distributions, activation maps."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from ..analysis.diagnostics import (ActivationMaps, ConfusionInfo, ConfusionView, GradientFlow, WeightHistograms,
                                    confusion_view)
from .ticklabels import label_px, short_labels, tick_step

_COLORS = qualitative.Plotly
MAX_TOKEN_LABELS = 40  # text activation maps: at most this many words under a sample's row


def learning_curves(frame: Any, title: str = "Learning curves") -> go.Figure:
    """Loss and accuracy per epoch, train (solid) and validation (dashed), one colour per trial,
    traces (and legend entries) in the frame's trial order.

    Args:
        frame: ``analysis.diagnostics.learning_curves_frame`` (trial, epoch, metric, split, value).
        title: the figure's title.

    Returns:
        plotly.graph_objects.Figure: two panels side by side (loss, accuracy).
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"), horizontal_spacing=0.1)
    for i, trial in enumerate(pd.unique(frame["trial"]) if len(frame) else []):  # the frame's order: as asked
        color = _COLORS[i % len(_COLORS)]
        for col, metric in enumerate(("loss", "accuracy"), start=1):
            for split, dash in (("train", "solid"), ("validation", "dash")):
                part = frame[(frame.trial == trial) & (frame.metric == metric) & (frame.split == split)]
                if part.empty:
                    continue
                fig.add_trace(go.Scatter(
                    x=part.epoch, y=part.value, mode="lines+markers", line={"color": color, "dash": dash},
                    name=f"trial {trial} · {split}", legendgroup=f"trial {trial}", showlegend=col == 1,
                    hovertemplate=f"trial {trial} {split} {metric}<br>epoch %{{x}}: %{{y:.4f}}<extra></extra>",
                ), row=1, col=col)
    fig.update_xaxes(title_text="epoch", dtick=1 if len(frame) and frame.epoch.max() <= 20 else None)
    fig.update_layout(title=title, height=380, legend={"orientation": "v"})
    return fig


MAX_CONFUSION_HEIGHT = 1000  # px: a many-class matrix gets smaller rows, not a taller page
MIN_MATRIX_PX = 300  # px: the matrix's side never shrinks below this, however long the labels
MAX_MATRIX_PX = 660  # px: 22 px a row up to 30 classes, then thinner rows (and every k-th label)
CELL_PX = 22
BARS_PX = 240  # px: the per-class panel's width
_METRICS = (  # per-class bars: name, colour, why it can be undefined (scikit-learn's zero_division cases)
    ("precision", "#1976d2", "no validation sample was predicted as {}"),
    ("recall", "#ef6c00", "no validation sample of {} exists"),
    ("f1", "#2e7d32", "{} has no validation sample and none was predicted as it"),
)


def confusion_matrix(info: ConfusionInfo | ConfusionView, title: str = "Validation confusion matrix") -> go.Figure:
    """The confusion matrix (colour: share of the true class; text: counts) beside per-class
    precision, recall and F1. Above ``analysis.confusion.MAX_CLASSES`` classes only the most
    confused are drawn (a ``ConfusionInfo`` is cut down with ``confusion_view``; pass a
    ``ConfusionView`` to choose), with a subtitle saying so; the height is capped at
    ``MAX_CONFUSION_HEIGHT`` px however many classes are shown.

    Long class names are shortened with an ellipsis on the axes (``views.ticklabels``; the hover
    keeps the full name), the margins and the gap before the per-class panel are reserved from the
    longest shown label, the matrix keeps at least ``MIN_MATRIX_PX`` px a side, and when its rows
    are too thin for every label (many classes) every k-th row is labelled, on both panels.

    An undefined score (0/0, e.g. the precision of a class nothing was predicted as) has no bar:
    an "×" at 0 marks it, its hover says why ("undefined: no validation sample was predicted as
    c3"), so it never reads as a score of 0.

    Args:
        info: ``analysis.diagnostics.confusion_info`` or ``confusion_view``.
        title: the figure's title.

    Returns:
        plotly.graph_objects.Figure: heatmap (trace 0; rows true, columns predicted, the shown
        labels as categories), then per metric (precision, recall, f1) a bar trace (NaN where
        undefined) and a marker trace of its undefined classes (empty when none). Width and
        height are set, px.
    """
    view = info if isinstance(info, ConfusionView) else confusion_view(info)
    names = view.class_names
    labels = short_labels(names)
    n = len(names)
    lines = textwrap.wrap(view.note, 110)
    size = _confusion_size(labels, len(lines))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("true x predicted", "per class"))
    pairs = np.array([[[t, p] for p in names] for t in names], dtype=object).reshape(n, n, 2)
    fig.add_trace(go.Heatmap(
        z=view.share, x=labels, y=labels, colorscale="Blues", zmin=0, zmax=1, text=view.matrix, customdata=pairs,
        texttemplate="%{text}" if n <= 20 else None,
        colorbar={"title": "share", "x": size["colorbar_x"], "xanchor": "left", "thickness": 14},
        hovertemplate="true %{customdata[0]}, predicted %{customdata[1]}: %{text} (%{z:.1%} of the class)"
                      "<extra></extra>",
    ), row=1, col=1)
    rows = np.arange(n)
    width = 0.8 / len(_METRICS)  # each class's row holds one slot per metric, top to bottom
    correct, support, predicted = view.column("correct"), view.column("support"), view.column("predicted")
    counts = {"precision": [f"{c} of {p} predicted as it" for c, p in zip(correct, predicted)],
              "recall": [f"{c} of {s} samples" for c, s in zip(correct, support)],
              "f1": [f"{c} right, {s} samples, {p} predicted" for c, s, p in zip(correct, support, predicted)]}
    for j, (metric, color, why) in enumerate(_METRICS):
        values = view.column(metric)
        offset = -0.4 + j * width
        fig.add_trace(go.Bar(x=values, y=rows, orientation="h", name=metric, marker_color=color, offset=offset,
                             width=width, legendgroup=metric, customdata=np.array([names, counts[metric]], dtype=object).T,
                             hovertemplate=f"%{{customdata[0]}} {metric}: %{{x:.3f}} (%{{customdata[1]}})"
                                           "<extra></extra>"),
                      row=1, col=2)
        undefined = np.flatnonzero(~np.isfinite(values))
        fig.add_trace(go.Scatter(
            x=np.zeros(len(undefined)), y=rows[undefined] + offset + width / 2, mode="markers", legendgroup=metric,
            name=f"{metric} undefined (0/0)", showlegend=bool(len(undefined)),
            marker={"symbol": "x-thin-open", "size": 9, "color": color, "line": {"width": 2, "color": color}},
            hovertext=[f"{names[i]} {metric}: undefined: {why.format(names[i])}" for i in undefined],
            hovertemplate="%{hovertext}<extra></extra>", cliponaxis=False), row=1, col=2)
    step = size["step"]
    shown = labels[::step]
    fig.update_yaxes(autorange="reversed", title_text="true class", type="category", tickmode="array",
                     tickvals=shown, ticktext=shown, row=1, col=1)
    fig.update_xaxes(title_text="predicted class", type="category", tickmode="array", tickvals=shown,
                     ticktext=shown, tickangle=size["tickangle"], domain=size["matrix_domain"], row=1, col=1)
    fig.update_yaxes(tickmode="array", tickvals=rows[::step].tolist(), ticktext=shown, range=[n - 0.5, -0.5],
                     ticklabelstandoff=8, row=1, col=2)  # clear of the "×" at 0
    fig.update_xaxes(range=[0, 1.02], domain=size["bars_domain"], row=1, col=2)
    for note, domain in zip(fig.layout.annotations, (size["matrix_domain"], size["bars_domain"])):
        note.x = (domain[0] + domain[1]) / 2  # the subplot titles follow their panels
    legend = [t.name for t in fig.data[1:] if t.showlegend is not False]
    fig.update_layout(
        title={"text": title, "y": 1 - 14 / size["height"], "yref": "container", "yanchor": "top",
               **({"subtitle": {"text": "<br>".join(lines), "font": {"size": 12}}} if lines else {})},
        margin={"t": size["top"], "b": size["bottom"], "l": size["left"], "r": 60 + label_px(legend)},
        height=size["height"], width=size["left"] + size["paper"] + 60 + label_px(legend), barmode="overlay")
    return fig


def _confusion_size(labels: list[str], note_lines: int) -> dict[str, Any]:
    """Px layout of ``confusion_matrix``: margins from the longest label, the matrix's side
    (``MIN_MATRIX_PX``..``MAX_MATRIX_PX``, the height capped at ``MAX_CONFUSION_HEIGHT``), the
    label step, and the panels' domains (fractions of the plot area's width)."""
    n, text_px = len(labels), label_px(labels)
    rotated = text_px > CELL_PX
    top = 80 + 17 * note_lines
    bottom = round((text_px if rotated else 16) + 60)  # tick labels, then the axis title
    side = max(MIN_MATRIX_PX, min(CELL_PX * n, MAX_MATRIX_PX, MAX_CONFUSION_HEIGHT - top - bottom))
    colorbar_at, bars_at = side + 12, side + 80 + text_px + 16  # colorbar (~60 px), then the bars' labels
    paper = bars_at + BARS_PX
    return {"top": top, "bottom": bottom, "left": round(text_px + 60), "height": round(top + side + bottom),
            "paper": round(paper), "side": side, "step": tick_step(n, side / max(n, 1)),
            "tickangle": -90 if rotated else 0, "matrix_domain": [0.0, side / paper],
            "colorbar_x": colorbar_at / paper, "bars_domain": [bars_at / paper, 1.0]}


def gradient_flow(flow: GradientFlow, title: str = "Gradient flow") -> go.Figure:
    """Gradient norm per layer (rows, input at the top) and epoch (columns), log colour scale;
    buttons switch between the mean and the max over each epoch's batches.

    The colour range spans the finite non-zero norms only: a zero norm (a layer that got no
    gradient) is its own grey cell ("0" in the hover), so it does not squeeze the scale.

    Args:
        flow: ``analysis.diagnostics.gradient_flow`` (or ``live_gradient_flow``).
        title: the figure's title.

    Returns:
        plotly.graph_objects.Figure: the heatmap (trace 0) and the zero cells (trace 1); cells
        with no finite norm are blank, and the non-finite gradients are named in a red subtitle
        (``GradientFlow.non_finite_note``). Every layer keeps its row, even when all are blank.
    """
    n_layers, epochs = len(flow.layers), list(flow.epochs)
    rows = np.arange(n_layers)

    def z(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[float]]:
        """log10 of the positive finite norms (NaN elsewhere), the zero cells, the colour range."""
        with np.errstate(invalid="ignore", divide="ignore"):
            positive = np.isfinite(values) & (values > 0)
            logs = np.where(positive, np.log10(np.where(positive, values, 1.0)), np.nan)
            zeros = np.where(values == 0, 0.0, np.nan)
        finite = logs[np.isfinite(logs)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        return logs, zeros, [lo, hi if hi > lo else lo + 1e-6]

    names = np.array(flow.layers, dtype=object).reshape(-1, 1).repeat(len(epochs), axis=1)
    custom = np.stack([flow.mean, flow.max, names], axis=-1) if flow.mean.size else None
    hover = "%{customdata[2]}, epoch %{x}<br>mean %{customdata[0]:.3g}, max %{customdata[1]:.3g}<extra></extra>"
    mean_z, mean_zero, mean_range = z(flow.mean)
    max_z, max_zero, max_range = z(flow.max)
    fig = go.Figure([
        go.Heatmap(z=mean_z, x=epochs, y=rows, customdata=custom, colorscale="Viridis", zmin=mean_range[0],
                   zmax=mean_range[1], colorbar={"title": "log10 ‖g‖"}, hovertemplate=hover, hoverongaps=False,
                   name="norm"),
        go.Heatmap(z=mean_zero, x=epochs, y=rows, customdata=custom, colorscale=[[0, "#9e9e9e"], [1, "#9e9e9e"]],
                   zmin=0, zmax=1, showscale=False, hovertemplate=hover, hoverongaps=False, name="zero norm"),
    ])
    lines = textwrap.wrap(flow.non_finite_note(), 100)  # above the plot, clear of the axis titles and buttons
    heading = f"{title}" + (f" ({flow.method})" if flow.method and flow.method not in title else "")
    height = max(300, 34 * n_layers + 160) + 17 * len(lines)
    fig.update_layout(
        title={"text": heading, "y": 1 - 14 / height, "yref": "container", "yanchor": "top",
               **({"subtitle": {"text": "<br>".join(lines), "font": {"color": "#c62828", "size": 12}}}
                  if lines else {})},
        margin={"t": 80 + 17 * len(lines)}, height=height,
        xaxis={"title": "epoch", "tickmode": "array", "tickvals": epochs, "ticktext": [str(e) for e in epochs],
               "range": [epochs[0] - 0.5, epochs[-1] + 0.5] if epochs else None},
        yaxis={"title": "layer", "tickmode": "array", "tickvals": rows.tolist(), "ticktext": list(flow.layers),
               "range": [n_layers - 0.5, -0.5]},  # fixed: every layer keeps its row, input at the top
        updatemenus=[{"type": "buttons", "direction": "right", "x": 1.0, "y": 1.02, "yanchor": "bottom",
                      "xanchor": "right", "buttons": [
                          {"label": label, "method": "restyle",
                           "args": [{"z": [logs, zeros], "zmin": [rng[0], 0], "zmax": [rng[1], 1]}]}
                          for label, logs, zeros, rng in (("mean", mean_z, mean_zero, mean_range),
                                                          ("max", max_z, max_zero, max_range))]}],
    )
    return fig


def weights(hists: WeightHistograms, title: str = "Weight and bias distributions") -> go.Figure:
    """One panel per layer and kind (weights, bias); a slider picks the epoch (0: initialization).
    The bins are fixed at the first epoch; a panel whose values outgrew them says how many lie
    beyond the range in its title, for the epoch shown.

    Args:
        hists: ``analysis.diagnostics.weight_histograms``.
        title: the figure's title.

    Returns:
        plotly.graph_objects.Figure: bar histograms with a slider over the stored epochs.
    """
    panels = hists.histograms
    cols = 2
    rows = max(1, -(-len(panels) // cols))
    last = len(hists.epochs) - 1

    def titles(k: int) -> list[str]:  # each panel's title, with what epoch k's bins leave out
        return [f"{h.layer} · {h.label}" + (f"<br><span style='color:#c62828;font-size:11px'>{note}</span>"
                                            if k >= 0 and (note := h.outside_note(k)) else "") for h in panels]

    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles(last) if panels else [],
                        vertical_spacing=min(0.14, 0.6 / rows))
    centers = [(h.edges[:-1] + h.edges[1:]) / 2 for h in panels]
    for i, h in enumerate(panels):
        fig.add_trace(go.Bar(x=centers[i], y=h.counts[-1], marker_color=_COLORS[0 if h.kind == "weights" else 1],
                             showlegend=False, name=f"{h.layer} {h.label}",
                             hovertemplate=f"{h.layer} {h.label}<br>%{{x:.3g}}: %{{y}}<extra></extra>"),
                      row=i // cols + 1, col=i % cols + 1)
    base = [a.to_plotly_json() for a in fig.layout.annotations]

    def notes(k: int) -> list[dict[str, Any]]:
        return [{**a, "text": text} for a, text in zip(base, titles(k))]

    fig.frames = [go.Frame(name=str(e), data=[go.Bar(y=h.counts[k]) for h in panels],
                           layout={"annotations": notes(k)}, traces=list(range(len(panels))))
                  for k, e in enumerate(hists.epochs)]
    steps = [{"label": str(e), "method": "animate",
              "args": [[str(e)], {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
                                  "transition": {"duration": 0}}]} for e in hists.epochs]
    fig.update_layout(title=title, height=max(320, 220 * rows + 120), bargap=0.05,
                      sliders=[{"active": last, "currentvalue": {"prefix": "epoch "}, "steps": steps, "pad": {"t": 40}}])
    return fig


def activations(maps: ActivationMaps, title: str = "Activations") -> go.Figure:
    """Activation maps of the fixed validation samples; a menu picks the layer.

    Images: one row per sample, the input then the layer's most active channels (up to 8).
    Text: one row per sample, units x tokens of the LSTM's output
    (padding left out), each row with its own words under it (at most ``MAX_TOKEN_LABELS``: a
    longer text labels every k-th token) and every word and the unit's index in the hover.
    Each row is named to its left, horizontally ("sample 3" over "class ham", a long class name
    shortened; the hover has it whole), so names never run into the next row's.

    Args:
        maps: ``analysis.diagnostics.activation_maps``.
        title: the figure's title.

    Returns:
        plotly.graph_objects.Figure: heatmaps, one trace set per layer (menu-switched).
    """
    s = len(maps.samples)
    text = maps.kind == "text"
    shown = 1 if text else 8
    cols = shown + (0 if text else 1)
    # text: each sample's own x axis carries its words (tilted), so the gap below a row must hold them
    row_px, gap_px = (200, 110) if text else (170, 0)
    height = (row_px + gap_px) * s + 140
    spacing = min(gap_px / (height - 180), 0.9 / (s - 1)) if text and s > 1 else 0.06  # of the plot area
    # (the figure less plotly's default 100 px top and 80 px bottom margins)
    fig = make_subplots(rows=max(s, 1), cols=cols, horizontal_spacing=0.01, vertical_spacing=spacing)
    row_labels = _sample_labels(fig, maps)
    visibility: list[list[bool]] = []
    for li, layer in enumerate(maps.layers):
        arr = maps.maps[layer]
        start = len(fig.data)
        for r in range(s):
            if maps.kind == "image":
                img = maps.inputs[r].astype(float)
                fig.add_trace(go.Heatmap(z=img.mean(axis=-1) if img.ndim == 3 else img, colorscale="gray",
                                         showscale=False, visible=li == 0, hoverinfo="skip"), row=r + 1, col=1)
                for c in range(min(shown, arr.shape[-1])):
                    channel = maps.channels[layer][c] if c < len(maps.channels[layer]) else c
                    fig.add_trace(go.Heatmap(z=arr[r, ..., c], colorscale="Viridis", showscale=False,
                                             visible=li == 0, name=f"{layer} ch {channel}",
                                             hovertemplate=f"{layer} channel {channel}<br>%{{z:.3f}}<extra></extra>"),
                                  row=r + 1, col=c + 2)
            else:
                tokens = np.asarray(maps.inputs[r]).reshape(-1)
                length = int(np.count_nonzero(tokens)) or len(tokens)
                words = maps.token_labels(r)[:length]
                kept = maps.channels.get(layer) or []
                units = [kept[c] if c < len(kept) else c for c in range(arr.shape[-1])]
                # per cell: the unit's index in the layer (kept units only) and the token's word
                cells = [[[unit, word] for word in words] for unit in units]
                fig.add_trace(go.Heatmap(
                    z=arr[r, :length].T, colorscale="RdBu", zmid=0, visible=li == 0, showscale=r == 0,
                    name=layer, customdata=cells,
                    hovertemplate=f"{layer}: token %{{x}} “%{{customdata[1]}}”, unit %{{customdata[0]}}: "
                                  "%{z:.3f}<extra></extra>"), row=r + 1, col=1)
                step = -(-length // MAX_TOKEN_LABELS)  # long texts: every step-th word (all are in the hover)
                fig.update_xaxes(tickmode="array", tickvals=list(range(0, length, step)), ticktext=words[::step],
                                 tickangle=-45, row=r + 1, col=1)
        visibility.append([start <= i < len(fig.data) for i in range(len(fig.data))])
    n = len(fig.data)
    buttons = [{"label": layer, "method": "update",
                "args": [{"visible": vis + [False] * (n - len(vis))}, {"title": f"{title}: {layer}"}]}
               for layer, vis in zip(maps.layers, visibility)]
    fig.update_xaxes(showticklabels=maps.kind == "text")
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_layout(title=f"{title}: {maps.layers[0]}" if maps.layers else title, height=height,
                      margin={"l": round(label_px(row_labels) + 24)},
                      updatemenus=[{"buttons": buttons, "x": 1.0, "y": 1.12, "xanchor": "right"}] if buttons else [])
    return fig


def _sample_labels(fig: go.Figure, maps: ActivationMaps) -> list[str]:
    """Name each sample's row with a horizontal two-line note left of it (the full class name in
    its hover); returns the lines drawn (for the left margin)."""
    classes = short_labels([str(lab) for lab in maps.labels], 16)
    lines: list[str] = []
    for r, (sample, label, full) in enumerate(zip(maps.samples, classes, maps.labels)):
        domain = fig.get_subplot(r + 1, 1).yaxis.domain
        lines += [f"sample {sample}", f"class {label}"]
        fig.add_annotation(text=f"sample {sample}<br>class {label}", hovertext=f"sample {sample} (class {full})",
                           xref="paper", yref="paper", x=0, y=(domain[0] + domain[1]) / 2, xanchor="right",
                           yanchor="middle", xshift=-8, align="right", showarrow=False, textangle=0)
    return lines
