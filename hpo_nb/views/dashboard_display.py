"""How the dashboard sits in a notebook's output: one display holding the widget view plus an
HTML/text summary, written again once from a cell's thread after the search is over.

Widgets render only in a live kernel's page; a saved or converted notebook shows the summary
instead, so the summary must end up final. ``display()`` is not safe from the renderer thread,
so the refresh waits for the end of a cell (IPython ``post_execute``).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Sequence

from ..progress import Snapshot
from . import dashboard_html as H, ipython, viewmodel as vm

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def summary_bundle(model_id: str, snap: Snapshot | None, title: str, test_line: str | None,
                   params: Sequence[str] | None, majority_rate: float | None, metric: str) -> dict[str, Any]:
    """The widget view (``model_id``: the dashboard's root) plus HTML and text summaries of
    ``snap``; ``test_line``: the final test result, once there is one."""
    data: dict[str, Any] = {WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": model_id}}
    if snap is not None:
        data["text/html"] = H.summary_html(snap, title, test_line, params, majority_rate, metric)
        data["text/plain"] = vm.summary_text(snap, title, test_line, majority_rate, metric)
    else:
        data["text/plain"] = f"hpo-nb dashboard · {title}"
    return data


class CellDisplay:
    """A display of ``bundle()`` that is written once more after the cell in which ``final()``
    became true, and then left alone. Call ``show`` from the cell's thread."""

    def __init__(self, bundle: Callable[[], dict[str, Any]], final: Callable[[], bool]) -> None:
        self._bundle = bundle
        self._final = final
        self._handle: Any = None
        self._shown_in: int | None = None
        self._finalized = False

    def show(self) -> None:
        """Display it (another view of the same display after the first)."""
        from IPython.display import display

        if self._handle is None:
            self._handle = display(self._bundle(), raw=True, display_id=True)
        else:
            display(self._bundle(), raw=True, display_id=self._handle.display_id)
        self._shown_in = _execution_count()
        if self._final():
            self._finalized = True  # the summary shown is final already
        self._watch_cells()

    def shown_by_this_cell(self) -> bool:
        """Whether the running cell displayed it already (``exp.dashboard()`` as a cell's last line)."""
        return self._shown_in is not None and self._shown_in == _execution_count()

    def _watch_cells(self) -> None:
        """After each cell, once it is final, refresh the display (cell thread)."""
        ip = ipython()
        if ip is None or self._finalized:
            return
        with contextlib.suppress(ValueError):
            ip.events.unregister("post_execute", self._after_cell)
        ip.events.register("post_execute", self._after_cell)

    def _after_cell(self) -> None:
        if self._final() and self._handle is not None and not self._finalized:
            self._finalized = True
            self._handle.update(self._bundle(), raw=True)
        if self._finalized:
            ip = ipython()
            if ip is not None:
                with contextlib.suppress(ValueError):
                    ip.events.unregister("post_execute", self._after_cell)


def _execution_count() -> int | None:
    ip = ipython()
    return getattr(ip, "execution_count", None) if ip is not None else None
