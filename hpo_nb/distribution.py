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
            ops = None
            if all(d.lower().startswith("/cpu") for d in devices):
                # Logical CPU devices: the default all-reduce uses collective ops whose group keys
                # collide between MirroredStrategies training at once in one process (two device
                # groups abort with "joining a group that is already full"); reducing on one device
                # needs no collectives.
                ops = tf.distribute.ReductionToOneDevice()
            _STRATEGIES[devices] = tf.distribute.MirroredStrategy(list(devices), cross_device_ops=ops)
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
