"""``Experiment``: the facade. It validates settings, then wires an Optuna study (what to try),
an executor (how to run it), a progress hub and a renderer. No training or drawing code here."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import optuna

from . import datasets, health, records, space as spaces, startup, trial_memory
from .errors import ConfigError
from .executors import Executor, TrialJob
from .progress import Notice, ProgressHub, Snapshot, TrialFinished, TrialStarted
from .spec import TrialOutcome, TrialSpec
from .storage import default_url, mask_url, open_storage, study_lock, suppress_experimental_warnings, validate_url

log = logging.getLogger("hpo_nb")

MODES = ("simple", "health")
EXECUTORS = ("local", "runpod")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass
class _Running:
    trial: optuna.trial.Trial
    spec: TrialSpec
    stop: threading.Event


class Experiment:
    """A hyperparameter search over Keras CNNs (images) or LSTMs (text), optimized with
    Optuna's TPE sampler, shown live while it runs, and kept in Optuna storage.

    A test split is held out before anything trains (``evaluate()`` scores the chosen model on
    it): ``test_fraction`` (float in [0, 1), default None: the dataset's official test split, else
    0.2 of every class, fixed seed) or ``test=(x_test, y_test)`` for your own Dataset (raw samples
    and labels like the ones it was built from). Both raise ``ConfigError`` before training when
    they do not fit the data.
    """

    def __init__(
        self,
        dataset: str | datasets.Dataset = "digits",
        mode: str = "simple",
        n_trials: int = 20,
        max_epochs: int = 10,
        concurrency: int = 1,
        executor: str | Executor = "local",
        distribution: str | None = None,
        storage: str | None = None,
        name: str | None = None,
        seed: int = 0,
        *,
        search_space: Mapping[str, Any] | None = None,
        sample_fraction: float = 1.0,
        validation_fraction: float = 0.2,
        accuracy_weight: float = 0.7,
        health_weights: Mapping[str, float] | None = None,
        pruning: bool = True,
        pruner: str | optuna.pruners.BasePruner = "median",
        devices: list[str] | None = None,
        gpus_per_trial: int | None = None,
        runpod: Mapping[str, Any] | None = None,
        runs_dir: str | Path = "runs",
        save_models: bool = True,
        progress: str | Callable[[Snapshot], None] = "auto",
        heartbeat_interval: int = 5,
        test_fraction: float | None = None,
        test: tuple[Any, Any] | None = None,
    ) -> None:
        _check_choice("mode", mode, MODES)
        _check_int("n_trials", n_trials, 1)
        _check_int("max_epochs", max_epochs, 1)
        _check_int("concurrency", concurrency, 1)
        _check_int("seed", seed, 0)
        _check_int("heartbeat_interval", heartbeat_interval, 1)
        _check_fraction("sample_fraction", sample_fraction, low_open=True)
        _check_fraction("validation_fraction", validation_fraction, low_open=True, high_open=True)
        _check_fraction("accuracy_weight", accuracy_weight)
        health.validate_weights(health_weights)
        if not isinstance(executor, Executor):
            _check_choice("executor", executor, EXECUTORS)
        if distribution not in (None, "mirrored"):
            raise ConfigError(f"distribution must be None or 'mirrored', not {distribution!r}.")
        if progress not in ("auto", "notebook", "console", "none") and not callable(progress):
            raise ConfigError("progress must be 'auto', 'notebook', 'console', 'none' or a callable(snapshot).")

        self.dataset = datasets.load(dataset)  # loads now: a missing dataset fails before training
        if test is not None:  # the user's own held-out data: the search never sees it
            if not isinstance(dataset, datasets.Dataset) or test_fraction is not None:
                raise ConfigError(
                    "test=(x_test, y_test) goes with your own data (a Dataset, e.g. datasets.from_arrays(x, y)) "
                    "and without test_fraction; registered datasets bring their own test split or hold one out."
                )
            dataset = self.dataset = self.dataset.with_test(*test)
        if isinstance(dataset, datasets.Dataset):
            datasets.attach(dataset)
        # Held out before validation is drawn; evaluate() scores the chosen model on it.
        self.test_fraction = self.dataset.resolve_test_fraction(test_fraction, strict=True)
        n_train = int(len(self.dataset.x) * (1 - self.test_fraction) * (1 - validation_fraction) * sample_fraction)
        self.space = spaces.build_space(self.dataset.modality, search_space, n_train=n_train)
        self.mode = mode
        self.n_trials = n_trials
        self.max_epochs = max_epochs
        self.concurrency = concurrency
        self.distribution = distribution
        self.seed = seed
        self.sample_fraction = float(sample_fraction)
        self.validation_fraction = float(validation_fraction)
        self.accuracy_weight = float(accuracy_weight)
        self.health_weights = dict(health_weights) if health_weights else None
        self.pruning = pruning
        self._pruner = _make_pruner(pruner if pruning else "none", max_epochs)
        self.save_models = save_models
        self._progress_choice = progress
        self.name = name or f"{self.dataset.name}-{mode}"
        if not _NAME_RE.match(self.name):
            raise ConfigError(
                f"name {self.name!r} must start with a letter or digit and use only letters, digits, '.', '_' "
                "or '-' (it names the run folder and the study)."
            )
        self.run_dir = Path(runs_dir) / self.name
        if storage is not None:
            validate_url(storage)
        self._storage_url = storage
        self._executor_choice = executor
        self._runpod_options = dict(runpod or {})
        if executor == "runpod":
            from .executors.runpod import check_options

            check_options(self._runpod_options)  # a missing key or bad option fails before training
        self._device_groups = self._plan_devices(distribution, devices, gpus_per_trial)
        if executor == "runpod" and not datasets.is_registered(self.dataset.name):
            raise ConfigError(
                "RunPod workers load datasets by registered name; your dataset lives only in this process. "
                f"Use executor='local', or a registered dataset ({', '.join(datasets.names())})."
            )

        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._log_handler = _attach_run_log(self.run_dir / "run.log")
        suppress_experimental_warnings()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # Running trials beat every heartbeat_interval s; one silent for grace_period s belongs to a
        # dead process: it is failed and retried (by whichever process sharing the study sees it first).
        self.heartbeat_interval = heartbeat_interval
        self._grace_period = 6 * heartbeat_interval + 1  # generous: a busy machine can delay a beat
        self._storage = open_storage(storage or default_url(self.run_dir), heartbeat_interval=heartbeat_interval,
                                     grace_period=self._grace_period)
        self.study = self._open_study()
        self.hub = ProgressHub(n_trials, mode, concurrency)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._renderers: list[Any] = []
        self._running: dict[int, _Running] = {}
        self._lock = threading.Lock()
        log.info("experiment %s ready: dataset=%s mode=%s n_trials=%d storage=%s", self.name, self.dataset.name,
                 mode, n_trials, mask_url(storage or default_url(self.run_dir)))

    # ------------------------------------------------------------------ set-up

    def _plan_devices(self, distribution: str | None, devices: list[str] | None,
                      gpus_per_trial: int | None) -> list[tuple[str, ...]] | None:
        from .devices import plan_device_groups, remote_devices

        self._spec_devices = None
        if self._executor_choice == "runpod":  # each worker mirrors over its own GPUs (TrialSpec.devices)
            self._spec_devices = remote_devices(distribution, devices, gpus_per_trial)
            return None
        if self._executor_choice != "local":
            return None
        return plan_device_groups(distribution, devices, gpus_per_trial, self.concurrency)

    def _open_study(self) -> optuna.Study:
        sampler = self._sampler(self.seed)
        study = optuna.create_study(study_name=self.name, storage=self._storage, direction="maximize",
                                    sampler=sampler, pruner=self._pruner, load_if_exists=True)
        settings = {"dataset": self.dataset.name, "mode": self.mode, "modality": self.dataset.modality}
        stored = study.user_attrs.get("hpo_nb")
        if stored is None:
            study.set_user_attr("hpo_nb", {**settings, "max_epochs": self.max_epochs, "seed": self.seed})
            # The start-up design goes first (ask() pops enqueued trials in order); a process
            # joining the study later finds it already queued or tried.
            for params in startup.startup_configs(self.dataset.modality, self.space,
                                                  startup.startup_size(self.n_trials), self.seed):
                study.enqueue_trial(params, user_attrs={"startup": True})
        elif any(stored.get(k) != v for k, v in settings.items()):
            raise ConfigError(
                f"study {self.name!r} already exists with dataset={stored.get('dataset')!r}, "
                f"mode={stored.get('mode')!r}; its scores are not comparable with this one. "
                "Pick another name= (or delete its run folder)."
            )
        else:
            # Joining or resuming: a sampler seeded like the creator's would propose the very same
            # configurations as another process on this study. The validation split keeps self.seed.
            study.sampler = self._sampler(_joiner_seed(self.seed))
        return study

    def _sampler(self, seed: int) -> optuna.samplers.TPESampler:
        """TPE, multivariate, with a lie for running trials when several run at once. Its own
        random start-up phase is replaced by the enqueued start-up design (``startup``), so TPE
        models as soon as those trials have finished."""
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup.startup_size(self.n_trials),
                                          multivariate=True, constant_liar=self.concurrency > 1)

    def _make_executor(self) -> Executor:
        choice = self._executor_choice
        if isinstance(choice, Executor):
            return choice
        if choice == "runpod":
            from .executors.runpod import RunPodExecutor

            return RunPodExecutor(concurrency=self.concurrency, **self._runpod_options)
        from .executors.local import LocalExecutor

        return LocalExecutor(self.concurrency, self._device_groups)

    # ------------------------------------------------------------------ running

    def run(self) -> None:
        """Run the search and block until it ends; shows live progress. Ctrl+C stops it cleanly
        (running trials end within one batch; every completed trial is kept). Returns nothing,
        so a cell ending in ``exp.run()`` shows the dashboard and not a repr under it."""
        self.start()
        try:
            self.wait()
            self._evaluate_after_run()  # one predict on the test split: the honest number, shown at once
        except KeyboardInterrupt:
            log.warning("interrupted: stopping the search")
            self.stop()

    def start(self) -> "Experiment":
        """Start the search in the background and return at once (the dashboard keeps updating)."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("this experiment is already running; call wait() or stop() first.")
        self._stop.clear()
        self._error = None
        self.hub = ProgressHub(self.n_trials, self.mode, self.concurrency)
        self.hub.add_finished([records.finished_trial(t) for t in self._stored_trials() if _shown(t)])
        self._attach_renderer()
        self._thread = threading.Thread(target=self._loop_guarded, name="hpo-nb-search", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> "Experiment":
        """Block until the search ends (or ``timeout`` seconds pass)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._thread is not None and self._thread.is_alive():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            self._thread.join(0.2 if left is None else min(0.2, left))
        if self._error is not None and (self._thread is None or not self._thread.is_alive()):
            err, self._error = self._error, None
            raise err
        return self

    def stop(self, wait: bool = True) -> "Experiment":
        """Stop the search: no new trials; running ones end within one batch and are recorded
        as stopped. Completed trials stay in storage."""
        self._stop.set()
        self.hub.set_stopping()
        with self._lock:
            for r in self._running.values():
                r.stop.set()
        if wait:
            self.wait()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop_guarded(self) -> None:
        try:
            with trial_memory.search():  # cheap collections between this search's trials
                self._loop()
        except BaseException as exc:  # surfaced by wait()
            log.exception("search failed")
            self._error = exc
        finally:
            self.hub.close()
            for r in self._renderers:
                close = getattr(r, "close", None)
                if close:
                    close()

    def _loop(self) -> None:
        executor = self._make_executor()
        executor.prepare(self.hub.publish)
        futures: dict[Future, int] = {}
        last_sync = 0.0
        noted = False
        beating = threading.Event()
        threading.Thread(target=self._heartbeat_loop, args=(beating,), name="hpo-nb-heartbeat", daemon=True).start()
        try:
            while True:
                self._start_trials(executor, futures)
                if futures:
                    done, _ = wait(list(futures), timeout=1.0, return_when=FIRST_COMPLETED)
                    for future in done:
                        self._finish(futures.pop(future), future)
                else:
                    elsewhere = self._running_elsewhere()
                    if self._stop.is_set() or not elsewhere or self._budget_left() + elsewhere <= 0:
                        break  # done, or the budget is spent even if every trial running elsewhere ends
                    # The rest of the budget is held by trials running in other processes; wait for them
                    # (a dead process's trial goes stale after the grace period and is retried here).
                    if not noted:
                        noted = True
                        self.hub.publish(Notice(f"waiting for {elsewhere} trial(s) running in other processes"))
                    self._stop.wait(1.0)
                if time.monotonic() - last_sync > 2.0:
                    self._sync_foreign_trials()
                    last_sync = time.monotonic()
        finally:
            beating.set()
            if futures:  # an error above: stop and record whatever is still running
                for r in self._running.values():
                    r.stop.set()
                for future in list(futures):
                    self._finish(futures.pop(future), future)
            executor.shutdown(wait=True)
            self._sync_foreign_trials()

    def _start_trials(self, executor: Executor, futures: dict[Future, int]) -> None:
        """Fail dead processes' trials (queueing their retries) and start trials while the budget
        allows, under a lock shared by every process on this study: counting and ``ask()`` are one
        step, so processes sharing a study together start exactly ``n_trials``."""
        if self._stop.is_set() or len(futures) >= self.concurrency:
            return
        with study_lock(self._storage, self.name):
            optuna.storages.fail_stale_trials(self.study)
            while not self._stop.is_set() and len(futures) < self.concurrency and executor.accepting() \
                        and self._budget_left() > 0:
                number, future = self._launch(executor)
                futures[future] = number

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

    def _launch(self, executor: Executor) -> tuple[int, Future]:
        trial = self.study.ask()
        self._storage.record_heartbeat(trial._trial_id)  # from its first moment: a death is detectable
        trial.set_user_attr("runner", f"{socket.gethostname()}:{os.getpid()}")
        params = spaces.suggest(trial, self.space)
        trial.set_user_attr("params_all", params)
        spec = TrialSpec(
            trial_number=trial.number, dataset=self.dataset.name, params=params, max_epochs=self.max_epochs,
            seed=self.seed, mode=self.mode, sample_fraction=self.sample_fraction,
            validation_fraction=self.validation_fraction, health_weights=self.health_weights,
            accuracy_weight=self.accuracy_weight, devices=self._spec_devices, test_fraction=self.test_fraction,
        )
        stop = threading.Event()
        with self._lock:
            self._running[trial.number] = _Running(trial, spec, stop)
        self.hub.publish(TrialStarted(trial.number, self.max_epochs, params, status=executor.initial_status,
                                      where=executor.name))
        log.info("trial %d started: %s", trial.number, params)
        job = TrialJob(spec=spec, publish=self.hub.publish, stop=stop,
                       report=self._reporter(trial) if self.pruning else None,
                       model_dir=self.run_dir / "models" if self.save_models else None)
        return trial.number, executor.submit(job)

    @staticmethod
    def _reporter(trial: optuna.trial.Trial) -> Callable[[int, float], bool]:
        def report(step: int, value: float) -> bool:
            trial.report(value, step)
            return trial.should_prune()

        return report

    def _finish(self, number: int, future: Future) -> None:
        with self._lock:
            running = self._running.pop(number)
        try:
            outcome: TrialOutcome = future.result()
        except BaseException as exc:  # an executor broke its contract; record, don't lose the search
            outcome = TrialOutcome(number, "failed", error=f"{type(exc).__name__}: {exc}")
        trial = running.trial
        try:
            for key, value in records.outcome_attrs(outcome).items():
                trial.set_user_attr(key, value)
            if outcome.state == "complete":
                self.study.tell(trial, outcome.score)
            elif outcome.state == "pruned":
                self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            if self._storage.get_trial(trial._trial_id).state == optuna.trial.TrialState.RUNNING:
                raise
            # Its heartbeat went silent for longer than the grace period (a stalled process), so a
            # process sharing the study failed it and queued a retry; the retry's result counts.
            log.warning("trial %d was failed by a process sharing the study (no heartbeat for %d s); "
                        "its retry replaces it", number, self._grace_period)
            outcome = TrialOutcome(number, "failed", error="heartbeat lost: failed and retried as a new trial",
                                   duration_s=outcome.duration_s)
        log.info("trial %d %s: accuracy=%s score=%s duration=%.1fs%s", number, outcome.state, outcome.accuracy,
                 outcome.score, outcome.duration_s, f" error={outcome.error}" if outcome.error else "")
        self.hub.publish(TrialFinished(
            trial=number, state=outcome.state, accuracy=outcome.accuracy, score=outcome.score,
            duration_s=outcome.duration_s, params=running.spec.params, health=outcome.health,
            architecture=outcome.architecture, error=outcome.error, extra=outcome.extra,
        ))

    def _heartbeat_loop(self, done: threading.Event) -> None:
        """Beat for this process's running trials, so processes sharing the study can tell them
        from a dead process's trials."""
        while not done.wait(self.heartbeat_interval):
            self._heartbeat()

    def _heartbeat(self) -> None:
        with self._lock:
            ids = [r.trial._trial_id for r in self._running.values()]
        for trial_id in ids:
            try:
                self._storage.record_heartbeat(trial_id)
            except Exception as exc:  # a missed beat is not fatal; the grace period covers it
                log.warning("heartbeat failed: %s", exc)

    def _sync_foreign_trials(self) -> None:
        """Show trials that other processes finished on a shared study."""
        with self._lock:
            mine = set(self._running)
        known = {t.trial for t in self.hub.snapshot().finished}
        foreign = [records.finished_trial(t) for t in self._stored_trials()
                   if _shown(t) and t.number not in known and t.number not in mine]
        if foreign:
            self.hub.add_finished(foreign)

    # ------------------------------------------------------------------ rendering

    def _attach_renderer(self) -> None:
        choice = self._progress_choice
        renderer: Callable[[Snapshot], None] | None
        if callable(choice):
            renderer = choice
        elif choice == "none":
            renderer = None
        elif choice == "notebook" or (choice == "auto" and _in_notebook()):
            from .views.dashboard import Dashboard

            renderer = Dashboard.for_experiment(self)
        else:
            from .views.console import ConsoleRenderer

            renderer = ConsoleRenderer()
        if renderer is not None:
            self._renderers = [renderer]
            self.hub.subscribe(renderer, max_hz=5.0)

    def dashboard(self) -> Any:
        """Display the live dashboard (again) in a notebook; it follows this experiment."""
        from .views.dashboard import Dashboard

        return Dashboard.for_experiment(self, attach=True)

    # ------------------------------------------------------------------ results

    @property
    def trials(self) -> list[records.TrialResult]:
        return [records.TrialResult.from_trial(t) for t in self._stored_trials()]

    @property
    def results(self) -> Any:
        """pandas DataFrame, one row per trial (from storage: includes resumed and shared trials)."""
        return records.results_frame(self._stored_trials(), list(self.space),
                                     records.stored_evaluations(self.study))

    @property
    def best(self) -> records.TrialResult:
        """The complete trial with the highest score."""
        complete = [t for t in self._stored_trials() if records.state_of(t) == "complete" and t.value is not None]
        if not complete:
            raise ConfigError("no trial has completed yet; run() the experiment first.")
        return records.TrialResult.from_trial(max(complete, key=lambda t: t.value))

    def trial(self, number: int | None = None) -> records.TrialResult:
        """A trial by number (default: the best)."""
        if number is None:
            return self.best
        for t in self._stored_trials():
            if t.number == number:
                return records.TrialResult.from_trial(t)
        raise ConfigError(f"no trial number {number} in study {self.name!r}.")

    def best_model(self, trial: int | None = None, raw_inputs: bool = False) -> Any:
        """The saved Keras model of the best (or a given) trial.

        Args:
            trial: a trial number; None: the best trial.
            raw_inputs: False: the network as the search trained it, taking the arrays of
                ``exp.splits()`` (images float32 in [0, 1], shape (n, h, w, c); text int32 token
                ids, shape (n, sequence_length)). True: the model as saved in ``model_path``, with
                the dataset's preprocessing inside: images take raw pixel values (e.g. uint8
                0..255), raw text takes a string tensor of shape (n,) (a numpy object array or
                ``tf.constant``; ``model.predict`` refuses a Python list).

        Returns:
            keras.Model: compiled (sparse categorical cross-entropy, accuracy).

        Raises:
            ConfigError: no trial has completed, or the trial has no saved model here.
        """
        import keras

        result = self.trial(trial)
        if not result.model_path or not Path(result.model_path).exists():
            raise ConfigError(
                f"trial {result.number} has no saved model here ({result.model_path or 'not saved'}); "
                "models are saved for complete trials when save_models=True."
            )
        model = keras.models.load_model(result.model_path)
        network = datasets.network_of(model)
        if raw_inputs:
            if network is model:  # saved before models carried their preprocessing
                model = self.dataset.with_preprocessing(model, self.validation_fraction, self.seed,
                                                        self.sample_fraction, self.test_fraction)
            model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            return model
        if network is not model:
            from .models import compile_model

            compile_model(network, result.params)
        return network

    def splits(self, raw: bool = False) -> datasets.Splits:
        """The train / validation / test arrays this search uses, e.g. for a baseline on the very
        same samples. The test split is never given to a trial (see ``Dataset.splits``).

        Args:
            raw: False: as trials see them (images float32 in [0, 1], text int32 token ids);
                True: as ``predict`` and the saved models take them (pixels in the data's own
                units, text as str).

        Returns:
            datasets.Splits: ``(x_train, y_train, x_val, y_val, x_test, y_test)``; labels int32 (n,).
        """
        return self.dataset.splits(self.validation_fraction, self.seed, self.sample_fraction, self.test_fraction,
                                   raw=raw)

    def evaluate(self, k: int = 1) -> records.Evaluation:
        """Test accuracy of the search's pick (the best trial by its score) and of the runners-up,
        on the held-out test split that no trial trained or was scored on.

        Validation accuracy is what the search optimized, so the best trial's is optimistic; the
        test accuracy is the honest estimate. Each evaluation is stored in the study (a study user
        attribute per trial), so ``results`` shows it as ``test_accuracy``, also after a restart.
        ``run()`` evaluates the best trial itself when the search ends.

        Args:
            k: how many trials to evaluate, best first (1: the selected model only).

        Returns:
            records.Evaluation: ``test_accuracy``, ``validation_accuracy``, ``per_class`` (DataFrame:
            support, correct, recall, precision per class), ``confusion`` (DataFrame, true x
            predicted) of the selected trial; ``reports`` and ``table`` for all ``k``.

        Raises:
            ConfigError: ``k`` is not a positive int, no trial has completed, there is no test split
                (``test_fraction=0``), or a trial's model was not saved here (``save_models=False``,
                RunPod) and was never evaluated.
        """
        import numpy as np

        _check_int("k", k, 1)
        split = self.splits(raw=True)
        if len(split.y_test) == 0:
            raise ConfigError(
                f"experiment {self.name!r} has no test split (test_fraction=0); pass test_fraction=0.2 or "
                "test=(x_test, y_test) to a new experiment (name=) to hold samples out of the search."
            )
        complete = [t for t in self._stored_trials() if records.state_of(t) == "complete" and t.value is not None]
        if not complete:
            raise ConfigError("no trial has completed yet; run() the experiment first.")
        chosen = sorted(complete, key=lambda t: (-t.value, t.number))[:k]
        stored = records.stored_evaluations(self.study)
        x_test = self.dataset.prepare_raw(split.x_test)
        names = self._class_names()
        reports = []
        for t in chosen:
            result = records.TrialResult.from_trial(t)
            if not (result.model_path and Path(result.model_path).exists()) and t.number in stored:
                reports.append(records.TestReport.from_attr(t.number, stored[t.number]))
                continue
            model = self.best_model(t.number, raw_inputs=True)
            probs = np.asarray(model.predict(x_test, batch_size=512, verbose=0))
            report = records.make_test_report(t.number, split.y_test, probs.argmax(axis=1), names,
                                              validation_accuracy=result.accuracy, score=result.score)
            records.store_evaluation(self.study, report)
            reports.append(report)
        log.info("test evaluation: %s", "; ".join(f"trial {r.trial} test {r.test_accuracy:.4f} "
                                                   f"val {r.validation_accuracy}" for r in reports))
        return records.Evaluation(reports)

    def predict(self, inputs: Any, trial: int | None = None) -> Any:
        """Classify raw inputs with the best (or a given) trial's saved model.

        Args:
            inputs: raw samples, as the data came: images as numbers in the data's own units
                (e.g. uint8 0..255, digits 0..16), shape (n, h, w), (n, h, w, c), flat (n, h*w) or
                one image; text as a str or a list of str (token-id datasets: a list of int sequences).
            trial: a trial number; None: the best trial.

        Returns:
            pandas.DataFrame: one row per input: ``predicted`` (class name), ``confidence`` (its
            probability), then ``p_<class>`` (probability of each class; rows sum to 1).

        Raises:
            ConfigError: no saved model, or inputs that do not fit the dataset's input shape.
        """
        import numpy as np
        import pandas as pd

        x = self.dataset.prepare_raw(inputs)
        model = self.best_model(trial, raw_inputs=True)
        probs = np.asarray(model.predict(x, batch_size=512, verbose=0))
        names = self._class_names()
        frame = pd.DataFrame(probs, columns=[f"p_{n}" for n in names])
        frame.insert(0, "predicted", [names[i] for i in probs.argmax(axis=1)])
        frame.insert(1, "confidence", probs.max(axis=1))
        return frame

    def _class_names(self) -> list[str]:
        names = self.dataset.class_names
        return [str(n) for n in names] if names else [str(i) for i in range(self.dataset.num_classes)]

    def _evaluate_after_run(self) -> None:
        """Evaluate the selected model on the test split when a search ends; never fails the run."""
        if not self.save_models:
            return
        try:
            self.evaluate(1)
        except ConfigError as exc:
            log.info("no test evaluation: %s", exc)
        except Exception as exc:  # the search's results stand without it; say why
            log.warning("test evaluation failed: %s: %s", type(exc).__name__, exc)

    def selected_test_report(self) -> records.TestReport | None:
        """The stored test evaluation of the current best trial, or None (not evaluated yet)."""
        try:
            best = self.best.number
        except ConfigError:
            return None
        data = records.stored_evaluations(self.study).get(best)
        return records.TestReport.from_attr(best, data) if data else None

    # ------------------------------------------------------------------ analysis (views/importance, arch3d)

    def importance(self, evaluator: str = "ped-anova", min_trials: int = 10) -> Any:
        """DataFrame: searched hyperparameters x targets (val accuracy, health score, each health
        metric, duration), each column normalized to sum 1; ``.attrs`` holds raw values and, for
        empty columns, why (too few trials, constant, no signal)."""
        from .analysis.importance import importance_table

        return importance_table(self.study, spaces.searched(self.space), evaluator=evaluator,
                                min_trials=min_trials).frame()

    def importance_heatmap(self, evaluator: str = "ped-anova", min_trials: int = 10) -> Any:
        """Plotly heatmap of ``importance()`` (``evaluator``: "ped-anova" or "fanova")."""
        from .analysis.importance import importance_table
        from .views.importance import heatmap

        return heatmap(importance_table(self.study, spaces.searched(self.space), evaluator=evaluator,
                                        min_trials=min_trials))

    def plot_history(self) -> Any:
        """Plotly figure: the objective per trial, coloured by state, with the best-so-far line."""
        from .analysis.history import history_frame
        from .views.history import history_figure

        objective = "val accuracy" if self.mode == "simple" else "score (accuracy + health)"
        return history_figure(history_frame(self._stored_trials()), objective, f"{self.name}: optimization history")

    def architecture_3d(self, trial: int | None = None, backend: str = "auto") -> Any:
        """3D view of the best (or a given) trial's network, from its stored metadata (no model
        rebuilt). ``backend``: "pythreejs" (widget), "plotly" (static) or "auto"."""
        from .views.arch3d import show_trial

        return show_trial(self.trial(trial), backend)

    def compare_architectures(self, a: int, b: int | None = None, backend: str = "auto") -> Any:
        """Trials ``a`` and ``b`` (default: the best) side by side in 3D, at the same scale."""
        from .views.arch3d import show_pair

        return show_pair(self.trial(a), self.trial(b), backend)

    def __repr__(self) -> str:
        return (f"Experiment(name={self.name!r}, dataset={self.dataset.name!r}, mode={self.mode!r}, "
                f"n_trials={self.n_trials}, max_epochs={self.max_epochs}, concurrency={self.concurrency}, "
                f"executor={self._executor_choice if isinstance(self._executor_choice, str) else self._executor_choice.name!r})")


# ---------------------------------------------------------------------- helpers


def _shown(t: optuna.trial.FrozenTrial) -> bool:
    """Finished trials the dashboard lists: ours, with a recorded outcome. A dead process's trial
    (failed by heartbeat, retried as a new one) is left out, so counts match the budget."""
    return t.state.is_finished() and records.STATE_ATTR in t.user_attrs


PRUNERS = ("median", "hyperband", "none")


def _make_pruner(choice: str | optuna.pruners.BasePruner, max_epochs: int) -> optuna.pruners.BasePruner:
    """``pruner=``: Optuna's median rule (a trial below the median of earlier trials at the same
    epoch stops, after 3 trials and 1 epoch), Hyperband (Li et al. 2018: successive halving over
    brackets from 1 epoch to ``max_epochs``), none, or any Optuna pruner. No pruner stops a trial
    after its last epoch (training.PruningCallback), where it would save nothing."""
    if isinstance(choice, optuna.pruners.BasePruner):
        return choice
    _check_choice("pruner", choice, PRUNERS)
    if choice == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if choice == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs, reduction_factor=3)
    return optuna.pruners.NopPruner()


def _joiner_seed(seed: int) -> int:
    """A sampler seed for a process joining an existing study: distinct per process."""
    return (seed * 1_000_003 + os.getpid() * 7919 + time.monotonic_ns()) % (2**32 - 1)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, not {value!r}.")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, not {value!r}.")


def _check_fraction(name: str, value: Any, low_open: bool = False, high_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)
    if not ok:
        lo, hi = ("(0" if low_open else "[0"), ("1)" if high_open else "1]")
        raise ConfigError(f"{name} must be a number in {lo}, {hi}, not {value!r}.")


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


_RUN_LOGS: dict[Path, logging.Handler] = {}


def _attach_run_log(path: Path) -> logging.Handler:
    """One log file per run folder, the same whether started from a notebook or the CLI."""
    path = path.resolve()
    if path not in _RUN_LOGS:
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(message)s"))
        logger = logging.getLogger("hpo_nb")
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        _RUN_LOGS[path] = handler
    return _RUN_LOGS[path]
