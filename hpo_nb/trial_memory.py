"""Memory hygiene between trials, without a full collection over TensorFlow every time.

Each finished trial leaves cyclic garbage (a Keras model is a web of layers, variables and
graphs), so a full ``gc.collect()`` after each trial keeps memory flat across a long search.
But a full collection also walks every long-lived object in the process, ~380,000 of them
once TensorFlow is imported: 0.3-0.5 s per trial on 2 cores, a third of hpo-nb's per-trial
overhead, and Python's own automatic full collections cost the same whenever they strike
(one landing in the first trial delayed its first progress by 0.44 s; benchmarks/RESULTS.md).

So while a search runs, the objects that existed when it started are frozen (``gc.freeze()``:
still freed by reference counting, just not walked by the cycle collector), and so are those
that outlived its first trial (caches TensorFlow and Keras fill on first use); collections
then walk only what later trials created. The freeze is undone when the last search in the
process ends, so none of the user's objects stays out of the collector's reach after
``run()`` returns. The price: cycles of garbage among the frozen objects (the user's pending
garbage at the start, and with concurrent trials the graphs of trials running when the first
one ended) are collected only after the search.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_searches = 0  # searches running in this process (concurrent experiments)
_frozen_by_us = False
_first_trial_pending = False  # freeze once more after the first trial's collection


def begin_search() -> None:
    """A search starts in this process: freeze what exists now (O(1): no collection).

    If someone else already froze objects (``gc.get_freeze_count() > 0``), their freeze is
    left alone and nothing is frozen here, so ``end_search`` never unfreezes what it did not
    freeze.
    """
    global _searches, _frozen_by_us, _first_trial_pending
    with _lock:
        _searches += 1
        if _searches == 1 and not _frozen_by_us and gc.get_freeze_count() == 0:
            gc.freeze()
            _frozen_by_us = _first_trial_pending = True


def end_search() -> None:
    """A search ended; the last one to end unfreezes what was frozen."""
    global _searches, _frozen_by_us, _first_trial_pending
    with _lock:
        _searches = max(0, _searches - 1)
        if _searches == 0 and _frozen_by_us:
            gc.unfreeze()
            _frozen_by_us = _first_trial_pending = False


@contextmanager
def search() -> Iterator[None]:
    """``begin_search()`` ... ``end_search()`` around a block, even when it raises."""
    begin_search()
    try:
        yield
    finally:
        end_search()


def collect_after_trial() -> None:
    """Collect a finished trial's garbage; after a search's first trial, freeze what survives.

    Outside a search (a bare ``train_trial`` call) this is a plain full collection.
    """
    global _first_trial_pending
    gc.collect()
    with _lock:
        if _first_trial_pending:
            gc.freeze()
            _first_trial_pending = False


def frozen() -> bool:
    """Whether this module holds a freeze now (for tests and diagnostics)."""
    return _frozen_by_us
