"""``hpo-nb``: the terminal twin of ``Experiment``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import NoReturn, Sequence

from .datafile import cli_words, dataset_from_args, options as _data_options
from .errors import HpoNbError
from .values import GRACE_BEATS, OBJECTIVE_METRICS


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (``hpo-nb: error: ...``) and exit code 2, like ours."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"hpo-nb: error: {message} (see {self.prog} --help)\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless its help already says it or there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False or action.default == argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


SPACE_HELP = ("JSON overrides of the search space: a value fixes a parameter, a list (or {\"choice\": [...]}) is a "
              'choice, {"range": [lo, hi]} is a range (float where the parameter is a float, keeping its scale: '
              'learning_rate is log-scaled), e.g. \'{"conv_blocks": [1, 2], "learning_rate": {"range": [1e-4, 1e-2]}}\'')


KEPT = " for a new study; resuming one keeps its own"  # a study setting left out is the study's (reopen.py)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hpo-nb", description="Hyperparameter search for Keras models, with live progress.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run (or resume) a search", formatter_class=_Help)
    run.add_argument("--dataset", default=None, help=f"registered dataset name (default: digits{KEPT})")
    _data_options(run)
    run.add_argument("--trials", type=int, default=None,
                     help="number of trials (n_trials); resuming a study without it keeps its stored budget, "
                          "giving it extends that (default: 20)")
    run.add_argument("--mode", default=None, choices=["simple", "health"],
                     help=f"simple (accuracy) or health (accuracy + model health) (default: simple{KEPT})")
    run.add_argument("--metric", default=None, choices=OBJECTIVE_METRICS,
                     help="what trials are scored on, on the validation split (balanced_accuracy: the mean "
                          f"per-class recall, for imbalanced classes; default: accuracy{KEPT})")
    run.add_argument("--max-epochs", type=int, default=None, help=f"epochs per trial at most (default: 10{KEPT})")
    run.add_argument("--accuracy-weight", type=float, default=None, metavar="W",
                     help="health mode: the score is W x accuracy + (1 - W) x health score, W in [0, 1] "
                          f"(default: 0.7{KEPT})")
    run.add_argument("--concurrency", type=int, default=1, help="trials running at once")
    run.add_argument("--executor", default="local", help="local or runpod")
    run.add_argument("--distribution", default=None, choices=["mirrored"],
                     help="mirrored: MirroredStrategy over --devices (default: none, one device per trial)")
    run.add_argument("--devices", default=None, help="comma-separated device names, e.g. /gpu:0,/gpu:1 "
                     "(default: TensorFlow's default device; with --distribution, every GPU)")
    run.add_argument("--gpus-per-trial", type=int, default=None,
                     help="devices per trial (default: 1; with --distribution mirrored, the devices split evenly "
                          "over --concurrency)")
    run.add_argument("--storage", default=None,
                     help="Optuna storage URL, e.g. postgresql://user:password@host/db to share the study "
                          "between processes and machines (default: sqlite under runs/NAME/)")
    run.add_argument("--heartbeat-interval", type=int, default=5,
                     help=f"seconds between heartbeats of running trials; a trial silent for {GRACE_BEATS}x this "
                          "(+1 s) is failed and retried (default: 5)")
    run.add_argument("--name", default=None, help="run name: the study and runs/NAME/ (default: DATASET-MODE)")
    run.add_argument("--seed", type=int, default=None,
                     help=f"seeds the sampler, the splits and every trial (default: 0{KEPT})")
    run.add_argument("--sample-fraction", type=float, default=None,
                     help=f"train on this stratified fraction (default: 1.0{KEPT})")
    run.add_argument("--search-space", default=None,
                     help=f"{SPACE_HELP} (default: the full space{KEPT})")
    run.add_argument("--pruner", choices=["none", "median", "hyperband"], default="none",
                     help="stop weak trials early to save time (the budget still counts them; default: none)")
    run.add_argument("--no-pruning", action="store_true", help="same as --pruner none")
    run.add_argument("--no-diagnostics", action="store_true",
                     help="skip per-trial diagnostics (gradient flow, weight histograms, confusion matrix, "
                          "activation maps)")
    run.add_argument("--artifact-store", default=None, metavar="FOLDER",
                     help="folder for the trials' activation arrays, shared by every machine on a shared study "
                          "(default: runs/NAME/artifacts)")
    run.add_argument("--runs-dir", default="runs", help="folder of run folders (study, run.log, models)")
    run.add_argument("--test-fraction", type=float, default=None,
                     help="fraction held out for the final test accuracy when the dataset has no official test "
                          f"split (0: none; default: 0.2{KEPT})")
    run.add_argument("--validation-fraction", type=float, default=None,
                     help=f"fraction of the (non-test) data held out to score trials, in (0, 1) (default: 0.2{KEPT})")
    run.add_argument("--no-evaluate", action="store_true",
                     help="skip the test accuracy of the best trial at the end")
    run.add_argument("--quiet", action="store_true", help="no live progress")

    show = sub.add_parser("show", help="a stored study: its trials, best configuration, test accuracy, model path",
                          formatter_class=_Help)
    show.add_argument("name", help="the study name (hpo-nb run --name)")
    show.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite under RUNS_DIR/NAME/)")
    show.add_argument("--runs-dir", default="runs", help="folder of run folders")
    show.add_argument("--rows", type=int, default=30, help="most trials listed, best first")

    export = sub.add_parser("export", help="copy the best (or a given) trial's saved .keras model to PATH",
                            formatter_class=_Help)
    export.add_argument("name", help="the study name (hpo-nb run --name)")
    export.add_argument("path", help="a .keras file, or an existing folder")
    export.add_argument("--trial", type=int, default=None, help="trial number (default: the best trial)")
    export.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite under RUNS_DIR/NAME/)")
    export.add_argument("--runs-dir", default="runs", help="folder of run folders")
    export.add_argument("--force", action="store_true", help="overwrite PATH when it exists")

    evaluate = sub.add_parser("evaluate", help="the test accuracy of a stored study's best trial (its saved model on "
                              "the held-out test split), stored in the study", formatter_class=_Help)
    evaluate.add_argument("name", help="the study name (hpo-nb run --name)")
    evaluate.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite under RUNS_DIR/NAME/)")
    evaluate.add_argument("--runs-dir", default="runs", help="folder of run folders")
    _data_options(evaluate)  # a study of your own data reads it again (checked against its fingerprint)

    names = sub.add_parser("datasets", help="list registered datasets")
    names.set_defaults(command="datasets")

    local = sub.add_parser("runpod-local", help="loopback RunPod endpoint with local workers (tests, dev)")
    local.add_argument("--workers", type=int, default=2)
    local.add_argument("--port", type=int, default=8765)
    local.add_argument("--host", default="127.0.0.1")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code = _command(args)
        sys.stdout.flush()  # here, where a reader that left (BrokenPipeError) is handled, not at exit
        return code
    except HpoNbError as exc:  # a ConfigError's cli form names the flags rather than Python's arguments
        print(f"hpo-nb: error: {getattr(exc, 'cli', None) or exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `hpo-nb show NAME | head`: the reader left; say nothing (as cat, ls do)
        _quiet_stdout()
        return 141  # 128 + SIGPIPE, the shell's status for a process the pipe ended
    except OSError as exc:  # e.g. a --runs-dir that cannot be created
        print(f"hpo-nb: error: {exc.filename or ''}: {exc.strerror or exc}".replace("error: : ", "error: "),
              file=sys.stderr)
        return 2


def _command(args: argparse.Namespace) -> int:
    if args.command == "datasets":
        return _datasets()
    if args.command == "show":
        return _show(args)
    if args.command == "export":
        return _export(args)
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "runpod-local":
        from .executors.runpod.loopback import serve

        return serve(workers=args.workers, port=args.port, host=args.host)
    return _run(args)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so flushing the closed pipe at exit raises nothing (Python docs,
    "Note on SIGPIPE")."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (e.g. captured): nothing to flush
        pass


def _datasets() -> int:
    from . import datasets

    for name in datasets.names():
        meta = datasets.info(name)
        print(f"{name:14s} {meta.modality:5s} {meta.num_classes:4d} classes  {meta.description}")
    return 0


def _run(args: argparse.Namespace) -> int:
    import warnings

    # hpo-nb's notices (a fix to the data, a small validation split) are logged to stderr already
    warnings.filterwarnings("ignore", message="hpo-nb: ", category=UserWarning)

    space = _search_space(args.search_space)

    from .experiment import Experiment
    from .views.console import ConsoleRenderer, results_table

    exp = Experiment(
        dataset=dataset_from_args(args), mode=args.mode, n_trials=args.trials, max_epochs=args.max_epochs,
        concurrency=args.concurrency, executor=args.executor, distribution=args.distribution,
        storage=args.storage, name=args.name, seed=args.seed, search_space=space,
        sample_fraction=args.sample_fraction, pruning=not args.no_pruning, pruner=args.pruner, runs_dir=args.runs_dir,
        diagnostics=not args.no_diagnostics, artifact_store=args.artifact_store,
        devices=args.devices.split(",") if args.devices else None, gpus_per_trial=args.gpus_per_trial,
        # the summary below has the closing notices; the "!" lines the ones hidden as UserWarnings above
        progress="none" if args.quiet else ConsoleRenderer(closing_notices=False, warned_notices=True),
        heartbeat_interval=args.heartbeat_interval,
        test_fraction=args.test_fraction, metric=args.metric, validation_fraction=args.validation_fraction,
        accuracy_weight=args.accuracy_weight,
    )
    if args.quiet and exp._small_validation:  # quiet hides the live bars (their "!" line), not warnings
        _warn([cli_words(exp._small_validation)])
    # TensorFlow's import runs with fd 2 captured (tf_stderr): done here, before any trial thread,
    # so a Ctrl+C's "stopping" line cannot land inside that capture and be filed with its log.
    import keras  # noqa: F401

    interrupted = False
    exp.start()
    try:
        exp.wait()
    except KeyboardInterrupt:
        interrupted = True
        print("\nhpo-nb: stopping (running trials end within one batch)…", file=sys.stderr)
        exp.stop()
    from rich.console import Console

    from .views.viewmodel import baseline_line
    from .views.console import best_lines

    report = None
    completed = any(t.state == "complete" for t in exp.trials)  # else exp.best below says why (once)
    if not interrupted and not args.no_evaluate and completed:
        try:  # one predict of the selected model on the held-out test split
            report = exp.evaluate(1).selected
        except HpoNbError as exc:
            print(f"hpo-nb: no test accuracy: {exc}", file=sys.stderr)
    Console(width=None if sys.stdout.isatty() else 120).print(results_table(exp.results))
    base = exp.baseline
    print(baseline_line(base.majority_rate, base.majority_class, base.n_val, exp.metric, base.chance_balanced))
    # beside the rate it is about, quiet or not (the live bars' "!" line has scrolled away by now);
    # "all trials failed" is what exp.best raises below
    _warn([m for m in exp._search_warnings() if not m.startswith("all ")])
    code = 130 if interrupted else 0
    try:
        best = exp.best
        from .space import searched

        from .records import stored_report

        # this run's measure, else one stored before (an earlier run's, `hpo-nb evaluate`'s)
        mine = report if report and report.trial == best.number else stored_report(exp.study, best.number)
        for line in best_lines(best, mine.test_accuracy if mine else None, mine.n_test if mine else 0,
                               searched(exp.space), exp.metric, mine.test_balanced_accuracy if mine else None):
            print(line)
        if mine is None and (interrupted or args.no_evaluate):
            print(f"test accuracy: not measured (hpo-nb evaluate {exp.name} measures it)")
    except HpoNbError as exc:  # e.g. every trial failed: say so, with the first error
        print(f"hpo-nb: {exc}", file=sys.stderr)
        code = code or 1
    print(f"run folder: {exp.run_dir}")
    return code


def _resume_command(args: argparse.Namespace, settings: dict) -> str:
    """The ``hpo-nb run`` line that resumes a stored study with its own settings: its storage
    (password masked) or runs folder, and ``--data`` for a study of your own data, which only the
    user can pass again."""
    import shlex

    from .datasets import is_registered
    from .storage import mask_url

    words = ["hpo-nb", "run", "--name", shlex.quote(args.name)]
    if args.storage:
        words += ["--storage", shlex.quote(mask_url(args.storage.strip()))]
    if args.runs_dir != "runs":  # its run folder: models, run.log (and the default storage)
        words += ["--runs-dir", shlex.quote(str(args.runs_dir))]
    if "dataset" in settings and not is_registered(str(settings["dataset"])):
        words += ["--data", "PATH", *_scale_flag(settings)]  # the file or folder it was read from, same options
    return " ".join(words)


def _scale_flag(settings: dict) -> list[str]:
    """``["--scale", "0.0625"]`` for a study of images scaled otherwise than the readers guess
    (1/255 for 8-bit pixels, 1 for values in [0, 1]), else nothing."""
    scale = settings.get("scale")
    if settings.get("modality") == "image" and isinstance(scale, float) and scale != 1 and abs(scale * 255 - 1) > 1e-9:
        return ["--scale", repr(scale)]
    return []


def _search_space(text: str | None) -> dict | None:
    """``--search-space`` as ``Experiment(search_space=)`` takes it: a JSON object whose values are a
    list or ``{"choice": [...]}`` (a choice), ``{"range": [low, high]}`` (a range) or one value
    (fixed); see ``space.from_json``."""
    from .errors import ConfigError

    if not text:
        return None
    try:
        space = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--search-space is not valid JSON: {exc}") from None
    if not isinstance(space, dict):
        raise ConfigError(f"--search-space must be a JSON object such as '{{\"filters\": [8, 16]}}', not "
                          f"{type(space).__name__} {text[:40]!r}.")
    from .space import from_json

    return from_json(space)


def _show(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .stored import StoredStudy
    from .views.console import best_lines, results_table

    study = StoredStudy(args.name, storage=args.storage, runs_dir=args.runs_dir)
    settings = study.settings
    print(f"study {args.name}: dataset {settings.get('dataset', '?')} · mode {study.mode} · "
          f"{settings.get('max_epochs', '?')} epochs max")
    kept = " · ".join(f"{k} {settings[k]}" for k in ("metric", "seed", "validation_fraction", "sample_fraction",
                                                    "test_fraction", "accuracy_weight") if k in settings)
    weights = settings.get("health_weights")
    if isinstance(weights, dict) and len(set(weights.values())) > 1:  # equal weights: the default, not shown
        kept += " · health_weights " + ", ".join(f"{k}={v!r}" for k, v in weights.items())  # exact: a reopen compares them
    if kept:  # what `hpo-nb run --name NAME` resumes with when they are left out
        command = _resume_command(args, settings)
        data = " (PATH: your data file or folder, with the options it was read with)" \
            if " --data PATH" in command else ""
        print(f"settings: {kept} ({command} resumes with these{data})")
    Console(width=None if sys.stdout.isatty() else 120).print(results_table(study.results, max_rows=args.rows))
    try:
        best = study.best
    except HpoNbError as exc:
        print(f"no best trial: {exc}")
        return 0
    found = study.model_file(best.number)
    best.model_path = str(found) if found else (f"{best.model_path} (not found here)" if best.model_path else None)
    from .space import searched

    from .records import stored_report
    from .views.viewmodel import baseline_line

    base = study.baseline
    if base is not None:  # recorded by studies since the baseline was stored
        print(baseline_line(base.majority_rate, base.majority_class, base.n_val, study.metric, base.chance_balanced))
    _warn(study._search_warnings())  # the dashboard's notices (Experiment._search_warnings), one source
    test = stored_report(study.study, best.number)
    for line in best_lines(best, test.test_accuracy if test else None, test.n_test if test else 0,
                           searched(study.space) if study.space else None, study.metric,
                           test.test_balanced_accuracy if test else None):
        print(line)
    if test is None:
        print(f"test accuracy: not measured yet (hpo-nb evaluate {args.name}, or exp.evaluate() in Python)")
    names = study.class_names or (test.class_names if test else [])
    if names:  # what the exported model's output index i means
        print("classes (model output order): " + ", ".join(f"{i}={n}" for i, n in enumerate(names)))
    return 0


def _warn(messages: Sequence[str]) -> None:
    """The dashboard's closing notices (the best trial does not beat the majority class, ...) as
    ``hpo-nb: warning:`` lines on stderr, placed where stdout has got to."""
    from .baseline import for_cli

    if messages:
        sys.stdout.flush()
    for message in messages:
        print(f"hpo-nb: warning: {for_cli(message)}", file=sys.stderr, flush=True)


def _evaluate(args: argparse.Namespace) -> int:
    """Reopen the study (its recorded settings apply: ``reopen``; --data for your own data), score
    the best trial's saved model on the test split (``Experiment.evaluate``), print it."""
    import warnings

    from . import datasets
    from .errors import ConfigError
    from .experiment import Experiment
    from .stored import StoredStudy
    from .views.console import evaluation_lines

    warnings.filterwarnings("ignore", message="hpo-nb: ", category=UserWarning)  # notices are logged already
    study = StoredStudy(args.name, storage=args.storage, runs_dir=args.runs_dir)
    s = study.settings
    args.dataset = None  # the study's own; every setting left out is the study's (reopen.adopt)
    if args.data is None and s.get("dataset") not in datasets.names():
        raise ConfigError(f"study {args.name!r} searched your own data ({s.get('dataset')!r}): pass it again with "
                          f"{' '.join(['--data PATH', *_scale_flag(s)])} and the options it was read with (hpo-nb "
                          "evaluate --help).")
    exp = Experiment(dataset=dataset_from_args(args), name=args.name, storage=args.storage, runs_dir=args.runs_dir,
                     progress="none")
    report = exp.evaluate(1).selected
    best = exp.trial(report.trial)
    for line in evaluation_lines(best.number, best.accuracy, best.score, report.test_accuracy, report.n_test,
                                 exp.metric, (best.extra or {}).get(exp.metric), report.test_balanced_accuracy):
        print(line)
    print(f"stored in the study (hpo-nb show {args.name}, exp.results['test_accuracy'])")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .stored import StoredStudy

    study = StoredStudy(args.name, storage=args.storage, runs_dir=args.runs_dir)
    target = study.export_model(args.path, trial=args.trial, overwrite=args.force)
    trial = study.trial(args.trial)
    print(f"trial {trial.number} of {args.name} -> {target} "
          "(load with keras.models.load_model; it takes raw inputs: the dataset's preprocessing is inside)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
