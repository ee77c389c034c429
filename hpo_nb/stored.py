"""A stored study read back by name, without its dataset: what ``hpo-nb show`` and ``hpo-nb
export`` read, and what a terminal user needs to see a result without Python.

It never creates a study, never trains, never imports TensorFlow: reading a result back is an
Optuna query. The search space is rebuilt from the reprs the study recorded (``study.open_study``
stores ``{name: repr(param)}``), parsed with ``ast`` (never ``eval``: the storage may be shared).
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path
from typing import Any

import optuna

from . import records, space as spaces
from .baseline import stored_baseline
from .errors import ConfigError
from .results import StudyResults
from .storage import clean_url, default_url, mask_url, open_storage, quiet_optuna

_PARAMS = {"IntRange": spaces.IntRange, "FloatRange": spaces.FloatRange, "Choice": spaces.Choice,
           "Fixed": spaces.Fixed}


def parse_param(text: str) -> Any:
    """A parameter from its recorded repr, e.g. ``"Choice(options=(3, 5))"``.

    Returns:
        IntRange | FloatRange | Choice | Fixed, or None when ``text`` is not such a repr.
    """
    try:
        node = ast.parse(text, mode="eval").body
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _PARAMS):
            return None
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
        return _PARAMS[node.func.id](*[ast.literal_eval(a) for a in node.args], **kwargs)
    except (SyntaxError, ValueError, TypeError):
        return None


def _holds_study(db: Path) -> bool:
    """Whether the SQLite file ``<runs>/<name>/study.db`` holds a study called ``<name>`` (a folder
    left by a refused or interrupted start may hold an empty database). Read without leaving a
    file behind: a WAL database opened even read-only gets ``-wal``/``-shm`` files that a reader
    cannot remove, so one without a ``-wal`` file (no writer since its last checkpoint) is read as
    immutable, which creates none."""
    import sqlite3

    idle = not db.with_name(db.name + "-wal").exists()
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro{'&immutable=1' if idle else ''}", uri=True)
    except sqlite3.Error:
        return False
    try:
        return con.execute("SELECT 1 FROM studies WHERE study_name = ?", (db.parent.name,)).fetchone() is not None
    except sqlite3.Error:
        return False
    finally:
        con.close()  # `with connect()` only ends a transaction; the connection would stay open


def study_names(storage: Any, runs_dir: str | Path = "runs") -> list[str]:
    """The studies in ``storage`` (an Optuna storage), or, when it is None (the default storage),
    those under ``runs_dir`` (``<runs_dir>/<name>/study.db`` holding ``<name>``), sorted."""
    if storage is not None:
        return sorted(s.study_name for s in storage.get_all_studies())
    return sorted(p.parent.name for p in Path(runs_dir).glob("*/study.db") if _holds_study(p))


def new_study_notice(name: str, storage: Any, url: str | None, runs_dir: Path) -> str | None:
    """What to say when ``name``, given without a dataset, starts a new study on the default
    dataset while other studies are in the same storage (a mistyped name would otherwise start a
    full search unnoticed); None when there are none, or ``name`` is one of them.

    Args:
        name: the study name given.
        storage: the opened Optuna storage, or None for the default one (``<runs_dir>/<name>/study.db``).
        url: its URL as given (None: the default storage), shown with the password masked.
        runs_dir: the folder of run folders (the default storage's studies).

    Returns:
        str | None: ``"hpo-nb: no study 'typo' in runs/: starting a new one on digits (existing: a, b)"``.
    """
    from .reopen import DEFAULTS

    names = study_names(storage, runs_dir)
    others = [n for n in names if n != name]
    if not others or name in names:
        return None
    where = mask_url(url) if url else f"{runs_dir}/"
    return f"hpo-nb: no study {name!r} in {where}: starting a new one on {DEFAULTS['dataset']} (existing: {', '.join(others)})"


class StoredStudy(StudyResults):
    """``Experiment``'s results, analysis and drawings for a study found by name.

    Args:
        name: the study name (``Experiment(name=...)``, ``hpo-nb run --name``).
        storage: an Optuna storage URL; None: ``<runs_dir>/<name>/study.db``.
        runs_dir: the folder of run folders (only for the default storage).

    Raises:
        ConfigError: the storage URL is malformed, or holds no study of that name (the message
            lists the ones it does hold).
    """

    def __init__(self, name: str, storage: str | None = None, runs_dir: str | Path = "runs") -> None:
        self.name = name
        self.run_dir = Path(runs_dir) / name
        if storage is None:
            if not (self.run_dir / "study.db").exists():
                known = study_names(None, runs_dir)
                raise ConfigError(f"no study {name!r} under {runs_dir}/ (no {self.run_dir / 'study.db'}); "
                                  + (f"studies there: {', '.join(known)}." if known else
                                     "run one with `hpo-nb run --name NAME`, or pass --storage URL."))
            storage = default_url(self.run_dir)
        storage = clean_url(storage)
        with quiet_optuna():
            rdb = open_storage(storage)
            names = [s.study_name for s in optuna.get_all_study_summaries(rdb, include_best_trial=False)]
            if name not in names:
                raise ConfigError(f"no study {name!r} in {mask_url(storage)}; studies there: "
                                  f"{', '.join(sorted(names)) or 'none'}.")
            self.study = optuna.load_study(study_name=name, storage=rdb)
        recorded = self.study.user_attrs.get("hpo_nb") or {}
        self.settings: dict[str, Any] = dict(recorded)
        self.mode = str(recorded.get("mode", "simple"))
        parsed = {k: parse_param(v) for k, v in (recorded.get("search_space") or {}).items()}
        self.space = {k: p for k, p in parsed.items() if p is not None}
        self.metric = str(recorded.get("metric", "accuracy"))
        # what results, warnings and `show` measure against; None for studies older than it
        self.baseline, self.class_names = stored_baseline(self.study.user_attrs)

    def test_accuracy(self, trial: int) -> tuple[float | None, int]:
        """(test accuracy, test samples) stored by ``evaluate()`` for a trial; (None, 0) if never evaluated."""
        stored = records.stored_evaluations(self.study).get(trial) or {}
        return stored.get("test_accuracy"), int(stored.get("n_test") or 0)

    def model_file(self, trial: int | None = None) -> Path | None:
        """Where a trial's saved model is on this machine, or None.

        The study stores the path as the search saw it (relative to where it ran); from another
        folder the file is found in this run folder's ``models/``.
        """
        stored = self.trial(trial).model_path
        if not stored:
            return None
        for candidate in (Path(stored), self.run_dir / "models" / Path(stored).name):
            if candidate.exists():
                return candidate.resolve()
        return None

    def export_model(self, path: str | Path, trial: int | None = None, overwrite: bool = False) -> Path:
        """Copy a trial's saved model (the best by default) to ``path``.

        The file is the ``.keras`` the search saved: the network with the dataset's preprocessing
        inside (``best_model(raw_inputs=True)``), loadable with ``keras.models.load_model``.

        Args:
            path: a ``.keras`` file, or an existing folder (the file is then ``<name>-trial<N>.keras``).
            trial: a trial number; None: the best trial.
            overwrite: replace an existing file at the target (``hpo-nb export --force``).

        Returns:
            pathlib.Path: the written file.

        Raises:
            ConfigError: no such trial, it has no saved model here, ``path`` is not a ``.keras``
                file or a folder, or the file exists and ``overwrite`` is False.
        """
        result = self.trial(trial)
        source = self.model_file(result.number)
        if source is None:
            hint = f"; hpo-nb show {self.name} lists the complete trials" if trial is not None else ""
            raise ConfigError(f"study {self.name!r}: {records.no_model_reason(result)}{hint}.")
        target = Path(path)
        if target.is_dir():
            target = target / f"{self.name}-trial{result.number}.keras"
        elif target.suffix != ".keras":
            raise ConfigError(f"export path {str(path)!r} must end in .keras (Keras refuses other names) "
                              "or be an existing folder.")
        if target.exists() and not overwrite:
            raise ConfigError(f"{target} exists; pass --force (overwrite=True) to replace it, or another path.")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return target
