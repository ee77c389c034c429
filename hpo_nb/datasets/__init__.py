"""Datasets by name, and constructors for the user's own data.

A ``Dataset`` knows its modality (image or text), input shape and classes; ``splits`` gives the
seeded, stratified train / validation / test arrays (``split`` the train and validation part that a
trial trains on). The test part is kept out of the search: an official test split where the data
has one (``keras.datasets``, ``test=``), otherwise a stratified ``test_fraction`` carved off first.
Registered names resolve to loaders; ``digits`` (bundled with scikit-learn) is the offline default.
Network datasets fail fast offline with a message that says what to use instead.

Modules: ``dataset`` (Dataset, Splits), ``split`` (stratified hold-outs, vectorizing), ``validation``
(the pass every constructor's input goes through), ``arrays`` (``from_arrays``), ``directory``
(``from_directory``: one folder per class), ``tables`` (``from_dataframe``, ``from_csv``), ``paths``
(``from_path``: any of these by what a path is), ``encoding`` (bytes to text), ``readers`` (files),
``registry`` (names), ``builtin`` (the registered datasets).
"""

from __future__ import annotations

from .arrays import from_arrays, as_test_pair
from .directory import from_directory
from .paths import from_path
from .tables import from_csv, from_dataframe
from .dataset import DEFAULT_TEST_FRACTION, Dataset, Splits
from .raw import network_of
from .readers import download, from_idx, from_text_lines, read_gtsrb_zip, read_idx
from .registry import DatasetInfo, _load_cached, attach, info, is_registered, load, names, register
from .validation import Modality
from . import builtin
from .builtin import GTSRB_MD5, GTSRB_URL, _keras_loader

__all__ = [
    "DEFAULT_TEST_FRACTION", "Dataset", "DatasetInfo", "Modality", "Splits", "attach", "download", "from_arrays",
    "from_csv", "from_dataframe", "from_directory", "from_path",
    "from_idx", "from_text_lines", "info", "as_test_pair", "is_registered", "load", "names", "network_of", "read_gtsrb_zip",
    "read_idx", "register",
]
