"""What the importance table costs: PED-ANOVA (Optuna 5's default) vs fANOVA, side by side.

Builds in-memory Optuna studies of 20 / 50 / 100 complete trials whose user attributes look like
hpo-nb's (accuracy, health, duration), then times ``importance_table`` (8 targets, 6 searched
parameters) with each evaluator, median of 3. Prints milliseconds and the fANOVA / PED-ANOVA ratio.

    .venv/bin/python benchmarks/importance_cost.py
"""

from __future__ import annotations

import math
import random
import statistics
import time

from benchlib import quiet

quiet()

import optuna  # noqa: E402
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution  # noqa: E402

from hpo_nb.analysis.importance import importance_table  # noqa: E402

DISTRIBUTIONS = {
    "learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
    "dropout": FloatDistribution(0.0, 0.5),
    "batch_size": CategoricalDistribution([16, 32, 64, 128]),
    "filters": CategoricalDistribution([16, 32, 64]),
    "conv_blocks": IntDistribution(1, 3),
    "activation": CategoricalDistribution(["relu", "elu", "tanh"]),
}


def study_of(n: int, seed: int = 0) -> optuna.Study:
    rng = random.Random(seed)
    study = optuna.create_study(direction="maximize")
    for _ in range(n):
        p = {"learning_rate": 10 ** rng.uniform(-4, -2), "dropout": rng.uniform(0, 0.5),
             "batch_size": rng.choice([16, 32, 64, 128]), "filters": rng.choice([16, 32, 64]),
             "conv_blocks": rng.randint(1, 3), "activation": rng.choice(["relu", "elu", "tanh"])}
        acc = 0.95 - 0.1 * abs(math.log10(p["learning_rate"]) + 2.7) + rng.gauss(0, 0.01)
        health = {"gradient_health": rng.uniform(0.8, 1), "dead_units": rng.uniform(0, 0.3) * (p["activation"] == "relu"),
                  "saturated_units": rng.uniform(0, 0.2) * (p["activation"] == "tanh"),
                  "overfitting_gap": rng.uniform(0, 0.1) + 0.2 * (0.5 - p["dropout"]),
                  "learning_progress": rng.uniform(0.8, 1), "loss_stability": rng.uniform(0.7, 1), "health_score": rng.uniform(0.6, 0.9)}
        study.add_trial(optuna.trial.create_trial(
            params=p, distributions=DISTRIBUTIONS, value=acc,
            user_attrs={"accuracy": acc, "health": health,
                        "duration_s": p["conv_blocks"] * p["filters"] / p["batch_size"] + rng.uniform(0, 1)}))
    return study


def median_ms(study: optuna.Study, evaluator: str, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        importance_table(study, list(DISTRIBUTIONS), evaluator=evaluator)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    print(f"{'trials':>6} {'PED-ANOVA ms':>13} {'fANOVA ms':>10} {'fANOVA / PED-ANOVA':>19}")
    for n in (20, 50, 100):
        study = study_of(n)
        ped, fan = median_ms(study, "ped-anova"), median_ms(study, "fanova")
        print(f"{n:>6} {ped:>13.1f} {fan:>10.1f} {fan / ped:>18.1f}x")


if __name__ == "__main__":
    main()
