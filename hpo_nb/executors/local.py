"""Trials in threads of this process, optionally each on its own group of devices."""

from __future__ import annotations

import dataclasses
import queue
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Sequence

from ..spec import TrialOutcome
from .base import Executor, TrialJob


class LocalExecutor(Executor):
    """A thread pool running ``train_trial``. With ``device_groups``, each running trial
    takes a free group (disjoint devices) and gives it back when it ends."""

    name = "local"

    def __init__(self, concurrency: int, device_groups: Sequence[tuple[str, ...]] | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="hpo-nb-trial")
        self._groups: queue.Queue[tuple[str, ...] | None] = queue.Queue()
        for group in device_groups or [None] * concurrency:
            self._groups.put(group)

    def submit(self, job: TrialJob) -> "Future[TrialOutcome]":
        return self._pool.submit(self._run, job)

    def _run(self, job: TrialJob) -> TrialOutcome:
        from ..training import train_trial

        group = self._groups.get()
        try:
            spec = job.spec if group is None else dataclasses.replace(job.spec, devices=group)
            return train_trial(spec, job.publish, job.stop, report=job.report, model_dir=job.model_dir,
                               checkpoint_dir=job.checkpoint_dir)
        finally:
            self._groups.put(group)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
