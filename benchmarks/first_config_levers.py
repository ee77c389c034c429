"""One lever at a time on the default first configuration: does anything lift every trial?

A search's best of 8 trials can only rise as far as the configurations it draws. When the
per-trial accuracies of a search are flat (polarity: 0.735-0.770 across every trial of three
8 x 3 searches), a lever worth having lifts the known-good first configuration itself. This script
trains that configuration (``space.DEFAULT_CONFIGS``) through hpo-nb's own path (an
``Experiment`` of one trial: the first configuration, hpo-nb's split at each seed, the linear
decay, best-epoch scoring) once per variant and seed, and prints each variant's mean, worst and
paired difference to the first variant. Not a timed benchmark.

    .venv/bin/python benchmarks/first_config_levers.py --dataset polarity --seeds 0,1,2,3,4 \\
        base='{}' max='{"sequence_pooling": "max"}' 'tokens20k={"max_tokens": 20000}'

A variant is ``label=JSON``: hyperparameters of the first configuration, plus two keys that are
not hyperparameters: ``max_tokens`` (the text vocabulary's size) and ``epochs``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time

import benchlib


def run_variant(dataset: str, overrides: dict, seed: int, epochs: int) -> dict:
    """Best validation accuracy of the first configuration with ``overrides``, at one seed."""
    from search_quality import load

    from hpo_nb import Experiment, space

    overrides = dict(overrides)
    ds = load(dataset)
    if "max_tokens" in overrides:  # other data under the same name is refused in one process
        tokens = int(overrides.pop("max_tokens"))
        ds = dataclasses.replace(ds, name=f"{ds.name}-{tokens}-tokens", max_tokens=tokens)
    epochs = int(overrides.pop("epochs", epochs))
    first = space.DEFAULT_CONFIGS[ds.modality]
    saved = dict(first)
    first.update(overrides)
    try:
        with tempfile.TemporaryDirectory() as runs:
            exp = Experiment(ds, n_trials=1, max_epochs=epochs, seed=seed, name=f"lever-{seed}", runs_dir=runs,
                             progress="none")
            start = time.perf_counter()
            exp.run()
            return {"accuracy": round(float(exp.best.accuracy), 4), "s": round(time.perf_counter() - start, 1)}
    finally:
        first.clear()
        first.update(saved)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="label=JSON overrides; the first is the reference")
    parser.add_argument("--dataset", default="polarity", help="digits, mnist, polarity or sms")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    args = parser.parse_args()
    benchlib.quiet()
    print(benchlib.machine(), flush=True)
    variants = [(label, json.loads(spec)) for label, spec in (v.split("=", 1) for v in args.variants)]
    seeds = [int(s) for s in args.seeds.split(",")]
    scores: dict[str, list[float]] = {}
    for label, overrides in variants:
        for seed in seeds:
            out = run_variant(args.dataset, overrides, seed, args.epochs)
            scores.setdefault(label, []).append(out["accuracy"])
            print(json.dumps({"variant": label, "seed": seed, **out}), flush=True)
    reference = scores[variants[0][0]]
    print(f"\n{args.dataset}, first configuration, {args.epochs} epochs, seeds {args.seeds}")
    print("| variant | mean | worst | paired diff to the first: mean (seeds above) |\n|---|---|---|---|")
    for label, values in scores.items():
        diffs = [v - r for v, r in zip(values, reference)]
        print(f"| {label} | {statistics.mean(values):.4f} | {min(values):.4f} | "
              f"{statistics.mean(diffs):+.4f} ({sum(d > 0 for d in diffs)}/{len(diffs)}) |")


if __name__ == "__main__":
    main()
