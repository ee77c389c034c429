"""The health score gated by learning progress, before and after, side by side.

"Before" recomputes the previous formula from each trial's stored metrics and history: chance level
ln(K), ``health_score`` the plain mean of the six goodness terms. "After" is ``hpo_nb.health`` now:
chance level the validation labels' entropy, the mean times ``learning_progress``. Three cases:

1. digits, a tiny budget (nets that learned): both scores per trial and whether the ranking changed;
2. a digits MLP with learning rate 0 (loss flat at chance) next to one that learned (lr 0.5);
3. SMS spam (87 % ham), 1 epoch on 10 %: nets stuck at the majority-class rate next to one that learned.

    .venv/bin/python benchmarks/health_gate.py [--trials 8]
"""

from __future__ import annotations

import argparse
import math
import tempfile

from benchlib import SHARED_DATA, quiet

quiet()

from hpo_nb import Experiment, datasets, health  # noqa: E402


def before(metrics: dict, history: dict, num_classes: int) -> float:
    """The health score as computed before the gate (ln(K) chance level, plain mean)."""
    losses = [v for key in ("loss", "val_loss") for v in history.get(key, []) if math.isfinite(v)]
    chance = math.log(num_classes)
    progress = min(1.0, max(0.0, (chance - min(losses)) / (health.PROGRESS_TOLERANCE * chance))) if losses else 0.0
    stability = health.loss_stability(history.get("val_loss", [])) * progress
    good = health.goodness({**metrics, "learning_progress": progress, "loss_stability": stability})
    return sum(good.values()) / len(good)


def table(exp: Experiment, num_classes: int) -> None:
    rows = []
    for t in exp.study.get_trials():
        if t.state.name == "COMPLETE":
            m, hist = t.user_attrs["health"], t.user_attrs.get("history", {})
            rows.append((t.number, t.user_attrs["accuracy"], before(m, hist, num_classes), m["health_score"],
                         m["learning_progress"]))
    print("trial  val_acc  health_before  health_after  learning_progress")
    for r in rows:
        print("%5d  %7.4f  %13.4f  %12.4f  %17.3f" % r)
    learned = [r for r in rows if r[4] >= 1.0]
    order = [r[0] for r in sorted(learned, key=lambda r: -r[2])], [r[0] for r in sorted(learned, key=lambda r: -r[3])]
    print(f"ranking of the nets that learned: before {order[0]}, after {order[1]}: "
          f"{'unchanged' if order[0] == order[1] else 'CHANGED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=8, help="digits trials in case 1 (default: 8)")
    args = parser.parse_args()
    runs = tempfile.mkdtemp(prefix="health-gate-")

    print("1. digits, max_epochs=2, sample_fraction=0.3, mode='health'")
    exp = Experiment("digits", n_trials=args.trials, max_epochs=2, sample_fraction=0.3, mode="health",
                     progress="none", runs_dir=runs, name="digits", save_models=False, diagnostics=False,
                     search_space={"conv_blocks": 1, "dense_layers": 0, "batch_norm": False})
    exp.run()
    table(exp, 10)

    print("\n2. a digits MLP (64-32-10), SGD, 3 epochs")
    import keras
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    for lr in (0.0, 0.5):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((64,))
        hidden = keras.layers.Activation("relu")(keras.layers.Dense(32)(inputs))
        model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(hidden))
        model.compile(optimizer=keras.optimizers.SGD(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        fit = model.fit(x[:1400], y[:1400], validation_data=(x[1400:], y[1400:]), epochs=3, batch_size=64, verbose=0)
        hist = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
        m = health.measure(model, hist, x[1400:], y[1400:])
        print(f"lr={lr}: val_acc {max(hist['val_accuracy']):.3f}, val_loss {hist['val_loss'][0]:.3f} -> "
              f"{hist['val_loss'][-1]:.3f}: health before {before(m, hist, 10):.3f}, after {health.health_score(m):.3f}")

    print("\n3. SMS spam (87 % ham), max_epochs=1, sample_fraction=0.1, 8-unit biLSTM")
    sms = datasets.from_text_lines(SHARED_DATA / "sms_spam" / "SMSSpamCollection", sep="\t", name="sms",
                                   max_tokens=2000, sequence_length=32)
    exp = Experiment(sms, n_trials=4, max_epochs=1, sample_fraction=0.1, mode="health", progress="none",
                     runs_dir=runs, name="sms", save_models=False, diagnostics=False, pruning=False,
                     search_space={"lstm_units": 8, "embedding_dim": 8, "lstm_layers": 1})
    exp.run()
    table(exp, 2)


if __name__ == "__main__":
    main()
