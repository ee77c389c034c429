"""The no-code app's form as data: the choices it offers, and the ``Experiment`` arguments a
filled-in form gives, checked before anything loads or trains.

Pure: no widgets, no views; the page (``nocode.py``) reads its widgets into a plain mapping
(``App.form()``) and hands it here, so everything the form decides is testable without a kernel.
"""

from __future__ import annotations

import re
import time
from typing import Any, Mapping

from . import datasets
from .errors import ConfigError
from .executors.base import names as executor_names

MODES = {"accuracy": "simple", "accuracy + health": "health"}
EXECUTORS = tuple(executor_names())
SPACES = ("quick", "full")
# "quick": small networks on half the training data, so a search takes minutes on a laptop CPU.
QUICK_SPACES: dict[str, dict[str, Any]] = {
    "image": {"conv_blocks": [1, 2], "filters": [8, 16], "kernel_size": 3, "dense_layers": [0, 1],
              "dense_units": [32, 64], "batch_size": 64, "learning_rate": (5e-3, 2e-2)},
    "text": {"embedding_dim": [16, 32], "lstm_layers": 1, "lstm_units": [16, 32], "bidirectional": False,
             "dense_layers": 0, "batch_size": 64, "learning_rate": (5e-3, 2e-2)},
}
QUICK_SAMPLE_FRACTION = 0.5


def dataset_options() -> list[tuple[str, str]]:
    """(label, name) for every registered dataset; the ones that need a download say so."""
    options = []
    for name in datasets.names():
        meta = datasets.info(name)
        suffix = " (downloads)" if meta.needs_network else ""
        options.append((f"{name} · {meta.modality}{suffix}", name))
    return options


def mode_label(mode: str) -> str:
    """The form's label for ``mode`` ("simple" / "health", or a label already). Raises
    ``ConfigError`` for any other mode, before the page is built."""
    label = next((label for label, m in MODES.items() if m == mode or label == mode), None)
    if label is None:
        raise ConfigError(f"mode must be 'simple' or 'health', not {mode!r}.")
    return label


def experiment_kwargs(form: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``Experiment`` arguments for a filled-in form. ``defaults`` (from ``app(**options)``)
    fill in what the form does not set. Raises ``ConfigError`` for impossible choices."""
    kwargs = dict(defaults or {})
    mode = MODES.get(form["mode"], form["mode"])
    if form["executor"] not in EXECUTORS:
        raise ConfigError(f"executor must be one of {EXECUTORS}, not {form['executor']!r}.")
    if form["space"] not in SPACES:
        raise ConfigError(f"search space must be one of {SPACES}, not {form['space']!r}.")
    dataset = form["dataset"]
    kwargs.update(dataset=dataset, mode=mode, n_trials=int(form["n_trials"]), max_epochs=int(form["max_epochs"]),
                  concurrency=int(form["concurrency"]), executor=form["executor"])
    if form["space"] == "quick":
        modality = datasets.info(dataset).modality if datasets.is_registered(dataset) else "image"
        kwargs["search_space"] = {**QUICK_SPACES[modality], **dict(kwargs.get("search_space") or {})}
        kwargs.setdefault("sample_fraction", QUICK_SAMPLE_FRACTION)
    if form["executor"] == "runpod":
        runpod = dict(kwargs.get("runpod") or {})
        for key in ("endpoint_id", "api_key", "base_url"):
            value = (form.get(key) or "").strip()
            if value:
                runpod[key] = value
        kwargs["runpod"] = runpod
    kwargs.setdefault("name", study_name(dataset, mode))
    return kwargs


def study_name(dataset: str, mode: str, now: float | None = None) -> str:
    """A fresh study per Start: ``app-<dataset>-<mode>-<yyyymmdd-hhmmss>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"app-{dataset}-{mode}-{stamp}")
