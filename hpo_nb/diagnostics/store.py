"""Where diagnostics live once a trial is over: the summary as the trial's ``diagnostics`` user
attribute (with the rest of its ``TrialOutcome``), the activation arrays in Optuna's artifact
store (``optuna.artifacts.FileSystemArtifactStore`` under ``<run folder>/artifacts``, or the store
given as ``Experiment(artifact_store=...)``: a folder or an Optuna store that every machine sharing
the study reads, since the study's database holds only the artifacts' ids).

Which store a study's arrays went to is recorded with the study (a user attribute per store,
``STORE_ATTR_PREFIX``): a file-system store's absolute folder, any other store's type only (its
configuration may hold credentials). A reader without ``artifact_store=`` looks in the recorded
folders that exist on its machine, then in its own run folder's (``read_stores``).

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
STORE_ATTR_PREFIX = "hpo_nb_artifact_store:"  # + the store's key: {"type": class name, "path": folder (file system)}


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


def store_record(store: Any) -> dict[str, str]:
    """What the study records about an artifact store: its type, and for a file-system store its
    absolute folder. Nothing else (a bucket store's configuration may carry credentials).

    Args:
        store: an Optuna artifact store.

    Returns:
        dict[str, str]: ``{"type": class name}``, plus ``"path"`` for a ``FileSystemArtifactStore``.
    """
    entry = {"type": type(store).__name__}
    if isinstance(store, optuna.artifacts.FileSystemArtifactStore):
        entry["path"] = str(Path(store._base_path).expanduser().resolve())
    return entry


def record_store(study: optuna.Study, store: Any) -> None:
    """Record with the study that trials' arrays went to ``store`` (``store_record``), once per
    store: one user attribute per store, so processes writing to different stores never overwrite
    each other's record."""
    import hashlib

    entry = store_record(store)
    key = STORE_ATTR_PREFIX + (hashlib.sha1(entry["path"].encode()).hexdigest()[:12] if "path" in entry
                               else entry["type"])
    if study.user_attrs.get(key) != entry:
        study.set_user_attr(key, entry)


def recorded_stores(study_attrs: dict[str, Any]) -> list[dict[str, str]]:
    """The artifact stores a study recorded (``record_store``), from its user attributes."""
    return [v for k, v in sorted(study_attrs.items()) if k.startswith(STORE_ATTR_PREFIX) and isinstance(v, dict)
            and isinstance(v.get("type"), str)]


def read_stores(location: Any, run_dir: str | Path, study_attrs: dict[str, Any]) -> tuple[list[Any], str]:
    """The artifact stores a reader looks in, and what to tell it when the arrays are in none.

    Args:
        location: ``Experiment(artifact_store=...)``: when given, the only store looked in.
        run_dir: this experiment's run folder (its ``artifacts`` store is looked in last).
        study_attrs: the study's user attributes (``recorded_stores``).

    Returns:
        (list, str): the stores, in order (the given one; else the recorded folders that exist
        here, then the run folder's); and a hint naming the recorded stores this reader cannot
        open (another type, or a folder missing here), "" when none.

    Raises:
        ConfigError: ``location`` is not a store (``open_store``).
    """
    recorded = recorded_stores(study_attrs)
    if location is not None:
        stores = [open_store(location, run_dir)]
    else:
        own = artifact_store(run_dir)
        stores, seen = [], {str(Path(own._base_path).resolve())}
        for entry in recorded:
            path = entry.get("path")
            if path and path not in seen and Path(path).is_dir():
                seen.add(path)
                stores.append(optuna.artifacts.FileSystemArtifactStore(path))
        stores.append(own)
    looked = {describe(s) for s in stores}
    missing = [e["path"] for e in recorded if e.get("path") and e["path"] not in looked]
    others = sorted({e["type"] for e in recorded if not e.get("path")})
    hints = []
    if others:
        hints.append(f"This study's trials stored their arrays in a {' and a '.join(others)} (its settings are not "
                     f"recorded, only its type): pass the same store again, "
                     f"Experiment(..., artifact_store={others[0]}(...)).")
    if missing:
        where = "not the store given as artifact_store=" if location is not None else "a folder not on this machine"
        hints.append(f"Its trials also stored arrays in {', '.join(missing)}, {where}.")
    return stores, " ".join(hints)


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
    if ids:
        try:  # so that a reader elsewhere finds them without artifact_store=
            record_store(trial.study, store)
        except Exception as exc:
            log.warning("trial %d: the artifact store was not recorded with the study: %s", trial.number, exc)


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
