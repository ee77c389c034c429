"""``Experiment``: the facade. It checks settings, opens the Optuna study (what to try), and
hands a search to ``search.Search`` (the ask -> launch -> finish loop) on an executor chosen
from ``executors.base``'s registry (how to run it). Results come back from storage. No training,
no loop and no drawing code here; no backend names either."""

from __future__ import annotations

import dataclasses
import logging
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import optuna

from . import datasets, health, objective, records, space as spaces, trial_memory
from .baseline import BASELINE_ATTR, baseline_of, small_validation
from .errors import ConfigError
from .executors.base import Backend, Executor, backend as executor_backend
from .progress import Notice, ProgressHub, Renderer, Snapshot
from .background import Background
from .evaluation import TestSplitResults
from .diagnostic_results import DiagnosticsResults
from .results import _views
from .search import Search, shown
from .spec import TrialSpec
from .study import make_pruner, open_study, record_budget
from .storage import (attach_run_log, default_url, mask_url, open_storage, quiet_optuna, refuse_orphaned_models,
                      validate_url)
from .values import check_choice, check_fraction, check_int, grace_period

log = logging.getLogger("hpo_nb")

MODES = ("simple", "health")
PROGRESS = ("auto", "notebook", "console", "none")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class Experiment(DiagnosticsResults, TestSplitResults):
    """A hyperparameter search over Keras CNNs (images) or LSTMs (text), optimized with
    Optuna's TPE sampler, shown live while it runs, and kept in Optuna storage.

    Creating one checks every setting, loads the dataset and opens (or resumes) the study;
    nothing trains until ``run()`` or ``start()``. Results (``results``, ``best``, ``trial()``,
    ``best_model()``, ``importance()``, the drawings) are read from storage (``StudyResults``),
    so they include trials of earlier runs and of other processes sharing the study.

    Args:
        dataset: a registered name (``hpo_nb.datasets.names()``: "digits", "mnist", ...) or a
            ``Dataset`` (``from_arrays``, ``from_idx``, ``from_text_lines``, ...). Images get a
            CNN search space, text an LSTM one.
        mode: "simple" maximizes validation accuracy (or ``metric``); "health" maximizes
            ``accuracy_weight * accuracy + (1 - accuracy_weight) * health_score``.
        n_trials: trials to run, >= 1; shared by every process on the study, and counting
            the trials a resumed study already ran (stopped trials do not count). Default None:
            20 for a new study; a reopened one keeps its recorded budget (that of its last
            search started with an explicit ``n_trials``, which extends or shrinks it).
        max_epochs: epochs per trial, >= 1 (pruning may end a trial earlier).
        concurrency: trials running at once in this process, >= 1.
        executor: "local" (threads of this process), "runpod" (RunPod serverless jobs;
            ``runpod=`` holds its options), or an ``Executor`` instance.
        distribution: None (one device per trial) or "mirrored" (each trial under
            ``tf.distribute.MirroredStrategy`` over its devices).
        storage: an Optuna storage URL ("sqlite:///...", "postgresql://user:pw@host/db");
            default: the SQLite file ``<runs_dir>/<name>/study.db``.
        name: the study and run-folder name (letters, digits, ".", "_", "-"; up to 100
            characters); default "<dataset>-<mode>". The same name resumes the study.
        seed: >= 0; fixes the validation split, the sampler and each trial's seed.
        search_space: narrows or fixes hyperparameters: a list is a choice, a (low, high)
            tuple a range, a single value fixed. Default: the modality's full space.
        sample_fraction: fraction of the training split each trial trains on, in (0, 1]
            (stratified).
        validation_fraction: fraction of the data held out for validation, in (0, 1).
        accuracy_weight: weight of accuracy in the health-mode score, in [0, 1].
        health_weights: relative weights (>= 0, not all 0) of the health metrics
            (``hpo_nb.health.METRICS``) in the health score; default: equal.
        pruning: False turns pruning off whatever ``pruner`` says.
        devices: device names ("/gpu:0", "/cpu:1", ...) to spread trials over or mirror over;
            default: TensorFlow's default device (every GPU when mirrored or with ``gpus_per_trial``).
        gpus_per_trial: devices each trial gets (>= 1): with ``concurrency`` trials side by
            side, or the GPUs of each RunPod worker when mirrored.
        runpod: options of the "runpod" executor (``endpoint_id``, ``api_key``, ``budget_usd``,
            ``price_per_second``, ...; see ``hpo_nb.executors.runpod.RunPodSettings``); checked
            here, before anything trains.
        pruner: "none" (default), "median" (Optuna's MedianPruner after 3 trials, from epoch 2
            on), "hyperband" (Optuna's HyperbandPruner from 1 epoch to ``max_epochs``), or any
            ``optuna.pruners.BasePruner``. A pruned trial still counts toward ``n_trials``, so
            pruning trades accuracy for time: on digits (12 trials x 5 epochs, seeds 0-4) the
            median rule cut the search's time by about a third and its mean best validation
            accuracy from 0.995 to 0.989 (benchmarks/RESULTS.md, "Search quality"). No pruner
            stops a trial after its last epoch.
        test_fraction: fraction of every class held out as the test split before validation is
            drawn, in [0, 1); default None: the dataset's official test split, else 0.2 (fixed
            seed). ``evaluate()`` scores the chosen model on it; no trial ever sees it.
        metric: what a trial is scored on, on the validation split: "accuracy" (default) or
            "balanced_accuracy" (the mean of per-class recalls: always answering the majority class
            scores 1/K, so imbalanced classes cannot be "solved" that way). Computed each epoch
            inside the training path (local and RunPod alike); the best epoch by it is kept.
        test: ``(x_test, y_test)``, your own held-out data for your own ``Dataset`` (raw
            samples and labels like those it was built from), instead of ``test_fraction``.
        runs_dir: folder for run folders (study database, ``run.log``, saved models).
        save_models: save each complete trial's model (``.keras``) under the run folder, for
            ``best_model()``.
        progress: "auto" (dashboard in Jupyter, console bars elsewhere), "notebook",
            "console", "none", or a callable ``f(snapshot)`` called about 5 times a second.
        diagnostics: measure per-trial diagnostics while training (gradient norms per layer and
            weight histograms per epoch, the validation confusion matrix, activation maps;
            ``plot_gradient_flow()`` and friends draw them). False saves their cost (under 5 %
            of a trial's time, benchmarks/diagnostics_cost.py).
        artifact_store: where trials' activation arrays go (the only diagnostics kept outside the
            study's database): None, ``<run folder>/artifacts``; a folder (str or Path) that
            every machine sharing the study mounts; or an ``optuna.artifacts`` store (e.g.
            ``Boto3ArtifactStore``). The study records a folder store's absolute path (of any
            other store only its type), so a reader on the same storage finds the arrays without
            ``artifact_store=`` wherever that folder exists; given, it is the only store read.
        heartbeat_interval: seconds between heartbeats of running trials, >= 1. A trial silent
            for ``6 * heartbeat_interval + 1`` s belongs to a dead process: it is failed and
            retried by a process sharing the study (or the next run), resuming from its last
            completed epoch (``runs/<name>/checkpoints/``), or, for a RunPod job, followed to
            its end on the original trial.

    Raises:
        ConfigError: a setting is invalid, the dataset cannot be loaded, the storage cannot be
            opened, or a study of that name exists with another dataset or mode.
        DatasetUnavailableError: a registered dataset needs a download that failed.

    Attributes:
        dataset (Dataset): the loaded dataset.
        baseline (hpo_nb.baseline.Baseline): the validation split's majority-class rate (what
            always answering the most common class scores), shown beside accuracy.
        n_trials (int): the budget in effect (the given one, 20, or the reopened study's).
        space (dict): the search space in effect.
        study (optuna.Study): the study (ask/tell; ``optuna-dashboard`` can open its storage).
        hub (ProgressHub): the live progress of the current (or last) search.
        run_dir (pathlib.Path): ``<runs_dir>/<name>``.
    """

    def __init__(
        self,
        dataset: str | datasets.Dataset = "digits",
        mode: str = "simple",
        n_trials: int | None = None,
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
        pruner: str | optuna.pruners.BasePruner = "none",
        devices: list[str] | None = None,
        gpus_per_trial: int | None = None,
        runpod: Mapping[str, Any] | None = None,
        runs_dir: str | Path = "runs",
        save_models: bool = True,
        progress: str | Callable[[Snapshot], None] = "auto",
        heartbeat_interval: int = 5,
        test_fraction: float | None = None,
        test: tuple[Any, Any] | None = None,
        metric: str = "accuracy",
        diagnostics: bool = True,
        artifact_store: str | Path | Any = None,
    ) -> None:
        check_choice("mode", mode, MODES)
        objective.check_metric(metric)
        if n_trials is not None:  # None: 20 for a new study, the recorded budget for a reopened one
            check_int("n_trials", n_trials, 1)
        check_int("max_epochs", max_epochs, 1)
        check_int("concurrency", concurrency, 1)
        check_int("seed", seed, 0)
        check_int("heartbeat_interval", heartbeat_interval, 1)
        check_fraction("sample_fraction", sample_fraction, low_open=True)
        check_fraction("validation_fraction", validation_fraction, low_open=True, high_open=True)
        check_fraction("accuracy_weight", accuracy_weight)
        health.validate_weights(health_weights)
        # A name picks a registered backend (executors.base); an Executor instance runs as it is.
        self._backend: Backend | None = None if isinstance(executor, Executor) else executor_backend(executor)
        if distribution not in (None, "mirrored"):
            raise ConfigError(f"distribution must be None or 'mirrored', not {distribution!r}.")
        if progress not in PROGRESS and not callable(progress):
            raise ConfigError("progress must be 'auto', 'notebook', 'console', 'none' or a callable(snapshot).")

        self.dataset = datasets.load(dataset)  # loads now: a missing dataset fails before training
        if test is not None:  # the user's own held-out data: the search never sees it
            if not isinstance(dataset, datasets.Dataset) or test_fraction is not None:
                raise ConfigError(
                    "test=(x_test, y_test) goes with your own data (a Dataset, e.g. datasets.from_arrays(x, y)) "
                    "and without test_fraction; registered datasets bring their own test split or hold one out."
                )
            dataset = self.dataset = self.dataset.with_test(*datasets.as_test_pair(test))
        if isinstance(dataset, datasets.Dataset):
            datasets.attach(dataset)
        # Held out before validation is drawn; evaluate() scores the chosen model on it.
        self.test_fraction = self.dataset.resolve_test_fraction(test_fraction, strict=True)
        n_train = int(len(self.dataset.x) * (1 - self.test_fraction) * (1 - validation_fraction) * sample_fraction)
        self.space = spaces.build_space(self.dataset.modality, search_space, n_train=n_train,
                                        input_shape=self.dataset.input_shape)
        self.mode = mode
        self.metric = metric
        self._set_baseline(validation_fraction, seed)
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
        self._pruner = make_pruner(pruner if pruning else "none", max_epochs)
        self.save_models = save_models
        if not isinstance(diagnostics, bool):
            raise ConfigError(f"diagnostics must be True or False, not {diagnostics!r}.")
        self.diagnostics = diagnostics
        self._artifact_location = artifact_store
        self._progress_choice = progress
        self.name = name or f"{self.dataset.name}-{mode}"
        if not _NAME_RE.match(self.name):
            raise ConfigError(
                f"name {self.name!r} must start with a letter or digit and use only letters, digits, '.', '_' "
                "or '-' (it names the run folder and the study)."
            )
        self.run_dir = Path(runs_dir) / self.name
        if artifact_store is not None:  # a bad one fails here, before any training
            from .diagnostics.store import open_store

            open_store(artifact_store, self.run_dir)
        if storage is not None:
            validate_url(storage)
        self._storage_url = storage
        self._executor_choice = executor
        # Each backend's options come from the constructor argument of its name (runpod=...).
        self._executor_options: dict[str, Any] = {}
        if self._backend is not None:
            # Checked now (a missing key or bad option fails before training) and kept as checked:
            # a key stays wrapped (SecretStr), never in plain text on this object.
            self._executor_options = self._backend.check(dict({"runpod": runpod}.get(self._backend.name) or {}))
        self._device_groups = self._plan_devices(distribution, devices, gpus_per_trial)
        if self._backend is not None and self._backend.remote and not datasets.is_registered(self.dataset.name):
            raise ConfigError(
                f"executor={self._backend.name!r} workers load datasets by registered name; your dataset lives only in this "
                f"process. Use executor='local', or a registered dataset ({', '.join(datasets.names())})."
            )

        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._log_handler = attach_run_log(self.run_dir / "run.log")
        # Running trials beat every heartbeat_interval s; one silent for grace_period s belongs to a
        # dead process: it is failed and retried (by whichever process sharing the study sees it first).
        self.heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period(heartbeat_interval)  # 6 beats + 1 s (values.py)
        with quiet_optuna():  # Optuna's chatter and experimental warnings, only while opening
            self._storage = open_storage(storage or default_url(self.run_dir), heartbeat_interval=heartbeat_interval,
                                         grace_period=self._grace_period)
            self.study = self._open_study()
        # Until start(): the stored study as a search that is not running (what exp.dashboard() shows).
        self.hub = ProgressHub(self.n_trials, mode, concurrency)
        self.hub.add_finished(records.finished_trials(self._stored_trials(), shown))
        self.hub.close()
        self._background: Background | None = None
        self._search: Search | None = None
        self._error: BaseException | None = None
        self._renderers: list[Renderer] = []
        log.info("experiment %s ready: dataset=%s mode=%s n_trials=%d storage=%s", self.name, self.dataset.name,
                 mode, self.n_trials, mask_url(storage or default_url(self.run_dir)))

    # ------------------------------------------------------------------ set-up

    def _set_baseline(self, validation_fraction: float, seed: int) -> None:
        """The validation split's majority-class rate (``baseline``), and a warning (log and
        ``UserWarning``) when the split is too small to rank trials (``baseline.small_validation``)."""
        y_val = self.dataset.validation_labels(validation_fraction, seed, self.test_fraction)
        self.baseline = baseline_of(y_val, self.dataset.num_classes, self.dataset.class_names)
        small = self._small_validation = small_validation(len(y_val))
        if small:
            log.warning("dataset %s: %s", self.dataset.name, small)
            warnings.warn(f"hpo-nb: {small}", UserWarning, stacklevel=3)

    def _plan_devices(self, distribution: str | None, devices: list[str] | None,
                      gpus_per_trial: int | None) -> list[tuple[str, ...]] | None:
        from .devices import plan_device_groups, remote_devices

        self._spec_devices = None
        if self._backend is None:  # an Executor instance places its trials itself
            return None
        if self._backend.remote:  # each worker mirrors over its own GPUs (TrialSpec.devices)
            self._spec_devices = remote_devices(distribution, devices, gpus_per_trial)
            return None
        return plan_device_groups(distribution, devices, gpus_per_trial, self.concurrency)

    def _open_study(self) -> optuna.Study:
        refuse_orphaned_models(self._storage, self.name, self.run_dir / "models")
        study, self._incomparable, self.n_trials = open_study(
            self._storage, self.name, n_trials=self.n_trials, seed=self.seed, concurrency=self.concurrency,
            pruner=self._pruner, modality=self.dataset.modality, space=self.space,
            settings={"dataset": self.dataset.name, "mode": self.mode, "modality": self.dataset.modality},
            split={"test_fraction": self.test_fraction, "validation_fraction": self.validation_fraction,
                   "sample_fraction": self.sample_fraction},
            comparable={"fingerprint": self.dataset.fingerprint, "max_epochs": self.max_epochs, "metric": self.metric,
                        "search_space": {k: repr(v) for k, v in sorted(self.space.items())}},
        )
        # what `hpo-nb show` (no dataset at hand) tells the search's numbers against, and the class order
        seen = {**dataclasses.asdict(self.baseline), "class_names": self._class_names()}
        if study.user_attrs.get(BASELINE_ATTR) != seen:
            study.set_user_attr(BASELINE_ATTR, seen)
        return study

    def _make_executor(self) -> Executor:
        if self._backend is None:
            return self._executor_choice  # type: ignore[return-value]  # an Executor instance
        return self._backend.create(self.concurrency, self._device_groups, self._executor_options)

    def _spec_for(self, number: int, params: dict[str, Any]) -> TrialSpec:
        """What trial ``number`` trains with ``params``: the search loop asks for each trial's spec."""
        return TrialSpec(
            trial_number=number, dataset=self.dataset.name, params=params, max_epochs=self.max_epochs,
            seed=self.seed, mode=self.mode, sample_fraction=self.sample_fraction,
            validation_fraction=self.validation_fraction, health_weights=self.health_weights,
            accuracy_weight=self.accuracy_weight, devices=self._spec_devices, test_fraction=self.test_fraction,
            metric=self.metric,
            diagnostics=self.diagnostics,
        )

    def _new_search(self) -> Search:
        return Search(
            self.study, self._storage, self._make_executor(), self.hub, n_trials=self.n_trials,
            concurrency=self.concurrency, suggest=lambda trial: spaces.suggest(trial, self.space),
            spec_for=self._spec_for, pruning=self.pruning,
            model_dir=self.run_dir / "models" if self.save_models else None,
            checkpoint_dir=self.run_dir / "checkpoints", heartbeat_interval=self.heartbeat_interval, grace_period=self._grace_period,
            artifact_store=self._artifact_store() if self.diagnostics else None,
        )

    # ------------------------------------------------------------------ running

    def run(self) -> None:
        """Run the search and block until it ends, showing live progress.

        Ctrl+C (or the dashboard's Stop button) stops it cleanly: running trials end within
        one batch and are recorded as stopped; every completed trial is kept. After Ctrl+C the
        KeyboardInterrupt is raised again once every trial is recorded, so a script ends as an
        interrupted one would (no trial is left RUNNING). Returns None, so a cell ending in
        ``exp.run()`` shows the dashboard and not a repr under it.

        Raises:
            RuntimeError: the experiment is already running.
            KeyboardInterrupt: Ctrl+C, after the search has stopped and recorded its trials.
            Exception: whatever broke the search itself (e.g. the storage went away); a trial
                that fails is recorded as failed, not raised.
        """
        self.start()
        try:
            self.wait()
            self._evaluate_after_run()  # one predict on the test split: the honest number, shown at once
        except KeyboardInterrupt:
            log.warning("interrupted: stopping the search")
            self.stop()
            raise

    def start(self) -> "Experiment":
        """Start the search in a background thread and return at once; the dashboard keeps
        updating while the kernel stays free.

        Returns:
            Experiment: this experiment, so ``exp.start().wait()`` chains.

        Raises:
            RuntimeError: the experiment is already running; call ``wait()`` or ``stop()`` first.
            ConfigError: the executor cannot be created from its options, or the study was searched
                with another max_epochs or search space (new trials would not be comparable).
        """
        if self.running:
            raise RuntimeError("this experiment is already running; call wait() or stop() first.")
        if getattr(self, "_incomparable", None):  # reopened with other settings: adding trials would mix them
            raise ConfigError(self._incomparable)
        self._error = None
        record_budget(self.study, self.n_trials)  # a later reopen without n_trials shows this budget
        self.hub = ProgressHub(self.n_trials, self.mode, self.concurrency)
        self.hub.add_finished(records.finished_trials(self._stored_trials(), shown))
        if self._small_validation:  # on the dashboard and the console too, not only under the cell
            self.hub.publish(Notice(self._small_validation))
        self._search = self._new_search()
        self._attach_renderer()
        search = self._search
        self._background = Background(lambda: self._search_thread(search), "hpo-nb-search").start()
        return self

    def wait(self, timeout: float | None = None) -> "Experiment":
        """Block until the search ends, or ``timeout`` seconds pass.

        Args:
            timeout: seconds to wait at most (>= 0); None: until the search ends.

        Returns:
            Experiment: this experiment.

        Raises:
            Exception: what broke the search, once it has ended (raised once).
        """
        # Not Thread.join/is_alive: Ctrl+C inside join can make a running thread look ended (background.py).
        if self._background is not None and not self._background.wait(timeout):
            return self
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        return self

    def stop(self, wait: bool = True) -> "Experiment":
        """Stop the search: no new trials; running ones end within one batch and are recorded
        as stopped (they do not count toward ``n_trials``). Completed trials stay in storage.

        Args:
            wait: block until the search thread has ended and every running trial is recorded
                (``wait()``; a Ctrl+C meanwhile is absorbed twice, the third is raised); False
                returns at once (what the Stop button does).

        Returns:
            Experiment: this experiment.

        Raises:
            KeyboardInterrupt: a third Ctrl+C while waiting (the search goes on stopping).
            Exception: what broke the search, as ``wait()``.
        """
        if self._search is not None:
            self._search.stop()
        elif not self.hub.snapshot().done:
            self.hub.set_stopping()
        if wait:
            for left in (2, 1, 0):  # Ctrl+C while stopping: keep waiting for the record, twice
                try:
                    self.wait()
                    break
                except KeyboardInterrupt:
                    if not left:
                        raise
                    log.warning("still recording the running trials (they end within one batch); "
                                "interrupt %d more time(s) to stop waiting", left)
        return self

    @property
    def running(self) -> bool:
        """True while a search started by ``run()`` or ``start()`` is going on."""
        return self._background is not None and not self._background.done

    def _search_thread(self, search: Search) -> None:
        try:
            # Optuna at WARNING, experimental warnings off, and cheap collections between this
            # search's trials (trial_memory): for the search only, restored when it ends.
            with quiet_optuna(), trial_memory.search():
                search.run()
        except BaseException as exc:  # surfaced by wait()
            log.exception("search failed")
            self._error = exc
        finally:
            try:  # every trial failed; the best did not beat the majority class
                for message in self._search_warnings():
                    log.warning("%s", message)
                    self.hub.publish(Notice(message))
            except Exception:  # the storage went away: what broke the search is the error to show
                log.exception("could not read the finished search back")
            self.hub.close()
            for r in self._renderers:
                close = getattr(r, "close", None)
                if close:
                    close()

    # ------------------------------------------------------------------ rendering

    def _attach_renderer(self) -> None:
        choice = self._progress_choice
        renderer = choice if callable(choice) else None if choice == "none" else _views().renderer_for(self, choice)
        self._renderers = []
        if renderer is not None:
            self._renderers = [renderer]
            self.hub.subscribe(renderer, max_hz=5.0)

    def dashboard(self) -> Renderer:
        """Display the live dashboard (again) in a notebook; it follows this experiment while
        the search runs, and shows the final result after it.

        Returns:
            Renderer: the displayed ``hpo_nb.views.dashboard.Dashboard`` (its ``root`` is an
            ``ipywidgets.VBox``).
        """
        return _views().dashboard_for(self, attach=True)

    def __repr__(self) -> str:
        return (f"Experiment(name={self.name!r}, dataset={self.dataset.name!r}, mode={self.mode!r}, "
                f"n_trials={self.n_trials}, max_epochs={self.max_epochs}, concurrency={self.concurrency}, "
                f"executor={self._executor_choice if isinstance(self._executor_choice, str) else self._executor_choice.name!r})")
