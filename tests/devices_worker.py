"""Multi-device searches on a CPU split into two logical devices, for tests.

``python tests/devices_worker.py RUNS_DIR``: the split must happen before TensorFlow starts, so
this runs in its own process. Prints one JSON line with what each search recorded.
"""

from __future__ import annotations

import json
import sys

import hpo_nb

DEVICES = hpo_nb.split_cpu(2)  # first thing: before anything touches TensorFlow

SPACE = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_layers": 0, "batch_size": 64,
         "batch_norm": False, "optimizer": "adam", "learning_rate": 0.01, "activation": "relu", "pooling": "max",
         "dropout": 0.1,
         # a flat rate: the mirrored run takes half the steps (the global batch doubles), 36 in all,
         # and a rate decaying to zero over so few steps leaves it ~0.13 behind the one-device run
         # on the same spec, which is not what this comparison is about
         "lr_schedule": "constant"}


def search(runs_dir: str, name: str, n_trials: int, max_epochs: int, **kwargs: object) -> list[dict]:
    exp = hpo_nb.Experiment("digits", n_trials=n_trials, max_epochs=max_epochs, search_space=SPACE,
                            runs_dir=runs_dir, name=name, progress="none", pruning=False, save_models=False, **kwargs)
    exp.run()
    rows = exp.results[["number", "state", "accuracy", "replicas", "devices"]].to_dict("records")
    for row, t in zip(rows, sorted(exp.study.get_trials(), key=lambda t: t.number)):
        row["start"], row["end"] = t.datetime_start.timestamp(), t.datetime_complete.timestamp()
        row["gradients"] = (t.user_attrs.get("diagnostics") or {}).get("gradients", {}).get("method")
    return rows


def main() -> None:
    runs_dir = sys.argv[1]
    out = {
        "split": DEVICES,
        "mirrored": search(runs_dir, "mirrored", 2, 3, distribution="mirrored"),
        "single": search(runs_dir, "single", 1, 3),  # the same spec as mirrored trial 0, on one device
        "side_by_side": search(runs_dir, "side-by-side", 2, 1, concurrency=2, gpus_per_trial=1),
    }
    try:
        hpo_nb.split_cpu(3)
        out["late_split"] = "no error"
    except hpo_nb.ConfigError as exc:
        out["late_split"] = str(exc)
    print("RESULT " + json.dumps(out, default=float), flush=True)


if __name__ == "__main__":
    main()
