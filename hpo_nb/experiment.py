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

from . import datasets, records, reopen, space as spaces
from .baseline import BASELINE_ATTR, baseline_of, small_validation
from .errors import ConfigError
from .executors.base import Backend, Executor, backend as executor_backend
from .progress import ProgressHub, Renderer, Snapshot
from .background import Background
from .evaluation import TestSplitResults
from .diagnostic_results import DiagnosticsResults
from .running import SearchControl
from .results import _views
from .search import Search, shown
from .spec import TrialSpec
from .stored import new_study_notice
from .study import make_pruner, open_study
from .storage import (attach_run_log, clean_url, default_url, mask_url, open_storage, quiet_optuna,
                      refuse_orphaned_models)
from .values import check_int, grace_period, plain

log = logging.getLogger("hpo_nb")

PROGRESS = ("auto", "notebook", "console", "none")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class Experiment(SearchControl, DiagnosticsResults, TestSplitResults):
    """A hyperparameter search over Keras CNNs (images) or LSTMs (text), optimized with
    Optuna's TPE sampler, shown live while it runs, and kept in Optuna storage.

    Creating one checks every setting, loads the dataset and opens (or resumes) the study;
    nothing trains until ``run()`` or ``start()``. Reopening a study needs only its ``name`` (and
    ``storage``): a study setting left out (None) takes the value the study recorded, one given
    must match it. Results (``results``, ``best``, ``trial()``, ``best_model()``,
    ``importance()``, the drawings) are read from storage (``StudyResults``), so they include
    trials of earlier runs and of other processes sharing the study.

    Args:
        dataset: a registered name (``hpo_nb.datasets.names()``: "digits", "mnist", ...) or a
            ``Dataset`` (``from_arrays``, ``from_idx``, ``from_text_lines``, ...). Images get a
            CNN search space, text an LSTM one. Default None: "digits" for a new study, the
            recorded one for a reopened one (your own data must be passed again).
        mode: "simple" maximizes validation accuracy (or ``metric``); "health" maximizes
            ``accuracy_weight * accuracy + (1 - accuracy_weight) * health_score``. Default None:
            "simple" for a new study, the recorded mode for a reopened one.
        n_trials: trials to run, >= 1; shared by every process on the study, and counting
            the trials a resumed study already ran (stopped trials do not count). Default None:
            20 for a new study; a reopened one keeps its recorded budget (that of its last
            search started with an explicit ``n_trials``, which extends or shrinks it).
        max_epochs: epochs per trial, >= 1 (pruning may end a trial earlier). Default None: 10
            for a new study, the recorded value for a reopened one.
        concurrency: trials running at once in this process, >= 1.
        executor: "local" (threads of this process), "runpod" (RunPod serverless jobs;
            ``runpod=`` holds its options), or an ``Executor`` instance.
        distribution: None (one device per trial) or "mirrored" (each trial under
            ``tf.distribute.MirroredStrategy`` over its devices).
        storage: an Optuna storage URL ("sqlite:///...", "postgresql://user:pw@host/db");
            default: the SQLite file ``<runs_dir>/<name>/study.db``.
        name: the study and run-folder name (letters, digits, ".", "_", "-"; up to 100
            characters); default "<dataset>-<mode>". The same name resumes the study; a new one
            given without a dataset beside other studies is said (a ``UserWarning``: a typo?).
        seed: >= 0; fixes the validation split, the sampler and each trial's seed. Default None:
            0 for a new study, the recorded seed for a reopened one.
        search_space: narrows or fixes hyperparameters: a list is a choice, a (low, high)
            tuple a range, a single value fixed. Default None: the modality's full space for a
            new study, the recorded space for a reopened one.
        sample_fraction: fraction of the training split each trial trains on, in (0, 1]
            (stratified). Default None: 1.0 for a new study, the recorded value for a reopened one.
        validation_fraction: fraction of the data held out for validation, in (0, 1). Default
            None: 0.2 for a new study, the recorded value for a reopened one.
        accuracy_weight: weight of accuracy in the health-mode score, in [0, 1]. Default None:
            0.7 for a new study, the recorded weight for a reopened one (a health study records
            it, as it records its mode: scores weighed otherwise would not be comparable).
        health_weights: relative weights (>= 0, not all 0) of the health metrics
            (``hpo_nb.health.METRICS``) in the health score. Default None: equal weights for a
            new study, the recorded ones for a reopened one (only their proportions count).
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
            drawn, in [0, 1); default None: for a new study the dataset's official test split,
            else 0.2 (fixed seed); for a reopened one, the recorded fraction. ``evaluate()``
            scores the chosen model on it; no trial ever sees it.
        metric: what a trial is scored on, on the validation split: "accuracy" or
            "balanced_accuracy" (the mean of per-class recalls: always answering the majority class
            scores 1/K, so imbalanced classes cannot be "solved" that way). Default None:
            "accuracy" for a new study, the recorded metric for a reopened one. Computed each epoch
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
            opened, or a study of that name exists with another dataset, mode, score weights, seed or fraction
            given here (the message names each, and what to pass).
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
        dataset: str | datasets.Dataset | None = None,
        mode: str | None = None,
        n_trials: int | None = None,
        max_epochs: int | None = None,
        concurrency: int = 1,
        executor: str | Executor = "local",
        distribution: str | None = None,
        storage: str | None = None,
        name: str | None = None,
        seed: int | None = None,
        *,
        search_space: Mapping[str, Any] | None = None,
        sample_fraction: float | None = None,
        validation_fraction: float | None = None,
        accuracy_weight: float | None = None,
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
        metric: str | None = None,
        diagnostics: bool = True,
        artifact_store: str | Path | Any = None,
    ) -> None:
        # None: not given; a reopened study's recorded value, else reopen.DEFAULTS (a new study's)
        given = reopen.check_given({
            "dataset": dataset, "mode": mode, "seed": seed, "max_epochs": max_epochs, "metric": metric,
            "sample_fraction": sample_fraction, "validation_fraction": validation_fraction,
            "test_fraction": test_fraction, "accuracy_weight": accuracy_weight, "health_weights": health_weights})
        if n_trials is not None:  # None: 20 for a new study, the recorded budget for a reopened one
            check_int("n_trials", n_trials, 1)
        check_int("concurrency", concurrency, 1)
        check_int("heartbeat_interval", heartbeat_interval, 1)
        n_trials, concurrency, heartbeat_interval = plain(n_trials), plain(concurrency), plain(heartbeat_interval)
        # A name picks a registered backend (executors.base); an Executor instance runs as it is.
        self._backend: Backend | None = None if isinstance(executor, Executor) else executor_backend(executor)
        if distribution not in (None, "mirrored"):
            raise ConfigError(f"distribution must be None or 'mirrored', not {distribution!r}.")
        if progress not in PROGRESS and not callable(progress):
            raise ConfigError("progress must be 'auto', 'notebook', 'console', 'none' or a callable(snapshot).")
        if test is not None and (not isinstance(dataset, datasets.Dataset) or test_fraction is not None):
            raise ConfigError(
                "test=(x_test, y_test) goes with your own data (a Dataset, e.g. datasets.from_arrays(x, y)) "
                "and without test_fraction; registered datasets bring their own test split or hold one out."
            )
        # A registered name loads after the study's settings are read (a conflict is told before a
        # download); your own data, or an unknown name, now: a missing dataset fails before training.
        if dataset is not None and not (isinstance(dataset, str) and datasets.is_registered(dataset)):
            self._load_dataset(dataset, test)
        named = dataset if isinstance(dataset, str) else self.dataset.name if dataset is not None else \
            reopen.DEFAULTS["dataset"]
        self.name = name or f"{named}-{mode or reopen.DEFAULTS['mode']}"
        if not _NAME_RE.match(self.name):
            raise ConfigError(
                f"name {self.name!r} must start with a letter or digit and use only letters, digits, '.', '_' "
                "or '-' (it names the run folder and the study)."
            )
        self.run_dir = Path(runs_dir) / self.name
        if storage is not None:
            storage = clean_url(storage)
        # Running trials beat every heartbeat_interval s; one silent for grace_period s belongs to a
        # dead process: it is failed and retried (by whichever process sharing the study sees it first).
        self.heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period(heartbeat_interval)  # 6 beats + 1 s (values.py)
        self._storage_url = storage
        # An existing study's settings stand in for those not given (a new default-storage one creates nothing yet).
        self._storage = self._open_storage() if storage is not None or (self.run_dir / "study.db").exists() else None
        recorded = reopen.recorded_settings(self._storage, self.name) if self._storage is not None else {}
        reopen.refuse_given(self.name, recorded, given)  # a given setting the study differs from, before any data
        if name is not None and dataset is None and not recorded:  # a typo would start a default search
            new_name = new_study_notice(self.name, self._storage, self._storage_url, Path(runs_dir))
            if new_name:
                log.warning(new_name)
                warnings.warn(new_name, UserWarning, stacklevel=2)
        if isinstance(dataset, str) and datasets.is_registered(dataset):
            self._load_dataset(dataset, test)
        # your own test data (test=) stands for the held-out fraction: none of it to adopt
        s = reopen.adopt(given, {k: v for k, v in recorded.items() if test is None or k != "test_fraction"})
        if dataset is None:
            self._load_dataset(reopen.adopted_dataset(recorded), None)
        if search_space is None:
            search_space = reopen.adopted_space(recorded, self.dataset.modality)
        mode, seed, max_epochs, sample_fraction = s["mode"], s["seed"], s["max_epochs"], s["sample_fraction"]
        validation_fraction = s["validation_fraction"]
        # Held out before validation is drawn; evaluate() scores the chosen model on it.
        self.test_fraction = self.dataset.resolve_test_fraction(s["test_fraction"], strict=True)
        n_train = int(len(self.dataset.x) * (1 - self.test_fraction) * (1 - validation_fraction) * sample_fraction)
        self.space = reopen.recorded_order(spaces.build_space(self.dataset.modality, search_space, n_train=n_train,
                                                              input_shape=self.dataset.input_shape), recorded)
        self.mode = mode
        self.metric = s["metric"]
        self._set_baseline(validation_fraction, seed)
        self.n_trials = n_trials
        self.max_epochs = max_epochs
        self.concurrency = concurrency
        self.distribution = distribution
        self.seed = seed
        self.sample_fraction = float(sample_fraction)
        self.validation_fraction = float(validation_fraction)
        self.accuracy_weight = float(s["accuracy_weight"])
        self.health_weights = dict(s["health_weights"]) if s["health_weights"] else None
        self.pruning = pruning
        self._pruner = make_pruner(pruner if pruning else "none", max_epochs)
        self.save_models = save_models
        if not isinstance(diagnostics, bool):
            raise ConfigError(f"diagnostics must be True or False, not {diagnostics!r}.")
        self.diagnostics = diagnostics
        self._artifact_location = artifact_store
        self._progress_choice = progress
        if artifact_store is not None:  # a bad one fails here, before any training
            from .diagnostics.store import open_store

            open_store(artifact_store, self.run_dir)
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

        if self._storage is None:  # refused next to an earlier study's models before study.db is created
            refuse_orphaned_models(None, self.name, self.run_dir / "models")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._log_handler = attach_run_log(self.run_dir / "run.log")
        if self._storage is None:
            self._storage = self._open_storage()
        with quiet_optuna():  # Optuna's chatter and experimental warnings, only while opening
            self.study = self._open_study()
        # Until start(): the stored study as a search that is not running (what exp.dashboard() shows).
        self.hub = ProgressHub(self.n_trials, mode, concurrency)
        self.hub.add_finished(records.finished_trials(self._stored_trials(), shown))
        self.hub.close()
        self._background: Background | None = None
        self._search: Search | None = None
        self._error: BaseException | None = None
        self._renderers: list[Renderer] = []
        log.info("experiment %s ready: dataset=%s mode=%s n_trials=%d storage=%s%s", self.name, self.dataset.name,
                 mode, self.n_trials, mask_url(storage or default_url(self.run_dir)),
                 " (settings not given: the study's)" if recorded else "")

    # ------------------------------------------------------------------ set-up

    def _load_dataset(self, dataset: str | datasets.Dataset, test: tuple[Any, Any] | None) -> None:
        self.dataset = datasets.load(dataset)
        if test is not None:  # the user's own held-out data: the search never sees it
            self.dataset = self.dataset.with_test(*datasets.as_test_pair(test))
        if isinstance(dataset, datasets.Dataset):
            datasets.attach(self.dataset)

    def _open_storage(self) -> Any:
        with quiet_optuna():  # Optuna's chatter and experimental warnings, only while opening
            return open_storage(self._storage_url or default_url(self.run_dir),
                                heartbeat_interval=self.heartbeat_interval, grace_period=self._grace_period)

    def _set_baseline(self, validation_fraction: float, seed: int) -> None:
        """The validation split's majority-class rate (``baseline``), and a ``UserWarning`` when the
        split is too small to rank trials (``baseline.small_validation``; ``start()`` logs it)."""
        y_val = self.dataset.validation_labels(validation_fraction, seed, self.test_fraction)
        self.baseline = baseline_of(y_val, self.dataset.num_classes, self.dataset.class_names)
        small = self._small_validation = small_validation(len(y_val))
        if small:
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
        recorded = reopen.records(self)
        study, self._incomparable, self.n_trials = open_study(
            self._storage, self.name, n_trials=self.n_trials, seed=self.seed, concurrency=self.concurrency,
            pruner=self._pruner, modality=self.dataset.modality, space=self.space, **recorded)
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

    # ------------------------------------------------------------------ rendering

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
