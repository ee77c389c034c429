"""Small helpers the benchmark scripts share: quiet TensorFlow, machine facts, RSS, fit timing.

Benchmarks print figures measured side by side in one run; they are never timed tests.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
if str(ROOT) not in sys.path:  # run as `python benchmarks/x.py` from a checkout
    sys.path.insert(0, str(ROOT))


def quiet() -> None:
    """Silence TensorFlow, absl, Optuna and KerasTuner chatter so the tables stay readable."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    except ImportError:
        pass


def rss_mb() -> float:
    """Resident set size of this process, in MB."""
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def machine() -> str:
    """One line: CPU count, memory, load, Python and library versions."""
    import psutil

    parts = [f"{os.cpu_count()} CPUs", f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
             f"load {os.getloadavg()[0]:.1f}", f"Python {platform.python_version()}"]
    for mod in ("tensorflow", "keras", "optuna", "keras_tuner"):
        try:
            parts.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            pass
    return ", ".join(parts)


def mean(values: list[float]) -> float:
    return float(statistics.fmean(values)) if values else float("nan")


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def spread(values: list[float]) -> float:
    """Sample standard deviation (0 for a single value)."""
    return float(statistics.stdev(values)) if len(values) > 1 else 0.0


class FitClock:
    """Wraps ``keras.Model.fit`` process-wide to add up the seconds spent inside it and keep
    every fit's history, whichever framework called it. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = 0.0
        self.histories: list[dict[str, list[float]]] = []

    @contextmanager
    def installed(self) -> Iterator["FitClock"]:
        import keras

        original = keras.Model.fit
        clock = self

        def fit(model: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = original(model, *args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                with clock._lock:
                    clock.seconds += elapsed
            history = getattr(result, "history", None) or {}
            with clock._lock:
                clock.histories.append({k: [float(v) for v in vals] for k, vals in history.items()})
            return result

        keras.Model.fit = fit  # type: ignore[method-assign]
        try:
            yield self
        finally:
            keras.Model.fit = original  # type: ignore[method-assign]

    def best_final_val_accuracy(self, epochs: int) -> float:
        """Best final-epoch validation accuracy over fits that ran every epoch (a pruned or
        stopped fit is not a finished trial), measured the same way for every framework."""
        finals = [h["val_accuracy"][-1] for h in self.histories
                  if len(h.get("val_accuracy", [])) == epochs]
        return max(finals) if finals else float("nan")


def kt_params(hp: Any, space: dict[str, Any]) -> dict[str, Any]:
    """The hpo-nb search space as KerasTuner hyperparameters (same names, ranges, choices)."""
    from hpo_nb.space import Choice, FloatRange, IntRange

    params: dict[str, Any] = {}
    for name, p in space.items():
        if isinstance(p, IntRange):
            params[name] = hp.Int(name, p.low, p.high, step=p.step, sampling="log" if p.log else "linear")
        elif isinstance(p, FloatRange):
            params[name] = hp.Float(name, p.low, p.high, sampling="log" if p.log else "linear")
        elif isinstance(p, Choice):
            opts = list(p.options)
            params[name] = hp.Boolean(name) if set(opts) == {False, True} else hp.Choice(name, opts)
        else:
            params[name] = p.value
    return params


def load_dataset(name: str) -> Any:
    """A registered dataset by name, or "mnist": the MNIST test split shipped offline in
    ../shared/data (10,000 28x28 images; benchmarks may use it, the product never does)."""
    from hpo_nb import datasets

    if name == "mnist":
        root = SHARED_DATA / "mnist"
        return datasets.from_idx(root / "t10k-images-idx3-ubyte.gz", root / "t10k-labels-idx1-ubyte.gz",
                                 name="mnist-test")
    return datasets.load(name)


_RESULT = "RESULT "


def report(result: dict[str, Any]) -> None:
    """A child process' result, as the one line ``run_child`` looks for."""
    print(_RESULT + json.dumps(result), flush=True)


def run_child(cmd: list[str], what: str) -> dict[str, Any] | None:
    """Run one measurement in a fresh process; its ``report``ed result, or None (said on stderr)."""
    out = subprocess.run(cmd, capture_output=True, text=True)
    line = next((l for l in out.stdout.splitlines() if l.startswith(_RESULT)), None)
    if line is None:
        print(f"{what} FAILED:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}", file=sys.stderr, flush=True)
        return None
    return json.loads(line[len(_RESULT):])
