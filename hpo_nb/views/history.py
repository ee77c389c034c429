"""Draw the optimization history (data: ``analysis.history.history_frame``) with Plotly."""

from __future__ import annotations

from typing import Any

STATE_COLORS = {"complete": "#1f77b4", "pruned": "#ff7f0e", "stopped": "#7f7f7f", "failed": "#d62728",
                "running": "#17becf", "waiting": "#bcbd22"}


def history_figure(frame: Any, objective: str = "score", title: str | None = None) -> Any:
    """Objective per trial (one colour per state) and the best-so-far line."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for state, color in STATE_COLORS.items():
        rows = frame[frame["state"] == state]
        if rows.empty:
            continue
        valued = rows[rows["value"].notna()]
        missing = len(rows) - len(valued)
        name = f"{state} ({len(rows)})" + (f", {missing} without a value" if missing else "")
        fig.add_trace(go.Scatter(
            x=valued["number"], y=valued["value"], mode="markers", name=name,
            marker=dict(color=color, size=9, symbol="circle" if state == "complete" else "x"),
            hovertemplate=f"trial %{{x}} · {state}<br>{objective} %{{y:.4f}}<extra></extra>",
        ))
    if frame["best"].notna().any():
        fig.add_trace(go.Scatter(x=frame["number"], y=frame["best"], mode="lines", name="best so far",
                                 line=dict(color="#2ca02c", width=2, shape="hv"),
                                 hovertemplate="after trial %{x}: best %{y:.4f}<extra></extra>"))
    fig.update_layout(title=title or f"Optimization history · {objective}", xaxis_title="trial",
                      yaxis_title=objective, legend=dict(orientation="h", y=-0.2), height=420)
    return fig
