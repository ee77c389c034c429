"""How trials run: the ``Executor`` interface, the registry of named backends, and the
implementations that load with this package (local threads, in-memory for tests). RunPod's
executor is registered by name and imported only when chosen."""

from .base import Backend, Executor, TrialJob, backend, names, register
from .local import LocalExecutor
from .memory import InMemoryExecutor

__all__ = ["Backend", "Executor", "TrialJob", "LocalExecutor", "InMemoryExecutor", "backend", "names", "register"]
