"""Optuna storage: a SQLite file under the run folder by default, or any RDB URL
(PostgreSQL for shared studies). Heartbeats let a killed process's trials be failed and retried."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from .errors import ConfigError

_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, safe for messages and logs."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


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


def open_storage(url: str, heartbeat_interval: int = 5, grace_period: int = 20, max_retry: int = 2) -> RDBStorage:
    """An RDBStorage with heartbeats; a clear error (password masked) when it cannot connect."""
    validate_url(url)
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    try:
        return RDBStorage(
            url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
        )
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"the driver for {mask_url(url)!r} is not installed ({exc.name}); "
            "for PostgreSQL: pip install 'hpo-nb[postgres]'."
        ) from None
    except Exception as exc:  # sqlalchemy.exc.OperationalError and friends
        reason = mask_url(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot open storage {mask_url(url)!r}: {reason}") from None


def suppress_experimental_warnings() -> None:
    """We use heartbeats with ask/tell (beating ourselves) and constant_liar on purpose."""
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
