"""Memory across sequential trials in one process: RSS after 5, 20 and 40 trials.

hpo-nb: one ``Experiment`` (SQLite storage, models saved, pruning on, as a user runs it),
resumed with a larger ``n_trials`` at each checkpoint, so RSS is read in the main thread
between runs. KerasTuner (RandomSearch over the same space, the same model builder and data
split) is measured the same way in its own process, for comparison. Each framework runs in a
fresh subprocess. Target: hpo-nb grows under 150 MB from trial 5 to trial 40.

    .venv/bin/python benchmarks/memory_growth.py                  # about 5 minutes on 2 cores
    .venv/bin/python benchmarks/memory_growth.py --checkpoints 2,4 --frameworks hpo-nb   # smoke
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from typing import Any

import benchlib

# Varied small CNNs: every trial builds a different graph, as in a real search.
SPACE = {"conv_blocks": (1, 2), "filters": [8, 16], "kernel_size": [3, 5], "dense_layers": (0, 1),
         "dense_units": [32, 64], "batch_size": [64, 128]}


def run_hpo_nb(checkpoints: list[int], epochs: int, workdir: str) -> list[float]:
    from hpo_nb import Experiment

    exp = Experiment("digits", n_trials=checkpoints[0], max_epochs=epochs, name="memory", runs_dir=workdir,
                     progress="none", search_space=SPACE, seed=0)
    rss = []
    for n in checkpoints:
        exp.n_trials = n  # resume the same study with a larger budget
        exp.run()
        rss.append(benchlib.rss_mb())
    return rss


def run_keras_tuner(checkpoints: list[int], epochs: int, workdir: str) -> list[float]:
    import keras_tuner as kt

    from hpo_nb import datasets, space as spaces
    from hpo_nb.models import build_model

    ds = datasets.load("digits")
    x_train, y_train, x_val, y_val = ds.split(0.2, 0)
    space = spaces.build_space("image", SPACE)

    def build(hp: Any) -> Any:
        return build_model(benchlib.kt_params(hp, space), modality="image", input_shape=ds.input_shape,
                           num_classes=ds.num_classes, seed=0)

    class Tuner(kt.RandomSearch):
        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs["batch_size"] = trial.hyperparameters.get("batch_size")
            return super().run_trial(trial, *args, **kwargs)

    tuner = Tuner(build, objective="val_accuracy", max_trials=checkpoints[0], seed=0, directory=workdir,
                  project_name="memory", overwrite=True)
    rss = []
    for n in checkpoints:
        tuner.oracle.max_trials = n
        tuner.search(x_train, y_train, validation_data=(x_val, y_val), epochs=epochs, verbose=0)
        rss.append(benchlib.rss_mb())
    return rss


def child(framework: str, checkpoints: list[int], epochs: int) -> None:
    benchlib.quiet()
    import tensorflow  # noqa: F401

    before = benchlib.rss_mb()
    with tempfile.TemporaryDirectory() as workdir:
        run = run_hpo_nb if framework == "hpo-nb" else run_keras_tuner
        rss = run(checkpoints, epochs, workdir)
    benchlib.report({"framework": framework, "start": before, "rss": rss})


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoints", default="5,20,40", help="trial counts at which to read RSS (default 5,20,40)")
    p.add_argument("--epochs", type=int, default=1, help="epochs per trial (default 1)")
    p.add_argument("--frameworks", default="hpo-nb,keras-tuner", help="comma list: hpo-nb, keras-tuner")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    checkpoints = [int(c) for c in args.checkpoints.split(",")]
    if args.child:
        child(args.child, checkpoints, args.epochs)
        return []
    results = []
    for framework in args.frameworks.split(","):
        result = benchlib.run_child([sys.executable, __file__, "--child", framework, "--checkpoints",
                                     args.checkpoints, "--epochs", str(args.epochs)], framework)
        if result is not None:
            results.append(result)
    print(f"machine: {benchlib.machine()}")
    print(f"digits, {args.epochs} epoch(s) per trial, search_space={SPACE}")
    head = "".join(f"{'after ' + str(c):>12}" for c in checkpoints)
    print(f"{'framework':<14}{'after import':>14}{head}{'growth ' + str(checkpoints[0]) + '->' + str(checkpoints[-1]):>16}")
    for r in results:
        cells = "".join(f"{v:>9.0f} MB" for v in r["rss"])
        growth = r["rss"][-1] - r["rss"][0]
        print(f"{r['framework']:<14}{r['start']:>11.0f} MB{cells}{growth:>13.0f} MB")
    return results


if __name__ == "__main__":
    main()
