"""The search loop: ask Optuna for a trial, launch it on an executor, record how it finished.

``Search.run()`` is the whole loop (Optuna's ``study/_optimize.py`` for ask/tell with our own
executors). It needs a study, an executor, a progress hub and two callables from the caller,
``suggest(trial) -> params`` and ``spec_for(number, params) -> TrialSpec``, and nothing else:
no dataset, no Keras. The tests run it with ``InMemoryExecutor`` on Optuna's in-memory storage
in milliseconds (tests/test_search.py).

What it guarantees:

- Budget: processes sharing a study together start exactly ``n_trials`` trials that count
  (complete, pruned, or failed by us). Counting and ``ask()`` are one step under a lock every
  process on the study shares (``storage.study_lock``). Stopped trials, and trials failed
  because their process died (retried as new ones), do not count.
- Concurrency: at most ``concurrency`` of this process's trials run at once.
- Stop: ``stop()`` starts nothing new and asks running trials to end (within one batch).
- Every trial ends recorded: an executor that breaks its contract (its future raises) gets
  the trial recorded as failed, and the search goes on.
- Shared studies: running trials beat (``storage.Heartbeat``); a dead process's silent trials
  are failed and retried here (resuming from their epoch checkpoints), except those whose
  journaled remote work (a RunPod job) this executor can follow: it is followed to its end on the
  original trial, or cancelled if not followed (``reattach``); trials other processes finish show
  up on the hub.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import optuna

from . import reattach, records
from .diagnostics.store import upload_inline
from .executors.base import Executor, TrialJob, abandon
from .progress import Notice, ProgressHub, TrialFinished, TrialStarted
from .spec import TrialOutcome, TrialSpec
from .storage import Heartbeat, died_here, runner_id, study_lock

log = logging.getLogger("hpo_nb")

Suggest = Callable[[optuna.trial.Trial], dict[str, Any]]
SpecFor = Callable[[int, dict[str, Any]], TrialSpec]


@dataclass
class _Running:
    trial: optuna.trial.Trial
    spec: TrialSpec
    stop: threading.Event


class Search:
    """One run of the ask -> launch -> finish loop over ``study``.

    Args:
        study: the Optuna study to fill (any storage: SQLite, PostgreSQL, in-memory).
        storage: the study's storage (heartbeats, the shared lock, reading a trial back).
        executor: where trials run; ``prepare`` is called at the start, ``shutdown`` at the end.
        hub: receives ``TrialStarted`` / ``TrialFinished`` / ``Notice`` events, and the trials
            other processes finish on a shared study.
        n_trials: the budget, >= 1, counted over every process sharing the study.
        concurrency: this process's trials running at once, >= 1.
        suggest: draws one trial's hyperparameters (``space.suggest``).
        spec_for: the ``TrialSpec`` for a trial number and its hyperparameters.
        pruning: hand each trial a pruning reporter (Optuna's pruner decides).
        model_dir: where trials save their model, or None.
        checkpoint_dir: where running trials keep epoch checkpoints (a retry resumes), or None.
        heartbeat_interval: seconds between beats of running trials (> 0).
        grace_period: seconds after which a silent trial counts as dead (the storage enforces
            it for trials that beat; here it is the age of an orphan, see ``_fail_orphans``).
        sync_interval: seconds between looks for trials other processes finished.
        artifact_store: where trials' diagnostic arrays go (``diagnostics.store``), or None.
    """

    def __init__(self, study: optuna.Study, storage: Any, executor: Executor, hub: ProgressHub, *,
                 n_trials: int, concurrency: int, suggest: Suggest, spec_for: SpecFor, pruning: bool = True,
                 model_dir: Path | None = None, checkpoint_dir: Path | None = None, heartbeat_interval: float = 5.0,
                 grace_period: float = 31.0,
                 sync_interval: float = 2.0, artifact_store: Any = None) -> None:
        self.study = study
        self.storage = storage
        self.executor = executor
        self.hub = hub
        self.n_trials = n_trials
        self.concurrency = concurrency
        self.suggest = suggest
        self.spec_for = spec_for
        self.pruning = pruning
        self.model_dir = model_dir
        self.checkpoint_dir = checkpoint_dir
        self.grace_period = grace_period
        self.sync_interval = sync_interval
        self.artifact_store = artifact_store
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[int, _Running] = {}
        self._heartbeat = Heartbeat(storage, heartbeat_interval, self._running_ids)
        self._last_orphan_check = float("-inf")

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """Start no new trial; ask running ones to end within one batch (any thread)."""
        self._stop.set()
        self.hub.set_stopping()
        with self._lock:
            for r in self._running.values():
                r.stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _running_ids(self) -> list[int]:
        with self._lock:
            return [r.trial._trial_id for r in self._running.values()]

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        """Run until the budget is spent (here and in processes sharing the study) or ``stop()``.
        Raises what the study or storage raised; trials still running then are stopped and
        recorded first."""
        executor = self.executor
        executor.prepare(self.hub.publish)
        futures: dict[Future, int] = {}
        last_sync = 0.0
        noted = False
        try:
            with self._heartbeat:
                while True:
                    self._start_trials(futures)
                    if futures:
                        done, _ = wait(list(futures), timeout=1.0, return_when=FIRST_COMPLETED)
                        for future in done:
                            self._finish(futures.pop(future), future)
                    else:
                        elsewhere = self._running_elsewhere()
                        if self._stop.is_set() or not elsewhere or self._budget_left() + elsewhere <= 0:
                            break  # done, or the budget is spent even if every trial running elsewhere ends
                        # The rest of the budget is held by trials running in other processes; wait for
                        # them (a dead process's trial goes stale after the grace period and is retried here).
                        if not noted:
                            noted = True
                            self.hub.publish(Notice(f"waiting for {elsewhere} trial(s) running in other processes"))
                        self._stop.wait(1.0)
                    if time.monotonic() - last_sync > self.sync_interval:
                        self._sync_foreign_trials()
                        last_sync = time.monotonic()
        finally:
            if futures:  # an error above: stop and record whatever is still running
                with self._lock:
                    for r in self._running.values():
                        r.stop.set()
                for future in list(futures):
                    self._finish(futures.pop(future), future)
            executor.shutdown(wait=True)
            self._sync_foreign_trials()

    def _start_trials(self, futures: dict[Future, int]) -> None:
        """Fail dead processes' trials (queueing their retries) and start trials while the budget
        allows, under a lock shared by every process on this study: counting and ``ask()`` are one
        step, so processes sharing a study together start exactly ``n_trials``."""
        if self._stop.is_set():
            return
        full = len(futures) >= self.concurrency
        if full and time.monotonic() - self._last_orphan_check < self.sync_interval:
            return
        with study_lock(self.storage, self.study.study_name):
            dead = self._died_here()
            self._follow_orphans(futures, dead)  # before they are failed: followed work is not redone
            self._last_orphan_check = time.monotonic()
            if full:
                return
            optuna.storages.fail_stale_trials(self.study)
            self._fail_died_here()
            self._fail_orphans()
            while not self._stop.is_set() and len(futures) < self.concurrency and self.executor.accepting() \
                    and self._budget_left() > 0:
                number, future = self._launch()
                futures[future] = number

    def _died_here(self) -> list[int]:
        """Ids of RUNNING trials whose process, on this host, is gone: no need to wait for their
        heartbeat to go stale (a kernel restart, a killed script on this machine)."""
        if not self._heartbeat.enabled:
            return []
        with self._lock:
            mine = set(self._running)
        return [t._trial_id for t in self._stored_trials() if t.state == optuna.trial.TrialState.RUNNING
                and t.number not in mine and died_here(t.user_attrs.get("runner"))]

    def _fail_died_here(self) -> None:
        """Fail and retry (as Optuna does for stale trials) the trials of a process of this host that
        is gone and whose work nobody follows: the retry resumes from the trial's checkpoint now,
        not after the grace period."""
        callback = getattr(self.storage, "get_heartbeat_stale_trial_callback", lambda: None)()
        for trial_id in self._died_here():
            try:
                if not self.storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:  # finished meanwhile
                continue
            frozen = self.storage.get_trial(trial_id)
            log.warning("trial %d: its process (%s) is gone: failed and retried", frozen.number,
                        frozen.user_attrs.get("runner"))
            if callback is not None:
                callback(self.study, frozen)

    def _follow_orphans(self, futures: dict[Future, int], dead: list[int]) -> None:
        """Take over the trials of a dead process whose journaled work (a RunPod job) the executor
        can follow: they beat from here on and end recorded as if never interrupted. Work it will
        not follow is cancelled, and its trial left to be failed and retried (``reattach``)."""
        for frozen, entry in reattach.orphaned(self.storage, self.study, dead):
            params = dict(frozen.user_attrs.get("params_all") or frozen.params)
            spec = self.spec_for(frozen.number, params)
            if frozen.system_attrs.get("failed_trial") is not None:
                spec = dataclasses.replace(spec, retry_of=int(frozen.system_attrs["failed_trial"]))
            trial = optuna.trial.Trial(self.study, frozen._trial_id)
            stop = threading.Event()
            job = TrialJob(spec=spec, publish=self.hub.publish, stop=stop,
                           report=_reporter(trial) if self.pruning else None, model_dir=self.model_dir,
                           checkpoint_dir=self.checkpoint_dir,
                           journal=reattach.journal_writer(self.storage, frozen._trial_id))
            future = self.executor.follow(job, entry)
            if future is None:
                done = abandon(entry)
                self.storage.set_trial_system_attr(frozen._trial_id, reattach.JOURNAL_ATTR, None)  # handled
                message = f"trial {frozen.number}: its process died; {done}; the trial is retried"
            else:
                self._heartbeat.beat(frozen._trial_id)  # ours now: no longer stale for anyone
                trial.set_user_attr("runner", runner_id())
                with self._lock:
                    self._running[frozen.number] = _Running(trial, spec, stop)
                    if self._stop.is_set():
                        stop.set()
                futures[future] = frozen.number
                self.hub.publish(TrialStarted(frozen.number, spec.max_epochs, params, status="running",
                                              where=self.executor.name))
                message = f"trial {frozen.number}: its process died; following its {entry.get('executor')} " \
                          f"job {entry.get('id')} instead of starting it again"
            log.warning("%s", message)
            self.hub.publish(Notice(message))

    def _fail_orphans(self) -> None:
        """Fail trials whose process died between ``ask()`` and their first heartbeat.

        Optuna's stale-trial check only sees trials that beat at least once, so such a trial
        would stay RUNNING forever and hold its share of the budget. A process asks and beats
        under the study lock (``_start_trials``), so under that lock a RUNNING trial with no
        ``runner`` mark (set right after the first beat) older than the grace period can only
        be an orphan. A start-up trial's fixed parameters are queued again."""
        if not self._heartbeat.enabled:
            return  # no heartbeats, no dead-process detection at all (in-memory storage)
        cutoff = datetime.now() - timedelta(seconds=self.grace_period)
        with self._lock:
            mine = set(self._running)
        for t in self._stored_trials():
            if t.state != optuna.trial.TrialState.RUNNING or t.number in mine or "runner" in t.user_attrs \
                    or t.datetime_start is None or t.datetime_start > cutoff:
                continue
            if not self.storage.set_trial_state_values(t._trial_id, state=optuna.trial.TrialState.FAIL):
                continue
            log.warning("trial %d was asked for by a process that died before its first heartbeat: failed", t.number)
            fixed = t.system_attrs.get("fixed_params")
            if fixed:
                self.study.enqueue_trial(fixed, user_attrs=dict(t.user_attrs))

    def _budget_left(self) -> int:
        """Trials still to start: n_trials minus those that count (this and any other process)
        and those running anywhere."""
        trials = self._stored_trials()
        used = sum(1 for t in trials if records.counts_toward_budget(t))
        running = sum(1 for t in trials if t.state == optuna.trial.TrialState.RUNNING)
        return self.n_trials - used - running

    def _running_elsewhere(self) -> int:
        """Trials of this study running in other processes (or in dead ones, until they go stale)."""
        with self._lock:
            mine = set(self._running)
        return sum(1 for t in self._stored_trials()
                   if t.state == optuna.trial.TrialState.RUNNING and t.number not in mine)

    def _stored_trials(self) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False)

    def _launch(self) -> tuple[int, Future]:
        trial = self.study.ask()
        self._heartbeat.beat(trial._trial_id)  # from its first moment: a death is detectable
        trial.set_user_attr("runner", runner_id())
        params = self.suggest(trial)
        trial.set_user_attr("params_all", params)
        spec = self.spec_for(trial.number, params)
        retried = self.storage.get_trial(trial._trial_id).system_attrs.get("failed_trial")
        if retried is not None:  # a dead process's trial, again: its seed, and its checkpoint if any
            spec = dataclasses.replace(spec, retry_of=int(retried))
            self.storage.set_trial_system_attr(trial._trial_id, reattach.JOURNAL_ATTR, None)  # not the original's work
        stop = threading.Event()
        with self._lock:
            self._running[trial.number] = _Running(trial, spec, stop)
            if self._stop.is_set():  # stop() came while this trial was being asked for
                stop.set()
        self.hub.publish(TrialStarted(trial.number, spec.max_epochs, params, status=self.executor.initial_status,
                                      where=self.executor.name))
        log.info("trial %d started: %s", trial.number, params)
        job = TrialJob(spec=spec, publish=self.hub.publish, stop=stop,
                       report=_reporter(trial) if self.pruning else None, model_dir=self.model_dir,
                       checkpoint_dir=self.checkpoint_dir,
                       journal=reattach.journal_writer(self.storage, trial._trial_id))
        return trial.number, self.executor.submit(job)

    def _finish(self, number: int, future: Future) -> None:
        with self._lock:
            running = self._running.pop(number)
        try:
            outcome: TrialOutcome = future.result()
        except BaseException as exc:  # an executor broke its contract; record, don't lose the search
            outcome = TrialOutcome(number, "failed", error=f"{type(exc).__name__}: {exc}")
        trial = running.trial
        try:
            upload_inline(outcome.diagnostics, trial, self.artifact_store)  # arrays -> artifacts, not attrs
            for key, value in records.outcome_attrs(outcome).items():
                trial.set_user_attr(key, value)
            if outcome.state == "complete":
                self.study.tell(trial, outcome.score)
            elif outcome.state == "pruned":
                self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            if self.storage.get_trial(trial._trial_id).state == optuna.trial.TrialState.RUNNING:
                raise
            # Its heartbeat went silent for longer than the grace period (a stalled process), so a
            # process sharing the study failed it and queued a retry; the retry's result counts.
            log.warning("trial %d was failed by a process sharing the study (no heartbeat for %d s); "
                        "its retry replaces it", number, self.grace_period)
            outcome = TrialOutcome(number, "failed", error="heartbeat lost: failed and retried as a new trial",
                                   duration_s=outcome.duration_s)
        log.info("trial %d %s: accuracy=%s score=%s duration=%.1fs%s", number, outcome.state, outcome.accuracy,
                 outcome.score, outcome.duration_s, f" error={outcome.error}" if outcome.error else "")
        self.hub.publish(TrialFinished(
            trial=number, state=outcome.state, accuracy=outcome.accuracy, score=outcome.score,
            duration_s=outcome.duration_s, params=running.spec.params, health=outcome.health,
            architecture=outcome.architecture, error=outcome.error, extra=outcome.extra,
        ))

    def _sync_foreign_trials(self) -> None:
        """Show trials that other processes finished on a shared study."""
        with self._lock:
            mine = set(self._running)
        known = {t.trial for t in self.hub.snapshot().finished}
        foreign = [records.finished_trial(t) for t in self._stored_trials()
                   if shown(t) and t.number not in known and t.number not in mine]
        if foreign:
            self.hub.add_finished(foreign)


def shown(t: optuna.trial.FrozenTrial) -> bool:
    """Finished trials the dashboard lists: ours, with a recorded outcome. A dead process's trial
    (failed by heartbeat, retried as a new one) is left out, so counts match the budget."""
    return t.state.is_finished() and records.STATE_ATTR in t.user_attrs


def _reporter(trial: optuna.trial.Trial) -> Callable[[int, float], bool]:
    def report(step: int, value: float) -> bool:
        trial.report(value, step)
        return trial.should_prune()

    return report
