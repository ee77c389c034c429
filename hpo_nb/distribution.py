"""Where a trial trains: the default device, one pinned device, or MirroredStrategy over several."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

_STRATEGIES: dict[tuple[str, ...], Any] = {}
_LOCK = threading.Lock()


def strategy_for(devices: tuple[str, ...] | None) -> Any:
    """The tf.distribute strategy for a device group: MirroredStrategy for 2+ devices
    (cached per group: building one is slow), else the default strategy."""
    import tensorflow as tf

    if not devices or len(devices) < 2:
        return tf.distribute.get_strategy()
    with _LOCK:
        if devices not in _STRATEGIES:
            _STRATEGIES[devices] = tf.distribute.MirroredStrategy(list(devices))
        return _STRATEGIES[devices]


@contextlib.contextmanager
def placement(devices: tuple[str, ...] | None) -> Iterator[Any]:
    """Enter the scope a trial builds, compiles and fits in; yields the strategy."""
    import tensorflow as tf

    strategy = strategy_for(devices)
    if devices and len(devices) == 1:
        with tf.device(devices[0]), strategy.scope():
            yield strategy
    else:
        with strategy.scope():
            yield strategy
