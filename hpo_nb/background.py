"""A function run in a daemon thread, whose end is known from an Event it sets itself.

Why not ``Thread.is_alive()`` / ``Thread.join(timeout)``: on Python 3.11 a KeyboardInterrupt
that lands inside ``join(timeout)`` can leave ``is_alive()`` False while the thread still runs
(python/cpython#90882). ``Experiment.wait()`` trusted it, so Ctrl+C returned before the running
trials were recorded and left them RUNNING. An Event the thread sets as its very last step has
no such state to lose: an interrupted ``Event.wait`` leaves the flag as it was.
"""

from __future__ import annotations

import threading
import time
from typing import Callable


class Background:
    """Runs ``target()`` once in a daemon thread.

    Args:
        target: the work; what it raises is kept in ``error`` (never raised in the thread).
        name: the thread's name.

    Attributes:
        error: what ``target`` raised, or None.
    """

    def __init__(self, target: Callable[[], None], name: str) -> None:
        self._target = target
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.error: BaseException | None = None

    def start(self) -> "Background":
        """Start the thread.

        Returns:
            Background: this object.
        """
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            self._target()
        except BaseException as exc:  # surfaced by whoever waits
            self.error = exc
        finally:
            self._done.set()  # the last thing this thread does

    @property
    def done(self) -> bool:
        """True once ``target`` has returned or raised (and everything after it ran)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until ``target`` has ended, or ``timeout`` seconds pass.

        Args:
            timeout: seconds, >= 0; None: until it ends.

        Returns:
            bool: True if it has ended.

        Raises:
            KeyboardInterrupt: Ctrl+C while waiting; the thread goes on, and a later ``wait``
                still tells the truth.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._done.wait(0.2 if left is None else min(0.2, left))  # short slices: Ctrl+C lands promptly
        return True
