"""TensorFlow's start-up chatter kept out of notebooks and terminals, its real errors kept in.

Importing TensorFlow (directly, or through ``import keras``) makes its C++ libraries write, at
the file-descriptor level and before ``TF_CPP_MIN_LOG_LEVEL`` is read by absl::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:... port.cc:153] oneDNN custom operations are on. ...

twice per process. A Jupyter kernel forwards fd 2 as a red stderr block; a terminal shows it
between progress bars. ``TF_ENABLE_ONEDNN_OPTS=0`` would silence it only by turning oneDNN off
(slower CPU kernels), so instead the one import of the ``tensorflow`` package runs with fd 2
pointed at a temporary file, and what was written there is sorted afterwards (``route``):
absl's banner and info/warning records (``I``/``W`` lines) go to hpo_nb's logger at INFO
(``run.log`` of an experiment); anything else, errors (``E``/``F`` records) and plain text,
goes back to stderr as it was, and to the log as a warning.

``install()`` (called when ``hpo_nb`` is imported) adds a meta-path finder that wraps the loader
of the ``tensorflow`` package, once; if TensorFlow was imported before hpo_nb, nothing changes.
Set ``HPO_NB_TF_STDERR=show`` to see TensorFlow's output unchanged.

One runtime notice gets the same treatment. The first op that oneDNN cannot run for its dtype
logs, once per process and at ERROR level although nothing failed::

    E0000 00:00:... util.cc:131] oneDNN supports DT_BOOL only on platforms with AVX-512. Falling
    back to the default Eigen-based implementation if present.

Every masked Keras RNN meets it at its first fit or predict: Keras' TensorFlow backend casts the
mask to bool and transposes it to time-major (``keras/src/backend/tensorflow/rnn.py``), and
oneDNN's Transpose has no bool kernel (on any CPU, whatever the message says about AVX-512). The
cast is Keras' own, so no mask we build avoids it. ``settle_onednn_notice()`` runs one bool
transpose with fd 2 captured, so that the notice (``absl::call_once`` in TensorFlow's
``util.cc``) is spent there and goes to the log; training and loading call it before a model runs.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
import threading
from typing import Any, Iterator, Sequence

log = logging.getLogger("hpo_nb.tensorflow")

_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_RECORD = re.compile(r"^([IWEF])\d{4} ")  # absl's glog-style prefix: severity, MMDD
_LOCK = threading.Lock()
# known-harmless records that absl writes at ERROR level: the fallback notice above
_HARMLESS = re.compile(r"^E\d{4} .*\] oneDNN supports DT_\w+ only on platforms with AVX-512\. "
                       r"Falling back to the default Eigen-based implementation")
_SETTLED = threading.Event()


def route(text: str) -> tuple[str, str]:
    """Split captured start-up output into (quiet, shown).

    A record starts at absl's banner or an ``I|W|E|F`` + MMDD line; lines that follow it without
    such a start belong to it (e.g. the CPU-feature notice's second line). Text before any record
    is shown. oneDNN's dtype-fallback notice is an ``E`` record but quiet (module docstring).

    Args:
        text: what was written to fd 2 during the import.

    Returns:
        (str, str): the banner, info/warning records and the fallback notice (for the log only);
        everything else (for stderr), each with its original line ends.
    """
    quiet: list[str] = []
    shown: list[str] = []
    current = shown
    for line in text.splitlines(keepends=True):
        bare = line.rstrip("\r\n")
        match = _RECORD.match(bare)
        if bare == _BANNER:
            current = quiet
        elif match:
            current = quiet if match.group(1) in "IW" or _HARMLESS.match(bare) else shown
        current.append(line)
    return "".join(quiet), "".join(shown)


@contextlib.contextmanager
def captured_stderr_fd() -> Iterator[list[str]]:
    """fd 2 points at a temporary file inside the block; the list gets its text at exit.

    Python-level ``sys.stderr`` of a terminal writes to fd 2 too, so anything printed meanwhile
    is captured as well (and shown after, by ``route``). Without a usable fd 2 the block runs
    unchanged and the list stays empty.
    """
    out: list[str] = []
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):
        pass
    try:
        saved = os.dup(2)
    except OSError:
        yield out
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            out.append(sink.read().decode("utf-8", "replace"))


def report(text: str, when: str = "loading") -> None:
    """Send captured output where it belongs (see ``route``); ``when`` names the moment in the log."""
    quiet, shown = route(text)
    if quiet:
        log.info("TensorFlow messages while %s (kept out of the output):\n%s", when, quiet.rstrip())
    if shown:
        if log.hasHandlers():  # else logging's last resort would print it a second time
            log.warning("TensorFlow wrote to stderr while %s:\n%s", when, shown.rstrip())
        try:
            os.write(2, shown.encode("utf-8", "replace"))
        except OSError:
            pass


def settle_onednn_notice() -> None:
    """Spend oneDNN's once-per-process dtype-fallback notice where it is captured (module docstring).

    Call it after TensorFlow's runtime is set up (logical devices, memory growth: an eager op
    fixes them) and before a model runs; later calls return at once. Anything else written to fd 2
    in those few milliseconds (another thread's real error) is shown as usual, by ``report``.
    Nothing happens with ``HPO_NB_TF_STDERR=show``.
    """
    if _SETTLED.is_set() or os.environ.get("HPO_NB_TF_STDERR", "").lower() == "show":
        return
    import tensorflow as tf

    with _LOCK:
        if _SETTLED.is_set():
            return
        text: list[str] = []
        try:
            with captured_stderr_fd() as text, tf.device("/cpu:0"):  # oneDNN's kernels are the CPU's
                tf.transpose(tf.zeros((1, 2), tf.bool))
        finally:
            _SETTLED.set()
            report("".join(text), "running a first model")


class _QuietLoader(importlib.abc.Loader):
    """Delegates to the package's own loader; runs its ``exec_module`` with fd 2 captured."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__loader__ = self._loader  # leave no trace of the wrapper on the module
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        with _LOCK:
            text: list[str] = []
            try:
                with captured_stderr_fd() as text:
                    self._loader.exec_module(module)
            finally:
                report("".join(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds the packages in ``names`` with the next finders and wraps their loader, once each."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = set(names)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.names or fullname in sys.modules:
            return None
        self.names.discard(fullname)
        if not self.names and self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


class _NoRetracingNotice(logging.Filter):
    """Drops TensorFlow's "N out of the last N calls to <function ...> triggered tf.function
    retracing" warning. It counts traces of Keras' shared train/predict functions across models:
    a search builds a new model per trial, and an evaluation loads new ones, so retracing is by
    design here, not the accidental Python-value arguments the warning is about."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def quiet_retracing_notice() -> None:
    """Install ``_NoRetracingNotice`` on the ``tensorflow`` logger (once; before or after TensorFlow
    is imported: the logger is the same object)."""
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _NoRetracingNotice) for f in logger.filters):
        logger.addFilter(_NoRetracingNotice())


def install(names: Sequence[str] = ("tensorflow",)) -> bool:
    """Quiet the first import of each package in ``names`` (see the module docstring).

    Args:
        names: top-level package names; TensorFlow's by default.

    Returns:
        bool: True when a finder was added; False when they are all imported already, one is
        installed, or ``HPO_NB_TF_STDERR=show``.
    """
    if os.environ.get("HPO_NB_TF_STDERR", "").lower() == "show":
        return False
    quiet_retracing_notice()
    todo = [n for n in names if n not in sys.modules]
    if not todo or any(isinstance(f, _QuietImport) and f.names & set(todo) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, _QuietImport(todo))
    return True
