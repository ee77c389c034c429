"""Search quality as a user sees it: each tool used the way its own documentation shows.

Same data, same train/validation/test split, same budget (trials x epochs), for:

- ``hpo-nb``: ``Experiment(dataset, n_trials=, max_epochs=, seed=)`` and nothing else (the seed
  varies the run; ``progress="none"`` and a temporary ``runs_dir`` keep the benchmark quiet);
- ``kt-bayes`` / ``kt-hyperband``: KerasTuner ``BayesianOptimization`` / ``Hyperband`` with a
  hypermodel written the way KerasTuner's getting-started guide writes one (a conv/dense net for
  images, an embedding + bidirectional LSTM for text; Adam; ``objective="val_accuracy"``);
- ``optuna``: raw Optuna, ``TPESampler(seed)``, an objective like Optuna's Keras example
  (``keras_simple.py``: one conv layer with suggested filters, kernel, strides and activation,
  RMSprop with a suggested learning rate; for text an LSTM in the same style);
- ``sklearn``: the first model a practitioner tries: ``SVC()`` on pixels, TF-IDF (1-2 grams) +
  ``LogisticRegression`` on text.

Per tool: the best validation accuracy it reports (mean and worst seed), the test accuracy of the
model it selected (on a test split no tool saw), wall time of the search, and the time until its
best-so-far validation accuracy first reached the scikit-learn baseline's ("-" if never).
Each tool, dataset and seed runs in a fresh process; imports and data loading are not timed.

    .venv/bin/python benchmarks/search_quality.py --datasets digits --seeds 0,1     # quick, ~5 min
    .venv/bin/python benchmarks/search_quality.py                                  # the full table
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from typing import Any

import numpy as np

import benchlib

TOOLS = ("hpo-nb", "kt-bayes", "kt-hyperband", "optuna", "sklearn")
BUDGETS = {"digits": (12, 5), "mnist": (8, 3), "polarity": (8, 3), "sms": (8, 3)}
SEEDS = {"digits": (0, 1, 2, 3, 4), "mnist": (0, 1, 2), "polarity": (0, 1, 2), "sms": (0, 1, 2)}


# ----------------------------------------------------------------------------- data


def load(name: str) -> Any:
    """The benchmark datasets: digits (bundled), and the offline copies in ../shared/data."""
    from hpo_nb import datasets

    data = benchlib.SHARED_DATA
    if name == "polarity":
        import zipfile

        archive = zipfile.Path(data / "sentence_polarity" / "sentence_polarity.zip")
        return datasets.from_text_lines({"neg": archive / "sentence_polarity" / "rt-polarity.neg",
                                         "pos": archive / "sentence_polarity" / "rt-polarity.pos"},
                                        name="polarity", encoding="latin-1")
    if name == "sms":
        return datasets.from_text_lines(data / "sms_spam" / "SMSSpamCollection", sep="\t", name="sms")
    return benchlib.load_dataset(name)


def splits(ds: Any, seed: int) -> dict[str, Any]:
    """The split hpo-nb itself uses at this seed (train / validation / test), as arrays the
    models take, plus the raw samples of each part for the scikit-learn baseline."""
    parts, raw = ds.splits(seed=seed), ds.splits(seed=seed, raw=True)
    return {"train": (parts.x_train, parts.y_train), "val": (parts.x_val, parts.y_val),
            "test": (parts.x_test, parts.y_test),
            "raw": ((raw.x_train, raw.y_train), (raw.x_val, raw.y_val), (raw.x_test, raw.y_test))}


# ----------------------------------------------------------------------------- tools


class Trace:
    """Best-so-far validation accuracy over time, from every fit (whichever tool ran it)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.points: list[tuple[float, float]] = []

    def add(self, history: dict[str, list[float]]) -> None:
        if history.get("val_accuracy"):
            self.points.append((time.perf_counter() - self.start, max(history["val_accuracy"])))

    def time_to(self, target: float) -> float | None:
        return next((t for t, acc in self.points if acc >= target - 1e-6), None)  # float32 histories


class TracedList(list):
    """FitClock's list of fit histories, also feeding each one to a Trace as it ends."""

    def __init__(self, trace: Trace) -> None:
        super().__init__()
        self.trace = trace

    def append(self, history: dict[str, list[float]]) -> None:
        super().append(history)
        self.trace.add(history)


def run_hpo_nb(ds: Any, trials: int, epochs: int, seed: int, workdir: str, trace: Trace) -> dict:
    from hpo_nb import Experiment, datasets

    dataset = ds.name if datasets.is_registered(ds.name) else ds  # what a user passes: the name, or their data
    exp = Experiment(dataset, n_trials=trials, max_epochs=epochs, seed=seed, name=f"sq-{seed}", runs_dir=workdir,
                     progress="none")
    trace.start = time.perf_counter()
    exp.run()
    wall = time.perf_counter() - trace.start
    test = exp.evaluate()
    return {"wall": wall, "val": float(exp.best.accuracy), "test": float(test.test_accuracy),
            "states": exp.results["state"].value_counts().to_dict()}


def image_hypermodel(ds: Any) -> Any:
    """KerasTuner getting-started style: a function of ``hp`` returning a compiled model."""
    import keras
    from keras import layers

    def build(hp: Any) -> Any:
        model = keras.Sequential([layers.Input(ds.input_shape)])
        for i in range(hp.Int("conv_layers", 1, 2)):
            model.add(layers.Conv2D(hp.Int(f"filters_{i}", 32, 128, step=32), 3, padding="same", activation="relu"))
            model.add(layers.MaxPooling2D())
        model.add(layers.Flatten())
        model.add(layers.Dense(hp.Int("units", 32, 512, step=32), activation="relu"))
        model.add(layers.Dropout(hp.Float("dropout", 0.0, 0.5)))
        model.add(layers.Dense(ds.num_classes, activation="softmax"))
        model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    return build


def text_hypermodel(ds: Any) -> Any:
    import keras
    from keras import layers

    def build(hp: Any) -> Any:
        model = keras.Sequential([
            layers.Input(ds.input_shape, dtype="int32"),
            layers.Embedding(ds.vocabulary_size, hp.Choice("embedding_dim", [32, 64, 128]), mask_zero=True),
            layers.Bidirectional(layers.LSTM(hp.Int("units", 32, 128, step=32))),
            layers.Dropout(hp.Float("dropout", 0.0, 0.5)),
            layers.Dense(ds.num_classes, activation="softmax"),
        ])
        model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    return build


def run_keras_tuner(kind: str, ds: Any, data: dict, trials: int, epochs: int, seed: int, workdir: str,
                    trace: Trace) -> dict:
    import keras_tuner as kt

    build = image_hypermodel(ds) if ds.modality == "image" else text_hypermodel(ds)
    if kind == "kt-bayes":
        tuner = kt.BayesianOptimization(build, objective="val_accuracy", max_trials=trials, seed=seed,
                                        directory=workdir, project_name=kind, overwrite=True)
    else:  # Hyperband's own budget unit; iterations chosen so that it trains about trials x epochs
        tuner = kt.Hyperband(build, objective="val_accuracy", max_epochs=epochs, factor=3,
                             hyperband_iterations=max(1, round(trials * epochs / (4 * epochs))), seed=seed,
                             directory=workdir, project_name=kind, overwrite=True)
    x, y = data["train"]
    trace.start = time.perf_counter()
    tuner.search(x, y, validation_data=data["val"], epochs=epochs, verbose=0)
    wall = time.perf_counter() - trace.start
    best = tuner.oracle.get_best_trials(1)[0]
    model = tuner.get_best_models(1)[0]
    test = float(model.evaluate(*data["test"], verbose=0)[1])
    return {"wall": wall, "val": float(best.score), "test": test}


def run_optuna(ds: Any, data: dict, trials: int, epochs: int, seed: int, trace: Trace) -> dict:
    import keras
    import optuna
    from keras import layers

    kept: dict[int, Any] = {}

    def create_model(trial: optuna.Trial) -> Any:
        if ds.modality == "image":
            model = keras.Sequential([
                layers.Input(ds.input_shape),
                layers.Conv2D(filters=trial.suggest_categorical("filters", [32, 64]),
                              kernel_size=trial.suggest_categorical("kernel_size", [3, 5]),
                              strides=trial.suggest_categorical("strides", [1, 2]),
                              activation=trial.suggest_categorical("activation", ["relu", "linear"])),
                layers.Flatten(),
                layers.Dense(ds.num_classes, activation="softmax"),
            ])
        else:
            model = keras.Sequential([
                layers.Input(ds.input_shape, dtype="int32"),
                layers.Embedding(ds.vocabulary_size, trial.suggest_categorical("embedding_dim", [32, 64, 128]),
                                 mask_zero=True),
                layers.LSTM(trial.suggest_categorical("units", [32, 64, 128])),
                layers.Dense(ds.num_classes, activation="softmax"),
            ])
        lr = trial.suggest_float("learning_rate", 1e-5, 1e-1, log=True)
        model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.RMSprop(learning_rate=lr),
                      metrics=["accuracy"])
        return model

    def objective(trial: optuna.Trial) -> float:
        keras.backend.clear_session()
        model = create_model(trial)
        x, y = data["train"]
        model.fit(x, y, batch_size=128, epochs=epochs, verbose=0, validation_data=data["val"])
        score = float(model.evaluate(*data["val"], verbose=0)[1])
        kept[trial.number] = model
        return score

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    trace.start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    wall = time.perf_counter() - trace.start
    test = float(kept[study.best_trial.number].evaluate(*data["test"], verbose=0)[1])
    return {"wall": wall, "val": float(study.best_value), "test": test}


def run_sklearn(ds: Any, data: dict) -> dict:
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = data["raw"]
    start = time.perf_counter()
    if ds.modality == "image":
        from sklearn.svm import SVC

        flat = lambda x: np.asarray(x, dtype="float32").reshape(len(x), -1)
        model = SVC().fit(flat(x_tr), y_tr)
        val, test = model.score(flat(x_va), y_va), model.score(flat(x_te), y_te)
    else:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(max_iter=1000))
        model.fit(list(map(str, x_tr)), y_tr)
        val, test = model.score(list(map(str, x_va)), y_va), model.score(list(map(str, x_te)), y_te)
    return {"wall": time.perf_counter() - start, "val": float(val), "test": float(test)}


def child(tool: str, dataset: str, trials: int, epochs: int, seed: int, baseline: float) -> None:
    benchlib.quiet()
    import keras  # noqa: F401  (TensorFlow import: paid before any clock starts)

    ds = load(dataset)
    data = splits(ds, seed)
    trace = Trace()
    clock = benchlib.FitClock()
    clock.histories = TracedList(trace)
    keras.utils.set_random_seed(seed)
    with tempfile.TemporaryDirectory() as workdir, clock.installed():
        if tool == "hpo-nb":
            out = run_hpo_nb(ds, trials, epochs, seed, workdir, trace)
        elif tool.startswith("kt-"):
            out = run_keras_tuner(tool, ds, data, trials, epochs, seed, workdir, trace)
        elif tool == "optuna":
            out = run_optuna(ds, data, trials, epochs, seed, trace)
        else:
            out = run_sklearn(ds, data)
    epochs_run = sum(len(h.get("loss", [])) for h in clock.histories)
    out.update(tool=tool, dataset=dataset, seed=seed, epochs_run=epochs_run,
               to_baseline=0.0 if tool == "sklearn" else trace.time_to(baseline))
    benchlib.report(out)


# ---------------------------------------------------------------------------- driver


def table(rows: list[dict]) -> str:
    head = ("| dataset (trials x epochs) | tool | seeds | best val acc: mean (worst) | test acc: mean (worst) "
            "| wall s | s to baseline (reached) | epochs trained |")
    lines = [head, "|" + "---|" * 8]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        trials, epochs = BUDGETS[dataset]
        for tool in TOOLS:
            rs = [r for r in rows if r["dataset"] == dataset and r["tool"] == tool]
            if not rs:
                continue
            val, test = [r["val"] for r in rs], [r["test"] for r in rs]
            reached = [r["to_baseline"] for r in rs if r["to_baseline"] is not None]
            to_base = f"{benchlib.mean(reached):.1f} ({len(reached)}/{len(rs)})" if reached else f"- (0/{len(rs)})"
            lines.append(f"| {dataset} ({trials}x{epochs}) | {tool} | {len(rs)} | {benchlib.mean(val):.4f} "
                         f"({min(val):.4f}) | {benchlib.mean(test):.4f} ({min(test):.4f}) | "
                         f"{benchlib.mean([r['wall'] for r in rs]):.1f} | {to_base} | "
                         f"{benchlib.mean([r['epochs_run'] for r in rs]):.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,mnist,polarity,sms")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--seeds", default=None, help="comma-separated; default 5 on digits, 3 elsewhere")
    parser.add_argument("--child", nargs=6, metavar=("TOOL", "DATASET", "TRIALS", "EPOCHS", "SEED", "BASELINE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        tool, dataset, trials, epochs, seed, baseline = args.child
        child(tool, dataset, int(trials), int(epochs), int(seed), float(baseline))
        return
    print(benchlib.machine(), flush=True)
    rows: list[dict] = []
    tools = [t for t in args.tools.split(",") if t != "sklearn"]
    for dataset in args.datasets.split(","):
        trials, epochs = BUDGETS[dataset]
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(SEEDS[dataset])
        for seed in seeds:
            base = benchlib.run_child([sys.executable, __file__, "--child", "sklearn", dataset, "0", "0", str(seed),
                                       "0"], f"sklearn {dataset} seed {seed}")
            if base is None:
                continue
            rows.append(base)
            print(f"{dataset} seed {seed}: sklearn val {base['val']:.4f} test {base['test']:.4f}", flush=True)
            for i in range(len(tools)):  # the order rotates with the seed
                tool = tools[(i + seed) % len(tools)]
                out = benchlib.run_child([sys.executable, __file__, "--child", tool, dataset, str(trials),
                                          str(epochs), str(seed), str(base["val"])], f"{tool} {dataset} seed {seed}")
                if out:
                    rows.append(out)
                    print(f"{dataset} seed {seed}: {tool} val {out['val']:.4f} test {out['test']:.4f} "
                          f"wall {out['wall']:.1f}s to-baseline {out['to_baseline']} "
                          f"{out.get('states', '')}", flush=True)
        print(table(rows), flush=True)
    print("\n" + table(rows))


if __name__ == "__main__":
    main()
