"""Where diagnostics live once a trial is over: the summary as the trial's ``diagnostics`` user
attribute (with the rest of its ``TrialOutcome``), the activation arrays in Optuna's artifact
store (``optuna.artifacts.FileSystemArtifactStore`` under ``<run folder>/artifacts``, or the store
given as ``Experiment(artifact_store=...)``: a folder or an Optuna store that every machine sharing
the study reads, since the study's database holds only the artifacts' ids).

Why the driver uploads: a RunPod worker has neither the study's storage nor the run folder, so
its activation arrays come back inline in the result (base64 ``.npz``, within the bound of
``record``) and the process that records the trial moves them into the artifact store, exactly as
for a local trial. One path for both, and the stored trial never holds the inline blob.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import optuna

from . import record

log = logging.getLogger("hpo_nb")

ARTIFACTS_DIR = "artifacts"


def artifact_store(run_dir: str | Path) -> optuna.artifacts.FileSystemArtifactStore:
    """The run folder's artifact store (created on first use).

    Args:
        run_dir: the experiment's run folder.

    Returns:
        optuna.artifacts.FileSystemArtifactStore: files under ``<run_dir>/artifacts``.
    """
    path = Path(run_dir) / ARTIFACTS_DIR
    path.mkdir(parents=True, exist_ok=True)
    return optuna.artifacts.FileSystemArtifactStore(str(path))


def open_store(location: Any, run_dir: str | Path) -> Any:
    """The artifact store a user chose (``Experiment(artifact_store=...)``), or the run folder's.

    Args:
        location: None (``<run_dir>/artifacts``); a folder (str or Path), e.g. on a disk every
            machine sharing the study mounts (created on first use); or an Optuna artifact store
            (``optuna.artifacts.FileSystemArtifactStore``, ``Boto3ArtifactStore``,
            ``GCSArtifactStore``: anything with ``open_reader``, ``write`` and ``remove``).
        run_dir: the experiment's run folder.

    Returns:
        The artifact store (an Optuna ``ArtifactStore``).

    Raises:
        ConfigError: ``location`` is none of those.
    """
    from ..errors import ConfigError

    if location is None:
        return artifact_store(run_dir)
    if isinstance(location, (str, Path)):
        if not str(location).strip():
            raise ConfigError("artifact_store must be a folder, an optuna.artifacts store, or None; not ''.")
        path = Path(location).expanduser()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"artifact_store folder {path} cannot be used: {exc}. Give a folder this process "
                              "can write (shared by every machine on the study).") from exc
        return optuna.artifacts.FileSystemArtifactStore(str(path))
    if all(callable(getattr(location, name, None)) for name in ("open_reader", "write", "remove")):
        base = getattr(location, "_base_path", None)  # a FileSystemArtifactStore writes into an existing folder
        if isinstance(base, (str, Path)):
            Path(base).mkdir(parents=True, exist_ok=True)
        return location
    raise ConfigError(f"artifact_store must be a folder (str or Path), an optuna.artifacts store "
                      f"(e.g. FileSystemArtifactStore, Boto3ArtifactStore) or None, not {location!r}.")


def describe(store: Any) -> str:
    """Where a store keeps its files, for messages: a folder's path, else the store's class."""
    base = getattr(store, "_base_path", None)  # FileSystemArtifactStore
    if base is not None:
        return str(Path(base).resolve())
    bucket = getattr(store, "bucket_name", None) or getattr(store, "_bucket_name", None)
    return f"{type(store).__name__}({bucket})" if bucket else type(store).__name__


def upload_inline(diagnostics: dict[str, Any], trial: optuna.trial.Trial, store: Any) -> None:
    """Move a summary's inline artifacts into the artifact store, in place, before the trial is
    told (Optuna takes artifacts only for trials that still run).

    Args:
        diagnostics: ``TrialOutcome.diagnostics``; its ``record.INLINE_KEY`` is removed and
            ``record.ARTIFACTS_KEY`` maps each name to its artifact id.
        trial: the running Optuna trial.
        store: the artifact store; None drops the arrays (noted under ``trimmed``).
    """
    inline = diagnostics.pop(record.INLINE_KEY, None) or {}
    if not inline:
        return
    if store is None:
        diagnostics.setdefault("trimmed", []).append("activation arrays (no artifact store)")
        return
    ids = diagnostics.setdefault(record.ARTIFACTS_KEY, {})
    with tempfile.TemporaryDirectory(prefix="hpo-nb-artifact-") as tmp:
        for name, blob in inline.items():
            path = Path(tmp) / f"trial{trial.number}-{name}"
            try:
                path.write_bytes(_b64decode(blob))
                ids[name] = optuna.artifacts.upload_artifact(
                    artifact_store=store, file_path=str(path), study_or_trial=trial,
                    mimetype="application/x-npz")
            except Exception as exc:  # a diagnostic never costs the trial its record
                log.warning("trial %d: artifact %s not stored: %s", trial.number, name, exc)


def _b64decode(blob: str) -> bytes:
    import base64

    return base64.b64decode(blob)


def load_arrays(diagnostics: dict[str, Any], name: str, store: Any) -> dict[str, Any] | None:
    """A stored ``.npz`` artifact of a trial, as arrays.

    Args:
        diagnostics: the trial's stored summary.
        name: the artifact's name (``record.ACTIVATIONS``).
        store: the artifact store (``open_store``).

    Returns:
        dict[str, numpy.ndarray] | None: the arrays; None if the trial has no such artifact or
        its file is not in this store (e.g. another machine's run folder).
    """
    artifact_id = (diagnostics.get(record.ARTIFACTS_KEY) or {}).get(name)
    if not artifact_id:
        inline = (diagnostics.get(record.INLINE_KEY) or {}).get(name)
        return record.decode_arrays(inline) if inline else None
    with tempfile.TemporaryDirectory(prefix="hpo-nb-artifact-") as tmp:
        path = Path(tmp) / name
        try:
            optuna.artifacts.download_artifact(artifact_store=store, file_path=str(path), artifact_id=artifact_id)
        except Exception as exc:
            log.info("artifact %s (%s) not readable here: %s", name, artifact_id, exc)
            return None
        return record.decode_arrays(path.read_bytes())
