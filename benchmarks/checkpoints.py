"""Epoch checkpoints: what they cost per epoch, and what a resume saves.

Three runs of one trial (``train_trial``, the one training path), each repeated:
  plain        no checkpoint folder (as before checkpoints)
  checkpointed a checkpoint written at every epoch end (what every trial now does)
  resumed      the same trial retried after its process died at the end of epoch --kill-after:
               the epoch-``k`` checkpoint is put back, and the retry trains only the rest
Prints the median wall time of each, the ratios checkpointed/plain and resumed/checkpointed, the
checkpoint file's size, the time each checkpoint write took (timed inside the run, so robust to
a loaded machine) against the epoch's, and whether the resumed run's result equals the uninterrupted one.

    .venv/bin/python benchmarks/checkpoints.py                 # about 1 minute on 2 cores
    .venv/bin/python benchmarks/checkpoints.py --repeats 1     # smoke
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import benchlib

# A mid-sized CNN for digits (about 60k parameters, so the file is not trivially small).
PARAMS = {"conv_blocks": 2, "filters": 32, "kernel_size": 3, "dense_layers": 1, "dense_units": 128, "dropout": 0.3,
          "batch_size": 32, "batch_norm": False, "optimizer": "adam", "learning_rate": 0.002}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--kill-after", type=int, default=5, help="the epoch the process 'died' after")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    benchlib.quiet()
    from hpo_nb import checkpoints
    from hpo_nb.progress import EpochProgress
    from hpo_nb.spec import TrialSpec
    from hpo_nb.training import train_trial

    spec = TrialSpec(trial_number=0, dataset="digits", params=PARAMS, max_epochs=args.epochs, seed=0)
    retry = TrialSpec(trial_number=1, dataset="digits", params=PARAMS, max_epochs=args.epochs, seed=0, retry_of=0)
    writes: list[float] = []
    write = checkpoints.EpochCheckpoint._write

    def timed_write(self: object, epoch: int) -> None:
        started = time.perf_counter()
        write(self, epoch)
        writes.append(time.perf_counter() - started)

    checkpoints.EpochCheckpoint._write = timed_write  # type: ignore[method-assign]
    train_trial(spec)  # warm-up: TensorFlow's first trace and the dataset cache are not what is measured
    work = Path(tempfile.mkdtemp(prefix="hpo-nb-ckpt-bench-"))
    times: dict[str, list[float]] = {"plain": [], "checkpointed": [], "resumed": []}
    kept = work / "kept.npz"
    size_kb = 0.0
    same = True
    for _ in range(args.repeats):
        started = time.perf_counter()
        plain = train_trial(spec)
        times["plain"].append(time.perf_counter() - started)
        fit_per_epoch = plain.fit_s / args.epochs

        folder = work / "checkpoints"
        saved: dict[str, Path] = {}

        def keep(event: object) -> None:  # the file as it was when epoch kill_after ended
            if isinstance(event, EpochProgress) and event.epoch == args.kill_after + 1 and not saved:
                (path,) = folder.glob("*.npz")
                shutil.copy(path, kept)
                saved["path"] = path

        started = time.perf_counter()
        train_trial(spec, keep, checkpoint_dir=folder)
        times["checkpointed"].append(time.perf_counter() - started)
        size_kb = kept.stat().st_size / 1024
        shutil.copy(kept, saved["path"])  # what the dead process left behind
        started = time.perf_counter()
        resumed = train_trial(retry, checkpoint_dir=folder)
        times["resumed"].append(time.perf_counter() - started)
        same = same and resumed.extra.get("resumed_from_epoch") == args.kill_after \
            and resumed.history.get("val_accuracy") == plain.history.get("val_accuracy")
    med = {k: benchlib.median(v) for k, v in times.items()}
    print(f"machine: {benchlib.machine()}")
    print(f"trial: digits CNN {PARAMS}, {args.epochs} epochs, median of {args.repeats}")
    for name, value in med.items():
        print(f"{name:13s} {value:6.2f} s   ({', '.join(f'{t:.2f}' for t in times[name])})")
    print(f"checkpoint file {size_kb:.0f} KB; resumed run equals the uninterrupted one: {same}")
    print(f"checkpoint write {1000 * benchlib.median(writes):.1f} ms median ({len(writes)} writes); "
          f"an epoch of fit {1000 * fit_per_epoch:.0f} ms: {100 * benchlib.median(writes) / fit_per_epoch:.1f} %")
    print(f"ratio checkpointed/plain {med['checkpointed'] / med['plain']:.3f}")
    print(f"ratio resumed/checkpointed {med['resumed'] / med['checkpointed']:.3f} "
          f"(a retry from epoch 0 trains {args.epochs} epochs; this one {args.epochs - args.kill_after})")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
