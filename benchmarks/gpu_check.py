"""Single-device vs MirroredStrategy: the same trials (same specs, same seeds) trained both
ways, side by side in one run, and the ratio of their fit times.

Which devices it mirrors over, decided before TensorFlow starts:
  * 2+ GPUs: every GPU (or the first ``--gpus N``);
  * 1 GPU: that GPU split into 2 logical GPUs (they share one chip: a correctness check);
  * no GPU: the CPU split into 2 logical devices (they share the same cores: a correctness
    check; on CPU mirrored is expected to be slower). It says so in its first line.

    .venv/bin/python benchmarks/gpu_check.py              # about 2 minutes on 2 CPU cores
    .venv/bin/python benchmarks/gpu_check.py --quick      # one trial, 2 epochs
    .venv/bin/python benchmarks/gpu_check.py --filters 64 --batch-size 256 --epochs 10   # a GPU-sized load

Prints ``ratio_mirrored_over_single <x>`` last (fit time; below 1 means mirrored is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time

import benchlib


def choose_devices(gpus: int | None) -> tuple[list[str], str]:
    """Configure logical devices (must run before TensorFlow initializes) and say what they are."""
    import tensorflow as tf

    import hpo_nb

    physical = tf.config.list_physical_devices("GPU")
    if len(physical) >= 2:
        n = min(gpus or len(physical), len(physical))
        return [f"/gpu:{i}" for i in range(n)], f"{n} GPUs ({len(physical)} on this machine)"
    if len(physical) == 1:
        tf.config.set_logical_device_configuration(
            physical[0], [tf.config.LogicalDeviceConfiguration(memory_limit=4096)] * 2)
        return ["/gpu:0", "/gpu:1"], ("one GPU, split into 2 logical GPUs of 4 GiB that share the chip: a "
                                      "correctness check, no speed-up expected")
    return hpo_nb.split_cpu(2), ("no GPU: 2 logical CPU devices that share the same cores: a correctness "
                                 "check; expect mirrored to be slower on CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=2, help="trials (seeds) trained both ways")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64, help="per replica; the global batch is x replicas")
    parser.add_argument("--gpus", type=int, default=None, help="mirror over the first N GPUs")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.epochs = 1, 2

    devices, what = choose_devices(args.gpus)  # before anything else touches TensorFlow
    benchlib.quiet()
    from hpo_nb import datasets
    from hpo_nb.spec import TrialSpec
    from hpo_nb.training import train_trial

    print(f"gpu_check: mirroring over {devices}: {what}")
    print(f"machine: {benchlib.machine()}")
    params = {"conv_blocks": 2, "filters": args.filters, "kernel_size": 3, "activation": "relu", "pooling": "max",
              "batch_norm": False, "dropout": 0.1, "dense_layers": 1, "dense_units": 64, "optimizer": "adam",
              "learning_rate": 3e-3, "batch_size": args.batch_size}
    n_train = len(datasets.load("digits").split(0.2, 0)[0])
    modes = {"single": (devices[0],), "mirrored": tuple(devices)}

    for placement in modes.values():  # warm-up: first tracing, strategy creation
        train_trial(TrialSpec(0, "digits", params, max_epochs=1, devices=placement))

    rows = []
    print(f"{'mode':9s} {'trial':>5s} {'replicas':>8s} {'devices':24s} {'fit_s':>7s} {'samples/s':>10s} {'val_acc':>8s}")
    for trial in range(args.trials):
        for mode, placement in modes.items():  # interleaved: both modes see the same machine load
            started = time.perf_counter()
            out = train_trial(TrialSpec(trial, "digits", params, max_epochs=args.epochs, seed=0, devices=placement))
            if out.state != "complete":
                raise SystemExit(f"{mode} trial {trial} {out.state}: {out.error}")
            rows.append((mode, trial, out))
            print(f"{mode:9s} {trial:5d} {out.replicas:8d} {','.join(out.devices):24s} {out.fit_s:7.2f} "
                  f"{args.epochs * n_train / out.fit_s:10.0f} {out.accuracy:8.4f}   ({time.perf_counter() - started:.1f}s)")

    fit = {m: [o.fit_s for mode, _, o in rows if mode == m] for m in modes}
    acc = {m: statistics.mean(o.accuracy for mode, _, o in rows if mode == m) for m in modes}
    ratio = statistics.median(m / s for m, s in zip(fit["mirrored"], fit["single"]))
    print(f"accuracy: single {acc['single']:.4f}, mirrored {acc['mirrored']:.4f} "
          f"(global batch {args.batch_size} vs {args.batch_size * len(devices)})")
    print(f"ratio_mirrored_over_single {ratio:.2f}")


if __name__ == "__main__":
    main()
