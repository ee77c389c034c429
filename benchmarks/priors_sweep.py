"""Which corners of a broad CNN space learn within 5 epochs? The sweep behind the default priors.

Random configurations (seeded) from a space wider than hpo-nb's default, each trained for 5 epochs
on digits' training split and scored on its validation split; one JSON line per configuration.
It showed that the configurations stuck below 0.90 all had average pooling, a learning rate of
3e-4 or batch 64 on ~1,150-1,450 samples, which is why those are out of the default space
(``hpo_nb/space.py``). Not a timed benchmark.

    .venv/bin/python benchmarks/priors_sweep.py --n 40 --seed 0 | sort -r | head
"""

from __future__ import annotations

import argparse
import json
import random
import time

import benchlib

WIDE_SPACE = dict(conv_blocks=[1, 2, 3], filters=[16, 32, 64], kernel_size=[3, 5],
                  activation=["relu", "elu", "swish", "gelu"], pooling=["max", "average"], batch_norm=[False],
                  dropout=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5], dense_layers=[0, 1, 2], dense_units=[64, 128, 256],
                  optimizer=["adam", "adamw", "rmsprop", "nadam"], learning_rate=[3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2],
                  batch_size=[8, 16, 32, 64])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    benchlib.quiet()
    from hpo_nb import datasets
    from hpo_nb.models import build_model

    ds = datasets.load("digits")
    x_train, y_train, x_val, y_val = ds.split(0.2, 0)
    rng = random.Random(args.seed)
    for i in range(args.n):
        params = {k: rng.choice(v) for k, v in WIDE_SPACE.items()}
        model = build_model(params, modality="image", input_shape=ds.input_shape, num_classes=ds.num_classes, seed=i)
        start = time.perf_counter()
        history = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=args.epochs,
                            batch_size=params["batch_size"], verbose=0).history["val_accuracy"]
        print(json.dumps({"best": round(max(history), 4), "last": round(history[-1], 4),
                          "s": round(time.perf_counter() - start, 1), **params}), flush=True)


if __name__ == "__main__":
    main()
