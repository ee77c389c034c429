"""hpo-nb: notebook-first hyperparameter optimization for Keras, with live progress.

Start with ``Experiment`` (``help(hpo_nb.Experiment)``); bring your data with ``datasets``
(``from_directory``, ``from_csv``, ``from_dataframe``, ``from_arrays``, ``from_idx``,
``from_text_lines``, ...); or open the no-code page with
``app()``. Extension points: an ``Executor`` runs ``TrialJob``s somewhere else; a ``Renderer``
(any ``f(snapshot)``) shows each ``Snapshot`` of a running search. Everything not in
``__all__`` is internal and may change.

Importing hpo_nb is light: TensorFlow, Keras, ipywidgets and Plotly load when first used.
"""

from __future__ import annotations

import os as _os
from importlib import metadata as _metadata
from typing import TYPE_CHECKING as _TYPE_CHECKING, Any as _Any

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of notebooks

from . import tf_stderr as _tf_stderr

_tf_stderr.install()  # absl's pre-init block is written at fd level before that variable is read

from . import datasets
from .datasets import Dataset, from_arrays, from_csv, from_dataframe, from_directory, from_idx, from_text_lines
from .devices import split_cpu
from .errors import ConfigError, DatasetUnavailableError, HpoNbError
from .executors.base import Executor, TrialJob
from .experiment import Experiment
from .progress import Renderer, Snapshot
from .records import TrialResult
from .spec import TrialOutcome, TrialSpec

if _TYPE_CHECKING:
    from .nocode import App

try:
    __version__ = _metadata.version("hpo-nb")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"


def app(**options: _Any) -> "App":
    """The no-code app: pick a dataset and a mode, Start, watch, download the best model.

    Display the returned object (the last line of a cell), or serve
    ``voila notebooks/app.ipynb`` for a page without code.

    Args:
        **options: preset the form (``dataset``, ``mode``, ``n_trials``, ``max_epochs``,
            ``concurrency``, ``executor``, ``space`` = "quick" | "full", ``backend`` for the 3D
            view); anything else goes to ``Experiment`` (``runs_dir``, ``seed``, ...).

    Returns:
        hpo_nb.nocode.App: the app; its ``root`` is an ``ipywidgets.VBox``.

    Raises:
        ConfigError: an option the form cannot show (e.g. an unknown mode).
    """
    from .nocode import app as _app

    return _app(**options)


__all__ = [
    "ConfigError",
    "Dataset",
    "DatasetUnavailableError",
    "Executor",
    "Experiment",
    "HpoNbError",
    "Renderer",
    "Snapshot",
    "TrialJob",
    "TrialOutcome",
    "TrialResult",
    "TrialSpec",
    "__version__",
    "app",
    "datasets",
    "from_arrays",
    "from_csv",
    "from_dataframe",
    "from_directory",
    "from_idx",
    "from_text_lines",
    "split_cpu",
]
