"""Constant, linear-decay and cosine learning rates on the default first configuration.

The check behind ``lr_schedule="linear"`` and the doubled image learning-rate prior: the
modality's known-good configuration (``space.DEFAULT_CONFIGS``) trained once per schedule and
seed on hpo-nb's own split (``Dataset.split(0.2, seed)``), printing one JSON line per fit with its
best validation accuracy and the accuracy of every epoch. Not a timed benchmark.

    .venv/bin/python benchmarks/lr_schedule_check.py --dataset mnist --epochs 3 --seeds 0,1,2
    .venv/bin/python benchmarks/lr_schedule_check.py --dataset digits --epochs 5 --seeds 0,1,2,3,4 \\
        --schedules linear --peak 2
"""

from __future__ import annotations

import argparse
import json
import time

import benchlib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", help="digits, mnist, polarity or sms")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--schedules", default="constant,linear,cosine")
    parser.add_argument("--peak", type=float, default=1.0,
                        help="multiply the configuration's learning rate by this for the decaying schedules")
    parser.add_argument("--constant-rate", action="store_true",
                        help="take the learning rate the constant-rate priors had (images: half today's)")
    args = parser.parse_args()
    benchlib.quiet()
    import keras
    import numpy as np
    from search_quality import load

    from hpo_nb.models import build_model
    from hpo_nb.space import DEFAULT_CONFIGS

    ds = load(args.dataset)
    for seed in (int(s) for s in args.seeds.split(",")):
        x_train, y_train, x_val, y_val = ds.split(0.2, seed)
        params = dict(DEFAULT_CONFIGS[ds.modality])
        if args.constant_rate and ds.modality == "image":
            params["learning_rate"] /= 2  # 2e-3, the constant-rate first configuration
        steps = int(np.ceil(len(x_train) / params["batch_size"])) * args.epochs
        for schedule in args.schedules.split(","):
            peak = params["learning_rate"] * (args.peak if schedule != "constant" else 1.0)
            keras.utils.set_random_seed(seed)
            model = build_model({**params, "learning_rate": peak, "lr_schedule": schedule}, modality=ds.modality,
                                input_shape=ds.input_shape, num_classes=ds.num_classes,
                                vocabulary_size=ds.vocabulary_size if ds.modality == "text" else None, seed=seed,
                                total_steps=steps)
            start = time.perf_counter()
            history = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=args.epochs,
                                batch_size=params["batch_size"], verbose=0).history["val_accuracy"]
            print(json.dumps({"dataset": args.dataset, "seed": seed, "schedule": schedule, "peak": peak,
                              "best": round(max(history), 4), "history": [round(h, 4) for h in history],
                              "s": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
