"""``hpo-nb``: the terminal twin of ``Experiment``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .errors import HpoNbError
from .values import GRACE_BEATS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hpo-nb", description="Hyperparameter search for Keras models, with live progress.")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run (or resume) a search")
    run.add_argument("--dataset", default="digits", help="registered dataset name (default: digits)")
    run.add_argument("--trials", type=int, default=20, help="number of trials (n_trials)")
    run.add_argument("--mode", default="simple", help="simple (accuracy) or health (accuracy + model health)")
    run.add_argument("--max-epochs", type=int, default=10)
    run.add_argument("--concurrency", type=int, default=1, help="trials running at once")
    run.add_argument("--executor", default="local", help="local or runpod")
    run.add_argument("--distribution", default=None, help="mirrored: MirroredStrategy over --devices")
    run.add_argument("--devices", default=None, help="comma-separated device names, e.g. /gpu:0,/gpu:1")
    run.add_argument("--gpus-per-trial", type=int, default=None)
    run.add_argument("--storage", default=None,
                     help="Optuna storage URL, e.g. postgresql://user:password@host/db to share the study "
                          "between processes and machines (default: sqlite under runs/NAME/)")
    run.add_argument("--heartbeat-interval", type=int, default=5,
                     help=f"seconds between heartbeats of running trials; a trial silent for {GRACE_BEATS}x this "
                          "(+1 s) is failed and retried (default: 5)")
    run.add_argument("--name", default=None, help="run name: the study and runs/NAME/ (default: DATASET-MODE)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--sample-fraction", type=float, default=1.0, help="train on this stratified fraction")
    run.add_argument("--search-space", default=None, help='JSON overrides, e.g. \'{"conv_blocks": [1, 2]}\'')
    run.add_argument("--pruner", choices=["none", "median", "hyperband"], default="none",
                     help="stop weak trials early to save time (the budget still counts them; default: none)")
    run.add_argument("--no-pruning", action="store_true", help="same as --pruner none")
    run.add_argument("--no-diagnostics", action="store_true",
                     help="skip per-trial diagnostics (gradient flow, weight histograms, confusion matrix, "
                          "activation maps)")
    run.add_argument("--runs-dir", default="runs")
    run.add_argument("--test-fraction", type=float, default=None,
                     help="fraction held out for the final test accuracy when the dataset has no official test "
                          "split (default: 0.2; 0: none)")
    run.add_argument("--no-evaluate", action="store_true",
                     help="skip the test accuracy of the best trial at the end")
    run.add_argument("--quiet", action="store_true", help="no live progress")

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
        if args.command == "datasets":
            return _datasets()
        if args.command == "runpod-local":
            from .executors.runpod.loopback import serve

            return serve(workers=args.workers, port=args.port, host=args.host)
        return _run(args)
    except HpoNbError as exc:
        print(f"hpo-nb: error: {exc}", file=sys.stderr)
        return 2


def _datasets() -> int:
    from . import datasets

    for name in datasets.names():
        meta = datasets.info(name)
        print(f"{name:14s} {meta.modality:5s} {meta.num_classes:4d} classes  {meta.description}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .errors import ConfigError

    try:
        space = json.loads(args.search_space) if args.search_space else None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--search-space is not valid JSON: {exc}") from None
    if space is not None:
        space = {k: tuple(v["range"]) if isinstance(v, dict) and "range" in v else v for k, v in space.items()}

    from .experiment import Experiment
    from .views.console import results_table

    exp = Experiment(
        dataset=args.dataset, mode=args.mode, n_trials=args.trials, max_epochs=args.max_epochs,
        concurrency=args.concurrency, executor=args.executor, distribution=args.distribution,
        storage=args.storage, name=args.name, seed=args.seed, search_space=space,
        sample_fraction=args.sample_fraction, pruning=not args.no_pruning, pruner=args.pruner, runs_dir=args.runs_dir,
        diagnostics=not args.no_diagnostics,
        devices=args.devices.split(",") if args.devices else None, gpus_per_trial=args.gpus_per_trial,
        progress="none" if args.quiet else "console", heartbeat_interval=args.heartbeat_interval,
        test_fraction=args.test_fraction,
    )
    interrupted = False
    exp.start()
    try:
        exp.wait()
    except KeyboardInterrupt:
        interrupted = True
        print("\nhpo-nb: stopping (running trials end within one batch)…", file=sys.stderr)
        exp.stop()
    from rich.console import Console

    from .views.console import evaluation_lines

    report = None
    if not interrupted and not args.no_evaluate:
        try:  # one predict of the selected model on the held-out test split
            report = exp.evaluate(1).selected
        except HpoNbError as exc:
            print(f"hpo-nb: no test accuracy: {exc}", file=sys.stderr)
    Console(width=None if sys.stdout.isatty() else 120).print(results_table(exp.results))
    try:
        best = exp.best
        for line in evaluation_lines(best.number, best.accuracy, best.score,
                                     report.test_accuracy if report and report.trial == best.number else None,
                                     report.n_test if report else 0):
            print(line)
    except HpoNbError:
        pass
    print(f"run folder: {exp.run_dir}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
