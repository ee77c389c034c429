"""Draw an ``ImportanceTable`` as a Plotly heatmap (the data comes from ``analysis.importance``).

Every (parameter, target) cell gets an annotation (the value, or "–" where the column has
nothing honest to show); empty columns say why in their header and hover text.
"""

from __future__ import annotations

import math
from typing import Any

from ..analysis.importance import ImportanceTable

COLORSCALE = "Blues"
EMPTY_CELL = "#e9e9e9"


def heatmap(table: ImportanceTable, title: str | None = None) -> Any:
    """A ``plotly.graph_objects.Figure``: rows = parameters, columns = targets."""
    import plotly.graph_objects as go
    from plotly.colors import sample_colorscale

    imp, raw = table.importance, table.raw
    params, targets = list(imp.index), list(imp.columns)
    xlabels = [_column_label(table, t) for t in targets]
    finite = [v for v in imp.to_numpy().ravel() if not math.isnan(v)]
    zmax = max(finite) if finite else 1.0
    z = [[None if math.isnan(v) else float(v) for v in imp.loc[p]] for p in params]
    hover = [[_hover(table, p, t) for t in targets] for p in params]
    annotations = []
    for i, p in enumerate(params):
        for j, t in enumerate(targets):
            v = z[i][j]
            if v is None:
                text, color = "–", "#555555"
            else:
                text = f"{v:.2f}"
                color = _ink(sample_colorscale(COLORSCALE, [v / zmax if zmax > 0 else 0.0])[0])
            annotations.append(dict(x=xlabels[j], y=p, text=text, showarrow=False, font=dict(color=color, size=12)))
    n = max(table.n_trials.values(), default=0)
    fig = go.Figure(go.Heatmap(
        z=z, x=xlabels, y=params, text=hover, hovertemplate="%{text}<extra></extra>", hoverongaps=True,
        colorscale=COLORSCALE, zmin=0.0, zmax=zmax, xgap=2, ygap=2,
        colorbar=dict(title=dict(text="share of<br>column", side="top")),
    ))
    fig.update_layout(
        title=dict(text=title or f"Hyperparameter importance · {table.evaluator} · up to {n} complete trials"
                   "<br><sup>each column sums to 1; – : not enough signal (hover for why)"
                   + (". PED-ANOVA: what sets the best 10 % apart, not what ruins the worst"
                      if table.evaluator == "PED-ANOVA" else "") + "</sup>"),
        annotations=annotations, plot_bgcolor=EMPTY_CELL, paper_bgcolor="white",
        xaxis=dict(side="bottom", tickangle=0, showgrid=False, type="category"),
        yaxis=dict(autorange="reversed", showgrid=False, type="category"),
        # a fixed width keeps 9 target columns readable; a container's width squeezed them to
        # overlapping numbers in a 450 px notebook (tried: a narrow notebook cuts the figure off at
        # the right instead, and the app puts it in its own scroll box)
        height=max(320, 120 + 34 * len(params)), width=max(640, 160 + 100 * len(targets)),
        margin=dict(l=130, r=40, t=90, b=80),
    )
    return fig


def _column_label(table: ImportanceTable, target: str) -> str:
    label = table.labels.get(target, target)
    short = table.short_note(target)
    return f"{label}<br><i>({short})</i>" if short else f"{label}<br>n={table.n_trials.get(target, 0)}"


def _hover(table: ImportanceTable, param: str, target: str) -> str:
    head = f"<b>{param}</b> → {table.labels.get(target, target)}<br>"
    note = table.notes.get(target)
    if note:
        return head + note
    v, r = table.importance.at[param, target], table.raw.at[param, target]
    if math.isnan(v):
        return head + "not in the complete trials"
    return head + (f"importance {v:.3f} (share of column)<br>raw {table.evaluator}: {r:.4g}"
                   f"<br>{table.n_trials.get(target, 0)} complete trials")


def _ink(rgb: str) -> str:
    """Black or white text, whichever reads better on ``rgb`` ("rgb(r, g, b)" or "#rrggbb")."""
    if rgb.startswith("#"):
        r, g, b = (int(rgb[i:i + 2], 16) for i in (1, 3, 5))
    else:
        r, g, b = [float(c) for c in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")][:3]
    luminance = (0.299 * r + 0.587 * g + 0.114 * b) / 255
    return "#000000" if luminance > 0.55 else "#ffffff"
