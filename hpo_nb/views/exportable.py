"""Plotly figures that survive static HTML export (``jupyter nbconvert --to html``, nbviewer).

In a kernel Plotly's default renderer sends only ``application/vnd.plotly.v1+json``: JupyterLab
draws it (the jupyterlab-plotly extension), but nbconvert's HTML exporter has no renderer for
it, so every figure vanishes from the exported page. hpo-nb's figures add a ``text/html``
representation beside it: JupyterLab, Voila and VS Code still prefer the interactive Plotly
mimetype; nbconvert and nbviewer use the HTML. No global Plotly setting is changed.

plotly.js (about 4.6 MB) is inlined once per process, with the first figure shown; later
figures carry only their data and wait for ``window.Plotly``, so they draw wherever in the page
that first figure is. (Clearing that first figure's output before exporting leaves the others
without plotly.js: show any hpo-nb figure again, or restart the kernel and run all.)
"""

from __future__ import annotations

import re
import threading
from typing import Any

import plotly.graph_objects as go

_LOCK = threading.Lock()
_PLOTLYJS_SENT = False
_SCRIPT = re.compile(r"(<script(?![^>]*\bsrc=)[^>]*>)(.*?)(</script>)", re.S)


def static_html(fig: go.Figure, include_plotlyjs: bool) -> str:
    """The figure as an HTML fragment for exported notebooks.

    Args:
        fig: any Plotly figure.
        include_plotlyjs: inline plotly.js (True) or expect it on the page (False: the drawing
            waits, polling every 50 ms, until ``window.Plotly`` exists).

    Returns:
        str: a ``<div>`` and its ``<script>``s (no ``<html>``).
    """
    # a fixed height: "100%" of an output area that sizes to its content would be 0 px
    height = f"{int(fig.layout.height)}px" if fig.layout.height else "450px"
    html = fig.to_html(full_html=False, include_plotlyjs=include_plotlyjs, validate=False, default_height=height)
    if include_plotlyjs:
        return html
    matches = list(_SCRIPT.finditer(html))
    if not matches:
        return html
    last = matches[-1]  # the newPlot call (earlier scripts set window.PLOTLYENV)
    wrapped = f"(function hpoNbDraw() {{ if (!window.Plotly) {{ return setTimeout(hpoNbDraw, 50); }}{last.group(2)}}})();"
    return html[:last.start(2)] + wrapped + html[last.end(2):]


def _take_plotlyjs() -> bool:
    """True for the first caller in this process (it inlines plotly.js), False after."""
    global _PLOTLYJS_SENT
    with _LOCK:
        first, _PLOTLYJS_SENT = not _PLOTLYJS_SENT, True
        return first


class ExportableFigure(go.Figure):
    """A ``plotly.graph_objects.Figure`` whose notebook output also carries ``text/html``."""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, validate: bool = True,
                          **kwargs: Any) -> dict[str, Any]:
        bundle = dict(super()._repr_mimebundle_(include, exclude, validate, **kwargs) or {})
        if "text/html" not in bundle and "application/vnd.plotly.v1+json" in bundle:
            bundle["text/html"] = static_html(self, include_plotlyjs=_take_plotlyjs())
        return bundle

    def _ipython_display_(self) -> None:
        import plotly.io as pio
        from IPython.display import display

        if not (pio.renderers.render_on_display and pio.renderers.default):
            print(repr(self))
            return
        bundle = self._repr_mimebundle_()
        if bundle:
            display(bundle, raw=True)
        external = [name for name in pio.renderers.default.split("+")
                    if name in pio.renderers and not isinstance(pio.renderers[name], pio.base_renderers.MimetypeRenderer)]
        if external:  # "browser", "iframe", ...: Plotly's own way
            pio.show(self, renderer="+".join(external))


def exportable(fig: go.Figure) -> ExportableFigure:
    """The same figure (data, layout, frames), as an ``ExportableFigure``."""
    if isinstance(fig, ExportableFigure):
        return fig
    return ExportableFigure(fig)
