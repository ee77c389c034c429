"""What live progress costs a trial: the same fit with and without the full progress path.

Plain: ``model.fit(verbose=0)``. Progress: the same fit with ``EpochProgressCallback``
publishing into a ``ProgressHub`` that a live console renderer (rich bars, drawn into memory)
subscribes to at 5 Hz. Same data, same seed, same model; runs interleaved (the order flips
every pair) so drift on a shared machine hits both sides alike. Each round also runs a second
plain fit, a control: the median plain/plain ratio ("A/A") and the spread of its per-round
ratios show how large a difference this machine can resolve. Prints the median of the
per-round progress/plain ratios last, as ``ratio <number>``; the target is <= 1.03.

    .venv/bin/python benchmarks/progress_overhead.py            # about 3 minutes on 2 cores
    .venv/bin/python benchmarks/progress_overhead.py --quick    # smoke run, a few seconds
"""

from __future__ import annotations

import argparse
import io
import threading
import time

import benchlib

PARAMS = {"conv_blocks": 1, "filters": 16, "kernel_size": 3, "activation": "relu", "pooling": "max",
          "batch_norm": False, "dropout": 0.1, "dense_layers": 0, "dense_units": 64, "optimizer": "adam",
          "learning_rate": 1e-3, "batch_size": 32}


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=15,
                   help="rounds of plain, progress and a control plain fit, in rotating order (default 15)")
    p.add_argument("--epochs", type=int, default=5, help="epochs per fit (default 5)")
    p.add_argument("--batch-size", type=int, default=32, help="smaller batches = more progress callbacks")
    p.add_argument("--quick", action="store_true", help="1 pair of 1 epoch, no warm-up: checks the script runs")
    args = p.parse_args(argv)
    if args.quick:
        args.pairs, args.epochs = 1, 1
    benchlib.quiet()

    import keras
    import tensorflow as tf
    from rich.console import Console

    from hpo_nb import datasets
    from hpo_nb.callbacks import EpochProgressCallback
    from hpo_nb.models import build_model
    from hpo_nb.progress import ProgressHub, TrialStarted
    from hpo_nb.views.console import ConsoleRenderer

    ds = datasets.load("digits")
    x_train, y_train, x_val, y_val = ds.split(0.2, 0)
    params = {**PARAMS, "batch_size": args.batch_size}

    def data() -> tuple[tf.data.Dataset, tf.data.Dataset]:
        train = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
                 .shuffle(len(x_train), seed=0).batch(args.batch_size).prefetch(tf.data.AUTOTUNE))
        return train, tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(256)

    def run(with_progress: bool) -> tuple[float, float]:
        keras.backend.clear_session()
        model = build_model(params, modality=ds.modality, input_shape=ds.input_shape,
                            num_classes=ds.num_classes, seed=0)
        train, val = data()
        callbacks = []
        hub = None
        if with_progress:  # the whole path: hub, live renderer thread (drawing all along), callback
            hub = ProgressHub(1)
            console = Console(file=io.StringIO(), force_terminal=True, width=120)
            hub.subscribe(ConsoleRenderer(console), max_hz=5.0)
            hub.publish(TrialStarted(0, args.epochs, params))
            callbacks = [EpochProgressCallback(0, args.epochs, hub.publish, threading.Event())]
        # The clock covers the trial's training. Making the hub and closing it happen once per
        # search, not per trial, so they stay outside (closing waits out the renderer's 0.2 s
        # rate-limit sleep, which would otherwise look like 7 % of a 3-second trial).
        start, cpu = time.perf_counter(), time.process_time()
        model.fit(train, validation_data=val, epochs=args.epochs, verbose=0, callbacks=callbacks)
        elapsed = time.perf_counter() - start, time.process_time() - cpu
        if hub is not None:
            hub.close()  # joins the renderer after its last draw
        return elapsed

    if not args.quick:
        run(False)  # warm-up: TensorFlow's first-fit start-up is not what we measure
        run(True)
    ratios, cpu_ratios, controls, plain, progress = [], [], [], [], []
    for i in range(args.pairs):
        order = [("plain", False), ("progress", True), ("control", False)]
        order = order[i % 3:] + order[:i % 3]  # each kind takes each position equally often
        runs = {name: run(with_progress) for name, with_progress in order}
        (a, a_cpu), (b, b_cpu), (c, _) = runs["plain"], runs["progress"], runs["control"]
        plain.append(a)
        progress.append(b)
        ratios.append(b / a)
        cpu_ratios.append(b_cpu / a_cpu)
        controls.append(c / a)
        print(f"round {i + 1}: plain {a:.3f} s  progress {b:.3f} s  control {c:.3f} s  ratio {b / a:.3f}  "
              f"A/A {c / a:.3f}  (CPU time ratio {b_cpu / a_cpu:.3f})", flush=True)
    ratio = benchlib.median(ratios)
    print(f"machine: {benchlib.machine()}")
    print(f"{args.pairs} rounds, {args.epochs} epochs, batch {args.batch_size}, "
          f"{len(x_train) // args.batch_size + 1} steps/epoch")
    print(f"median plain {benchlib.median(plain):.3f} s, median progress {benchlib.median(progress):.3f} s")
    print(f"A/A control ratio {benchlib.median(controls):.3f}, per round {min(controls):.3f} to {max(controls):.3f} "
          f"(plain vs plain: what noise alone shows)")
    print(f"cpu ratio {benchlib.median(cpu_ratios):.3f}  (process CPU time, all threads; less sensitive "
          "to other processes on a shared machine)")
    print(f"ratio {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main()
