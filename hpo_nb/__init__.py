"""hpo-nb: notebook-first hyperparameter optimization for Keras, with live progress."""

from __future__ import annotations

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of notebooks

from . import datasets
from .datasets import Dataset, from_arrays, from_idx, from_text_lines
from .devices import split_cpu
from .errors import ConfigError, DatasetUnavailableError, HpoNbError
from .experiment import Experiment
from .records import TrialResult
from .spec import TrialOutcome, TrialSpec

__version__ = "0.1.0"


def app(**options):  # type: ignore[no-untyped-def]
    """The no-code app (a widget): pick a dataset and a mode, Start, watch, download the best
    model. ``voila notebooks/app.ipynb`` serves it as a page. Options: see ``views.app.App``."""
    from .views.app import app as _app

    return _app(**options)


__all__ = [
    "ConfigError",
    "Dataset",
    "DatasetUnavailableError",
    "Experiment",
    "HpoNbError",
    "TrialOutcome",
    "TrialResult",
    "TrialSpec",
    "__version__",
    "app",
    "datasets",
    "from_arrays",
    "from_idx",
    "from_text_lines",
    "split_cpu",
]
