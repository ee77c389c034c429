"""An in-memory executor: runs a plain function instead of Keras training.

For testing what sits around training (the experiment's bookkeeping, storage, dashboards)
quickly and deterministically. Never a stand-in for ``train_trial`` in product code.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from ..spec import TrialOutcome
from .base import Executor, TrialJob


class InMemoryExecutor(Executor):
    name = "memory"

    def __init__(self, run: Callable[[TrialJob], TrialOutcome], concurrency: int = 1) -> None:
        self._run = run
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="hpo-nb-memory")

    def submit(self, job: TrialJob) -> "Future[TrialOutcome]":
        return self._pool.submit(self._run, job)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
