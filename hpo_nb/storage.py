"""Optuna storage: a SQLite file under the run folder by default, or any RDB URL
(PostgreSQL for shared studies). Heartbeats let a killed process's trials be failed and retried;
the study lock makes counting the budget and ``ask()`` one step across processes."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import socket
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import unquote

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from .errors import ConfigError

log = logging.getLogger("hpo_nb")

_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, safe for messages and logs. Masks up to the
    last '@', so a password with an unencoded '@' or '/' is masked whole."""
    return re.sub(r"(://[^:/@]*:).*@", r"\1***@", url)


def _password(url: str) -> str | None:
    match = re.search(r"://[^:/@]*:(.*)@", url)
    return match.group(1) if match else None


def _scrub(text: str, url: str) -> str:
    """``text`` with the URL's password (raw, decoded, or any part around an '@') masked."""
    text = mask_url(text)
    secret = _password(url)
    if secret:
        for part in sorted({secret, unquote(secret), *secret.split("@")}, key=len, reverse=True):
            if len(part) >= 3:
                text = text.replace(part, "***")
    return text


def default_url(run_dir: Path) -> str:
    return f"sqlite:///{(run_dir / 'study.db').resolve()}"


def validate_url(url: str) -> None:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(
            f"storage must be an Optuna storage URL such as 'sqlite:///runs/study.db' or "
            f"'postgresql://user:password@host/db', not {mask_url(str(url))!r}."
        )
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    if scheme not in _SCHEMES:
        raise ConfigError(f"unsupported storage scheme {scheme!r} in {mask_url(url)!r}; use one of {', '.join(_SCHEMES)}.")
    if scheme == "sqlite":
        return
    if url.split("://", 1)[1].count("@") > 1:
        raise ConfigError(
            f"storage URL {mask_url(url)!r} has more than one '@': percent-encode special characters in the "
            "user name and password ('@' as %40, '/' as %2F, ':' as %3A)."
        )
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception as exc:  # ArgumentError, or ValueError for a bad port
        raise ConfigError(
            f"storage URL {mask_url(url)!r} is malformed ({_scrub(str(exc), url)}); the form is "
            "postgresql://user:password@host:5432/database."
        ) from None
    if not parsed.host or not parsed.database:
        raise ConfigError(
            f"storage URL {mask_url(url)!r} needs a host and a database name: "
            "postgresql://user:password@host:5432/database."
        )


def _with_driver(url: str) -> str:
    """'postgres://' and plain 'postgresql://' use the installed driver: SQLAlchemy 2.1 defaults
    to psycopg 3, while the ``postgres`` extra installs psycopg2-binary."""
    scheme, rest = url.split("://", 1)
    if scheme not in ("postgres", "postgresql"):
        return url
    import importlib.util

    driver = "psycopg2" if importlib.util.find_spec("psycopg2") else "psycopg"
    return f"postgresql+{driver}://{rest}"


def open_storage(url: str, heartbeat_interval: int = 5, grace_period: int = 20, max_retry: int = 2) -> RDBStorage:
    """An RDBStorage with heartbeats; a clear error (password masked) when it cannot connect."""
    validate_url(url)
    shown, url = mask_url(url), _with_driver(url)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    try:
        for attempt in range(3):
            try:
                storage = RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
                )
                return _tune_sqlite(storage) if url.startswith("sqlite") else storage
            except (IntegrityError, ProgrammingError, OperationalError) as exc:
                # Processes starting together on a fresh database race to create Optuna's tables
                # (SQLite says "table ... already exists"); the loser finds them made on the next try.
                if attempt == 2 or (isinstance(exc, OperationalError) and "already exists" not in str(exc)):
                    raise
                time.sleep(0.5 + attempt)
        raise AssertionError("unreachable")
    except ImportError as exc:  # Optuna re-raises the driver's ModuleNotFoundError as ImportError
        missing = getattr(exc.__cause__, "name", None) or getattr(exc, "name", None) or "its driver"
        raise ConfigError(
            f"the database driver for {shown!r} is not installed ({missing}); "
            "for PostgreSQL: pip install 'hpo-nb[postgres]'."
        ) from None
    except Exception as exc:  # sqlalchemy.exc.OperationalError and friends
        reason = _scrub(str(exc).splitlines()[0], url) if str(exc) else type(exc).__name__
        hint = "" if url.startswith("sqlite") else (
            " Check that the database server is running and reachable from here, and the user, password "
            "and database name.")
        raise ConfigError(f"cannot open storage {shown!r}: {reason}.{hint}") from None


def refuse_orphaned_models(storage: Any, study_name: str, models_dir: Path) -> None:
    """Refuse to start a study afresh next to the models an earlier one saved.

    A deleted or 0-byte ``study.db`` opens as an empty storage; a new study there numbers its
    trials from 0 again and would overwrite ``models/trial_0000.keras`` and the rest.

    Args:
        storage: the opened storage; None: the default storage, whose ``study.db`` does not
            exist yet (checked before creating it, so a refusal leaves no empty database).
        study_name: the study about to be created or resumed.
        models_dir: where this study's trials save their models.

    Raises:
        ConfigError: ``models_dir`` holds ``.keras`` files and the storage has no such study;
            the message names the folder and the ways out.
    """
    models = sorted(models_dir.glob("*.keras"))
    if not models or (storage is not None and study_name in optuna.study.get_all_study_names(storage=storage)):
        return
    raise ConfigError(
        f"{models_dir} holds {len(models)} saved model(s) ({models[0].name}, ...) but the storage has no study "
        f"{study_name!r} (its study.db is missing or empty?); a new study would overwrite them. If the study lives "
        "in another storage, pass it as storage= (CLI: --storage URL); else restore the study's database, or move "
        "that models folder away (or pick another name=) to start afresh."
    )


def clean_url(url: Any) -> str:
    """A storage URL as given, without the spaces or newline a copy and paste leaves around it
    (``'sqlite:///a.db '`` would otherwise open a new file named ``'a.db '``), checked.

    Raises:
        ConfigError: not a storage URL (``validate_url``).
    """
    url = url.strip() if isinstance(url, str) else url
    validate_url(url)
    return url


def _tune_sqlite(storage: RDBStorage) -> RDBStorage:
    """Write-ahead log and ``synchronous=NORMAL``: a commit stops waiting for fsyncs.

    A trial commits about 25 times (ask, each suggestion, each stored attribute, tell); with
    SQLite's defaults that cost about 1 s per trial on this machine's disk, 0.3 s tuned
    (measured in benchmarks/RESULTS.md). A killed process still loses nothing committed
    (resume keeps every finished trial); only an OS crash or power cut may drop the last
    commits. Processes on one machine keep sharing the file (not over NFS, as before).
    """
    import sqlite3

    from sqlalchemy import event

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.OperationalError:  # locked by another process: its defaults still work
            pass
        finally:
            cursor.close()

    event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections opened while creating the tables reconnect tuned
    return storage


@contextlib.contextmanager
def study_lock(storage: Any, study_name: str) -> Iterator[None]:
    """Hold a lock shared by every process on this study, so that counting the trials left and
    ``study.ask()`` happen as one step: processes sharing a study never start more than
    ``n_trials``. PostgreSQL: a transaction-level advisory lock (released on commit, or when a
    killed process's connection drops); MySQL: GET_LOCK; SQLite: a lock file next to the database."""
    from sqlalchemy import text

    engine = getattr(storage, "engine", None)
    if engine is None:  # in-memory storage: one process, and the search loop is its only asker
        yield
        return
    dialect = engine.dialect.name
    key = int.from_bytes(hashlib.sha256(f"hpo-nb:{study_name}".encode()).digest()[:8], "big", signed=True)
    if dialect == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            yield
    elif dialect == "mysql":
        with engine.connect() as conn:
            name = f"hpo-nb-{key & 0xFFFFFFFFFFFF:x}"
            conn.execute(text("SELECT GET_LOCK(:name, -1)"), {"name": name})
            try:
                yield
            finally:
                conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
    elif dialect == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with _file_lock(Path(f"{engine.url.database}.lock")):
            yield
    else:
        yield


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: one process per SQLite study
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna at WARNING and its experimental-feature warnings silenced, only while at least one
    such block is open (opening the study, a running search); the caller's verbosity and warning
    filters come back when the last one closes, in whatever order overlapping searches end. We
    use heartbeats with ask/tell (beating ourselves) and ``constant_liar`` on purpose, and report
    progress ourselves. Python's warning filters are process-wide: a warning another thread
    raises meanwhile is filtered the same way."""
    with _QUIET_LOCK:
        if not _QUIET:
            _QUIET.append(optuna.logging.get_verbosity())
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            for message, category in _QUIET_FILTERS:
                warnings.filterwarnings("ignore", message=message, category=category)
        _QUIET.append(None)  # one entry per open block, after the saved verbosity
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET.pop()
            if len(_QUIET) == 1:  # the last block closed: put back what the caller had
                optuna.logging.set_verbosity(_QUIET.pop())
                for message, category in _QUIET_FILTERS:
                    _remove_filter(message, category)


_QUIET: list[Any] = []
_QUIET_LOCK = threading.Lock()
_QUIET_FILTERS = ((".*", optuna.exceptions.ExperimentalWarning),
                  ("Heartbeat of storage is supposed to be used with Study.optimize", Warning))


def _remove_filter(message: str, category: type[Warning]) -> None:
    """Take out the one filter ``quiet_optuna`` added (filters the user added meanwhile stay)."""
    for entry in warnings.filters:
        if entry[0] == "ignore" and getattr(entry[1], "pattern", None) == message and entry[2] is category:
            warnings.filters.remove(entry)
            warnings._filters_mutated()  # type: ignore[attr-defined]  # what filterwarnings itself calls
            return


class Heartbeat:
    """Beats for this process's running trials, so processes sharing a study tell them from a
    dead process's trials (Optuna's ``storages/_heartbeat.py``, for ask/tell). A storage without
    heartbeats (in-memory, or an RDB opened without ``heartbeat_interval``) makes it a no-op.

    Use as a context manager around a search: a thread calls ``beat`` every ``interval`` s
    for each id ``trial_ids()`` returns, until the block ends. ``beat(trial_id)`` also marks a
    trial alive from its first moment (right after ``ask``), so even a death then is detected."""

    def __init__(self, storage: Any, interval: float, trial_ids: Callable[[], Iterable[int]]) -> None:
        self.storage = storage
        self.interval = interval
        # What optuna.storages._heartbeat.is_heartbeat_enabled checks, without its private module.
        get_interval = getattr(storage, "get_heartbeat_interval", None)
        self.enabled = callable(getattr(storage, "record_heartbeat", None)) and callable(get_interval) \
            and get_interval() is not None
        self._trial_ids = trial_ids
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self, trial_id: int) -> None:
        if self.enabled:
            self.storage.record_heartbeat(trial_id)

    def beat_all(self) -> None:
        """One beat for every running trial; a failed beat is logged, not raised (the grace
        period covers a missed one)."""
        for trial_id in list(self._trial_ids()):
            try:
                self.beat(trial_id)
            except Exception as exc:
                log.warning("heartbeat failed: %s", exc)

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self.beat_all()

    def __enter__(self) -> "Heartbeat":
        if self.enabled:
            self._done.clear()
            self._thread = threading.Thread(target=self._run, name="hpo-nb-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()


def runner_id() -> str:
    """Returns: ``"host:pid"``, the mark a search leaves on each trial it runs (user attribute ``runner``)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def died_here(runner: object) -> bool:
    """True if ``runner`` (a trial's ``runner_id``) names a process of this host that no longer
    exists: its trials need not wait out the heartbeat grace period. False whenever unsure (another
    host, a pid now reused or not ours to signal, a malformed mark): the grace period then decides."""
    host, _, pid = str(runner).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: alive, another user's; anything else: unsure
        return False
    return False


_RUN_LOGS: dict[Path, logging.Handler] = {}


def attach_run_log(path: Path) -> logging.Handler:
    """One log file per run folder, the same whether started from a notebook or the CLI. The
    only global state an ``Experiment`` sets: hpo_nb's own logger gets level INFO (so the file
    gets every trial) and the file handler; no other logger changes."""
    path = path.resolve()
    if path not in _RUN_LOGS:
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(message)s"))
        logger = logging.getLogger("hpo_nb")
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        _RUN_LOGS[path] = handler
    return _RUN_LOGS[path]
