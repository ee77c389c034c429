"""Widget controls that work while ``exp.run()`` blocks the kernel's main thread.

Ordinary widget messages wait until the running cell ends. ipykernel >= 7.4 asks each comm, on
its shell-channel thread, where to route an incoming message (``_reply_subshell_for``); there we
see a button click or a value change and handle it at once. The same message is handled again
when the main thread gets to it, as a no-op: it skips each message handled early (a FIFO: both
threads see the messages in order). On kernels without that hook nothing changes: messages are
handled the usual way, when the kernel is idle (e.g. after ``exp.start()``).
"""

from __future__ import annotations

import collections
import logging
from contextlib import AbstractContextManager
from typing import Any, Callable

import ipywidgets as w

log = logging.getLogger("hpo_nb")


def handle_early(widget: w.Widget, lock: AbstractContextManager[Any],
                 on_click: Callable[[], Any] | None = None) -> None:
    """Handle ``widget``'s messages on the kernel's shell-channel thread as they arrive.

    Args:
        widget: a control of a displayed view.
        lock: held while a new state is set (another thread may be changing the same widgets).
        on_click: for a button: what a click does (its other messages are handled as usual).
            None: state updates (a pick, a sort key) are set early.
    """
    comm = getattr(widget, "comm", None)
    route = getattr(comm, "_reply_subshell_for", None)
    if route is None:
        return
    handled: collections.deque[Any] = collections.deque()

    def route_and_handle(data: Any, default: Any) -> Any:
        try:
            if _handle(widget, data, lock, on_click):
                handled.append(data)
        except Exception:  # never break the kernel's message routing
            log.exception("dashboard: handling a widget message early failed")
        return route(data, default)

    def on_main_thread(msg: dict[str, Any]) -> None:
        if handled and handled[0] == msg["content"]["data"]:
            handled.popleft()  # done already; a replay could act on stale options
            return
        widget._handle_msg(msg)

    comm._reply_subshell_for = route_and_handle
    comm.on_msg(on_main_thread)


def _handle(widget: w.Widget, data: Any, lock: AbstractContextManager[Any],
            on_click: Callable[[], Any] | None) -> bool:
    """Handle a click or a state update now; True if handled."""
    if not isinstance(data, dict):
        return False
    if on_click is not None:
        if data.get("method") == "custom" and (data.get("content") or {}).get("event") == "click":
            on_click()
            return True
    elif data.get("method") == "update" and isinstance(data.get("state"), dict) and not data.get("buffer_paths"):
        with lock:
            widget.set_state(data["state"])  # what ipywidgets does with it, only sooner
        return True
    return False
