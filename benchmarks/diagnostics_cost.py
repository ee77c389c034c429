"""What per-trial diagnostics cost: the same whole trial (``train_trial``: build, fit, health
probes, and with diagnostics the per-batch gradient norms, per-epoch weight histograms, the
validation confusion matrix and activation maps) with ``diagnostics`` on and off.

Same spec and seed on both sides; runs interleaved in rotating order with an A/A control (a
second "off" run) each round, so drift on a shared machine hits all alike. Prints the median of
the per-round on/off ratios per dataset, wall and process CPU time; the target is <= 1.05.
Datasets: "digits" (1,437 training images) and "mnist" (the MNIST test split shipped in
../shared/data: 10,000 28x28 images, as benchmarks/benchlib.load_dataset reads it).
Models: "default" (the main row), hpo-nb's default first image configuration
(``hpo_nb.space.DEFAULT_CONFIGS["image"]``: what every default search trains first), and
"small", a 2-block 16-filter CNN (a cheaper trial, where the diagnostics weigh most).

    .venv/bin/python benchmarks/diagnostics_cost.py                       # about 10 minutes on 2 cores
    .venv/bin/python benchmarks/diagnostics_cost.py --rounds 3            # a short run
    .venv/bin/python benchmarks/diagnostics_cost.py --quick               # smoke run
"""

from __future__ import annotations

import argparse
import time

import benchlib

SMALL = {"conv_blocks": 2, "filters": 16, "kernel_size": 3, "activation": "relu", "pooling": "max",
          "batch_norm": False, "dropout": 0.1, "dense_layers": 1, "dense_units": 64, "optimizer": "adam",
          "learning_rate": 1e-3, "batch_size": 32}
EPOCHS = {"digits": 5, "mnist": 3}


def model_params(model: str) -> dict[str, object]:
    """The hyperparameters of a benchmarked model ("default" or "small")."""
    from hpo_nb.space import DEFAULT_CONFIGS

    return dict(DEFAULT_CONFIGS["image"]) if model == "default" else dict(SMALL)


def measure(dataset: str, rounds: int, epochs: int, warm: bool, model: str = "default") -> dict[str, float]:
    from hpo_nb import datasets
    from hpo_nb.spec import TrialSpec
    from hpo_nb.training import train_trial

    name = dataset
    if dataset == "mnist":
        ds = benchlib.load_dataset("mnist")
        datasets.attach(ds)
        name = ds.name

    own = _time_callback()
    params = model_params(model)
    label = f"{dataset}/{model}"

    def run(diagnostics: bool) -> tuple[float, float]:
        own.clear()
        spec = TrialSpec(trial_number=0, dataset=name, params=params, max_epochs=epochs, seed=0,
                         diagnostics=diagnostics)
        start, cpu = time.perf_counter(), time.process_time()
        outcome = train_trial(spec)
        elapsed = time.perf_counter() - start, time.process_time() - cpu
        assert outcome.state == "complete", outcome.error
        assert bool(outcome.diagnostics) == diagnostics
        if diagnostics:
            own_s.append(sum(own.values()))
            own_parts.append(dict(own))
        return elapsed

    own_s: list[float] = []
    own_parts: list[dict[str, float]] = []
    if warm:
        run(False)  # TensorFlow's first-fit start-up is not what we measure
        run(True)
        own_s.clear(), own_parts.clear()
    ratios, cpu_ratios, controls, off, on = [], [], [], [], []
    for i in range(rounds):
        order = [("off", False), ("on", True), ("control", False)]
        order = order[i % 3:] + order[:i % 3]
        runs = {label: run(flag) for label, flag in order}
        (a, a_cpu), (b, b_cpu), (c, _) = runs["off"], runs["on"], runs["control"]
        off.append(a), on.append(b)
        ratios.append(b / a), cpu_ratios.append(b_cpu / a_cpu), controls.append(c / a)
        print(f"{label} round {i + 1}: off {a:.2f} s  on {b:.2f} s  control {c:.2f} s  ratio {b / a:.3f}  "
              f"A/A {c / a:.3f}  (CPU time ratio {b_cpu / a_cpu:.3f})", flush=True)
    result = {"own_s": benchlib.median(own_s), "off_s": benchlib.median(off), "on_s": benchlib.median(on),
              "ratio": benchlib.median(ratios),
              "cpu_ratio": benchlib.median(cpu_ratios), "control": benchlib.median(controls)}
    print(f"{label}: {rounds} rounds x {epochs} epochs; median trial off {result['off_s']:.2f} s, "
          f"on {result['on_s']:.2f} s; A/A control {result['control']:.3f}; cpu ratio {result['cpu_ratio']:.3f}; "
          f"ratio {result['ratio']:.3f}", flush=True)
    print(f"{label}: the diagnostics' own work (callback and end-of-trial measures, wall, excluding the "
          f"per-batch norms inside the train step) {result['own_s'] * 1000:.0f} ms per trial = "
          f"{result['own_s'] / result['off_s']:.1%} of the median trial off (" + ", ".join(
              f"{name} {benchlib.median([p.get(name, 0.0) for p in own_parts]) * 1000:.0f} ms"
              for name in own_parts[0]) + ")" if own_parts else "", flush=True)
    return result


def _time_callback() -> dict[str, float]:
    """Time DiagnosticsCallback's hooks and end-of-trial work (seconds per method, summed)."""
    import functools

    from hpo_nb.diagnostics import collect

    spent: dict[str, float] = {}
    for name in ("on_train_begin", "on_epoch_begin", "on_epoch_end", "finish"):
        method = getattr(collect.DiagnosticsCallback, name)

        @functools.wraps(method)
        def timed(*args: object, _method: object = method, _name: str = name, **kwargs: object) -> object:
            start = time.perf_counter()
            try:
                return _method(*args, **kwargs)  # type: ignore[operator]
            finally:
                spent[_name] = spent.get(_name, 0.0) + time.perf_counter() - start

        setattr(collect.DiagnosticsCallback, name, timed)
    return spent


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="digits,mnist")
    p.add_argument("--models", default="default,small",
                   help="default: DEFAULT_CONFIGS['image'] (the main row); small: a 2-block 16-filter CNN")
    p.add_argument("--rounds", type=int, default=8, help="rounds of off, on and a control off (default 8)")
    p.add_argument("--quick", action="store_true", help="1 round of 1 epoch, no warm-up: checks the script runs")
    args = p.parse_args(argv)
    benchlib.quiet()
    results = {}
    for dataset in args.datasets.split(","):
        epochs = 1 if args.quick else EPOCHS.get(dataset, 3)
        for model in args.models.split(","):
            results[f"{dataset}/{model}"] = measure(dataset, 1 if args.quick else args.rounds, epochs,
                                                    warm=not args.quick, model=model)
    print(f"machine: {benchlib.machine()}")
    print(f"{'dataset/model':<16} {'off s':>7} {'on s':>7} {'wall':>6} {'A/A':>6} {'CPU':>6} {'own ms':>7} {'own %':>6}")
    for key, r in results.items():
        print(f"{key:<16} {r['off_s']:7.2f} {r['on_s']:7.2f} {r['ratio']:6.3f} {r['control']:6.3f} "
              f"{r['cpu_ratio']:6.3f} {r['own_s'] * 1000:7.0f} {r['own_s'] / r['off_s']:6.1%}")
    return results


if __name__ == "__main__":
    main()
