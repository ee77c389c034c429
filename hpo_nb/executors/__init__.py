"""How trials run: the ``Executor`` interface and its implementations."""

from .base import Executor, TrialJob
from .local import LocalExecutor
from .memory import InMemoryExecutor

__all__ = ["Executor", "TrialJob", "LocalExecutor", "InMemoryExecutor"]
