"""Which artifact store a study's activation arrays went to, recorded with the study: a folder
store's absolute path (any other store's type only, never its settings), read back by a reader
that does not pass ``artifact_store=``; a given one still wins. Real SQLite studies and real
Optuna artifact stores; no training (test_diagnostics_training.py runs the whole path)."""

from __future__ import annotations

import io
import json

import numpy as np
import optuna
import pytest

from hpo_nb.diagnostics import record, store
from hpo_nb.errors import ConfigError

ARRAYS = {"input": np.arange(12, dtype=np.float16).reshape(2, 6), "conv_1": np.ones((2, 3, 4), np.float16)}


class MemoryArtifactStore:
    """An artifact store that is not a folder (as a bucket store), with a secret in its settings."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.secret_access_key = "s3cr3t-key-never-recorded"

    def open_reader(self, artifact_id: str) -> io.BytesIO:
        return io.BytesIO(self.files[artifact_id])

    def write(self, artifact_id: str, content_body: io.BufferedReader) -> None:
        self.files[artifact_id] = content_body.read()

    def remove(self, artifact_id: str) -> None:
        self.files.pop(artifact_id, None)


def upload(study: optuna.Study, where) -> dict:
    """A finished trial's summary whose inline arrays went to ``where`` (as ``Search._finish`` does)."""
    trial = study.ask()
    diagnostics = {"activations": {"kind": "image"},
                   record.INLINE_KEY: {record.ACTIVATIONS: record.encode_arrays(ARRAYS)}}
    store.upload_inline(diagnostics, trial, where)
    study.tell(trial, 0.5)
    return diagnostics


def sqlite_study(tmp_path, name="s") -> tuple[optuna.Study, str]:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    return optuna.create_study(study_name=name, storage=url, load_if_exists=True), url


def test_a_folder_store_is_recorded_by_its_absolute_path_and_found_by_a_reader_elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study, url = sqlite_study(tmp_path)
    (tmp_path / "shared").mkdir()
    shared = optuna.artifacts.FileSystemArtifactStore("shared")  # relative: recorded absolute
    first, second = upload(study, shared), upload(study, shared)
    attrs = optuna.load_study(study_name="s", storage=url).user_attrs  # as another process reads it
    assert list(store.recorded_stores(attrs)) == [{"type": "FileSystemArtifactStore",
                                                   "path": str((tmp_path / "shared").resolve())}]
    assert sum(k.startswith(store.STORE_ATTR_PREFIX) for k in attrs) == 1  # once per store, not per trial

    stores, hint = store.read_stores(None, tmp_path / "elsewhere" / "run", attrs)
    assert [store.describe(s) for s in stores] == [str((tmp_path / "shared").resolve()),
                                                   str((tmp_path / "elsewhere" / "run" / "artifacts").resolve())]
    assert hint == ""
    for d in (first, second):
        arrays = next(a for a in (store.load_arrays(d, record.ACTIVATIONS, s) for s in stores) if a is not None)
        assert np.array_equal(arrays["input"], ARRAYS["input"]) and arrays["conv_1"].shape == (2, 3, 4)


def test_a_given_store_wins_and_a_recorded_folder_missing_here_is_named(tmp_path):
    study, _ = sqlite_study(tmp_path)
    upload(study, store.open_store(tmp_path / "shared", tmp_path / "run"))
    attrs = study.user_attrs
    mine = tmp_path / "mine"
    stores, hint = store.read_stores(str(mine), tmp_path / "run", attrs)
    assert [store.describe(s) for s in stores] == [str(mine.resolve())]  # only the given one
    assert f"{(tmp_path / 'shared').resolve()}, not the store given as artifact_store=" in hint

    (tmp_path / "shared").rename(tmp_path / "moved")  # another machine: the recorded folder is not there
    stores, hint = store.read_stores(None, tmp_path / "run", attrs)
    assert [store.describe(s) for s in stores] == [str((tmp_path / "run" / "artifacts").resolve())]
    assert "a folder not on this machine" in hint and not (tmp_path / "shared").exists()  # never created


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # ask() outside optimize(), on purpose
def test_another_store_type_is_recorded_by_its_type_only_and_the_error_names_it(tmp_path):
    from hpo_nb import Experiment
    from hpo_nb.records import STATE_ATTR

    url = f"sqlite:///{tmp_path / 'study.db'}"
    writer = Experiment("digits", n_trials=1, max_epochs=1, runs_dir=tmp_path / "a", progress="none", name="mem",
                        storage=url, artifact_store=MemoryArtifactStore())
    d = upload(writer.study, writer._artifact_store())
    attrs = writer.study.user_attrs
    assert store.recorded_stores(attrs) == [{"type": "MemoryArtifactStore"}]
    assert "s3cr3t" not in json.dumps(attrs)

    reader = Experiment("digits", n_trials=1, max_epochs=1, runs_dir=tmp_path / "b", progress="none", name="mem",
                        storage=url)
    reader.study.add_trial(optuna.trial.create_trial(  # the trial's record, as Search keeps it
        state=optuna.trial.TrialState.COMPLETE, value=0.6, params={},
        user_attrs={STATE_ATTR: "complete", "diagnostics": d, "epochs_run": 1}))
    with pytest.raises(ConfigError) as err:
        reader.plot_activations(reader.study.trials[-1].number)
    message = str(err.value)
    assert "stored their arrays in a MemoryArtifactStore" in message
    assert "artifact_store=MemoryArtifactStore(...)" in message and "s3cr3t" not in message
    assert str((tmp_path / "b" / "mem" / "artifacts").resolve()) in message  # where it looked
