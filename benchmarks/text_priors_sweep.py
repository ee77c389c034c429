"""Which corners of a broad LSTM space learn within 3 epochs? The sweep behind the text priors.

Random configurations (seeded) from a space wider than hpo-nb's default, each trained for a few
epochs on a text corpus's training split and scored on its validation split (hpo-nb's own split
at ``--split-seed``); one JSON line per configuration with the validation accuracy of every epoch.
``--summary FILE`` reads such lines back and prints, per option of each parameter, the mean best
validation accuracy of the configurations that drew it. Not a timed benchmark.

    .venv/bin/python benchmarks/text_priors_sweep.py --dataset polarity --n 40 > sweep.jsonl
    .venv/bin/python benchmarks/text_priors_sweep.py --summary sweep.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections import defaultdict

import benchlib

WIDE_SPACE = dict(embedding_dim=[32, 64, 128, 256], embedding_dropout=[0.0, 0.2, 0.4, 0.5],
                  lstm_layers=[1, 2], lstm_units=[16, 32, 64, 128], bidirectional=[False, True],
                  sequence_pooling=["average", "last", "max"], dropout=[0.0, 0.2, 0.4, 0.5], dense_layers=[0, 1],
                  dense_units=[64, 128], optimizer=["adam", "rmsprop"],
                  learning_rate=[5e-4, 1e-3, 2e-3, 5e-3, 1e-2], batch_size=[16, 32, 64, 128])


def summary(path: str) -> None:
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    print(f"{len(rows)} configurations; best {max(r['best'] for r in rows):.4f}, "
          f"median {statistics.median(r['best'] for r in rows):.4f}")
    by: dict[tuple[str, object], list[float]] = defaultdict(list)
    for r in rows:
        for k in WIDE_SPACE:
            by[(k, r[k])].append(r["best"])
    for k, options in WIDE_SPACE.items():
        cells = [f"{o}: {statistics.mean(by[(k, o)]):.4f} (n={len(by[(k, o)])})" for o in options if by[(k, o)]]
        print(f"{k:18s} " + " | ".join(cells))
    epochs = defaultdict(int)
    for r in rows:
        epochs[r["history"].index(max(r["history"])) + 1] += 1
    print("best epoch:", dict(sorted(epochs.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="polarity")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--summary", default=None, help="summarize a JSON-lines file instead of sweeping")
    args = parser.parse_args()
    if args.summary:
        return summary(args.summary)
    benchlib.quiet()
    from search_quality import load

    from hpo_nb.models import build_model

    ds = load(args.dataset)
    x_train, y_train, x_val, y_val = ds.split(0.2, args.split_seed)
    rng = random.Random(args.seed)
    for i in range(args.n):
        params = {k: rng.choice(v) for k, v in WIDE_SPACE.items()}
        model = build_model(params, modality="text", input_shape=ds.input_shape, num_classes=ds.num_classes,
                            vocabulary_size=ds.vocabulary_size, seed=i)
        start = time.perf_counter()
        history = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=args.epochs,
                            batch_size=params["batch_size"], verbose=0).history["val_accuracy"]
        print(json.dumps({"best": round(max(history), 4), "history": [round(h, 4) for h in history],
                          "s": round(time.perf_counter() - start, 1), **params}), flush=True)


if __name__ == "__main__":
    main()
