"""Reopening a study needs only its name (and storage): every study setting left out takes the
value the study recorded (``hpo_nb.reopen``), a given one that differs is still refused, and a new
study keeps the documented defaults. Python and ``hpo-nb run`` alike.

The slow test trains for real (digits, Keras, SQLite); the others replace training
(``InMemoryExecutor``): what is adopted and refused over a real SQLite study is under test.
"""

from __future__ import annotations

import numpy as np
import pytest

from hpo_nb import Experiment, datasets
from hpo_nb.errors import ConfigError
from hpo_nb.executors import InMemoryExecutor
from hpo_nb.spec import TrialOutcome

from .conftest import TINY_CNN

# Every study setting away from its default (a new study: simple, seed 0, 10 epochs, accuracy, 1.0, 0.2, 0.2).
CREATED = dict(mode="health", seed=3, max_epochs=2, metric="balanced_accuracy", sample_fraction=0.5,
               validation_fraction=0.3, test_fraction=0.25, search_space={**TINY_CNN, "filters": 8})
SETTINGS = ("mode", "seed", "max_epochs", "metric", "sample_fraction", "validation_fraction", "test_fraction")


def _fake():
    return InMemoryExecutor(lambda job: TrialOutcome(job.spec.trial_number, "complete", accuracy=0.9, score=0.9,
                                                     duration_s=1.0, epochs_run=1))


def _settings(exp: Experiment) -> dict:
    return {k: getattr(exp, k) for k in SETTINGS}


def test_a_new_study_keeps_the_documented_defaults(runs_dir):
    exp = Experiment(name="fresh", runs_dir=runs_dir, progress="none")
    assert exp.dataset.name == "digits" and exp.n_trials == 20
    assert _settings(exp) == dict(mode="simple", seed=0, max_epochs=10, metric="accuracy", sample_fraction=1.0,
                                  validation_fraction=0.2, test_fraction=0.2)
    assert exp.study.user_attrs["hpo_nb"]["mode"] == "simple"


def test_a_study_reopened_by_name_alone_adopts_every_recorded_setting(runs_dir):
    first = Experiment("digits", name="kept", runs_dir=runs_dir, n_trials=2, progress="none", executor=_fake(),
                       save_models=False, **CREATED)  # no models: no test evaluation (TensorFlow) after run()
    first.run()
    again = Experiment(name="kept", runs_dir=runs_dir, progress="none", executor=_fake())  # no dataset either
    assert again.dataset.name == "digits" and again.dataset.fingerprint == first.dataset.fingerprint
    assert _settings(again) == _settings(first) == {k: v for k, v in CREATED.items() if k in SETTINGS}
    assert again.space == first.space and again.n_trials == 2
    assert again.baseline == first.baseline  # the same validation split (seed and fractions adopted)
    assert again._incomparable is None  # new trials may be added
    more = Experiment(name="kept", runs_dir=runs_dir, progress="none", executor=_fake(), n_trials=3, save_models=False)
    more.run()
    assert len(more.results) == 3 and more._spec_for(9, {}).validation_fraction == 0.3


@pytest.mark.parametrize("given, refused", [
    (dict(mode="simple"), r"mode='health' \(now 'simple'\).*To reopen it, leave it out or pass mode='health' "
                          r"\(hpo-nb run --mode health\)"),
    (dict(seed=0), r"seed=3 \(now 0\)"),
    (dict(validation_fraction=0.2), r"validation_fraction=0.3 \(now 0.2\)"),
    (dict(sample_fraction=1.0), r"sample_fraction=0.5 \(now 1.0\)"),
    (dict(test_fraction=0.2), r"test_fraction=0.25 \(now 0.2\)"),
    (dict(dataset="digits", mode="simple", sample_fraction=1.0),
     r"mode='health' \(now 'simple'\), sample_fraction=0.5 \(now 1.0\).*leave them out or pass mode='health', "
     r"sample_fraction=0.5"),
])
def test_a_given_setting_that_differs_is_still_refused(runs_dir, given, refused):
    Experiment("digits", name="kept", runs_dir=runs_dir, n_trials=1, progress="none", **CREATED)
    with pytest.raises(ConfigError, match=refused):
        Experiment(name="kept", runs_dir=runs_dir, progress="none", **given)


@pytest.mark.parametrize("given, refused", [
    (dict(max_epochs=10), r"max_epochs=2 \(now 10\)"),
    (dict(metric="accuracy"), r"metric='balanced_accuracy' \(now 'accuracy'\)"),
    (dict(search_space=TINY_CNN), r"another search space \(filters: Fixed\(value=8\) -> Choice"),
])
def test_given_epochs_metric_or_space_that_differ_still_stop_new_trials(runs_dir, given, refused):
    Experiment("digits", name="kept", runs_dir=runs_dir, n_trials=1, progress="none", **CREATED)
    exp = Experiment(name="kept", runs_dir=runs_dir, progress="none", executor=_fake(), **given)
    with pytest.raises(ConfigError, match=refused + r".*Leave max_epochs, metric and search_space out"):
        exp.start()


@pytest.mark.filterwarnings("ignore:hpo-nb. the validation split has only:UserWarning")
def test_a_study_of_your_own_data_asks_for_it_when_left_out(runs_dir, monkeypatch):
    rng = np.random.default_rng(0)
    own = datasets.from_arrays(rng.random((120, 8, 8)).astype("float32"), np.arange(120) % 3, name="own-reopen")
    Experiment(own, name="own", runs_dir=runs_dir, mode="health", progress="none")
    assert Experiment(name="own", runs_dir=runs_dir, progress="none").mode == "health"  # attached in this process
    monkeypatch.setattr("hpo_nb.datasets.registry._USER", {})  # a new process: only the name is known
    with pytest.raises(ConfigError, match=r"searched your own data \('own-reopen'\); pass it again as dataset="):
        Experiment(name="own", runs_dir=runs_dir, progress="none")
    assert Experiment(own, name="own", runs_dir=runs_dir, progress="none").mode == "health"


@pytest.mark.filterwarnings("ignore:hpo-nb. the validation split has only:UserWarning")
def test_your_own_test_data_is_not_overridden_by_a_recorded_fraction(runs_dir):
    """With test=(x_test, y_test) nothing is held out (0.0): a reopen adopts the rest, not a fraction."""
    rng = np.random.default_rng(1)
    x, y = rng.random((150, 8, 8)).astype("float32"), np.arange(150) % 3
    own = datasets.from_arrays(x, y, name="own-test")
    first = Experiment(own, test=(x[:30], y[:30]), name="owntest", runs_dir=runs_dir, seed=2, progress="none")
    again = Experiment(own, test=(x[:30], y[:30]), name="owntest", runs_dir=runs_dir, progress="none")
    assert first.test_fraction == again.test_fraction == 0.0 and again.seed == 2


def test_a_left_out_setting_creates_nothing_before_the_study_exists(runs_dir):
    """The peek at a study's settings opens no default storage that does not exist yet."""
    with pytest.raises(ConfigError, match="unknown search-space key"):
        Experiment(name="never", runs_dir=runs_dir, progress="none", search_space={"lstm_units": 8})
    assert not (runs_dir / "never").exists()


def test_the_cli_resumes_with_the_study_settings_and_refuses_a_conflicting_flag(tmp_path, monkeypatch, capsys):
    from hpo_nb import cli, experiment

    class Fake(experiment.Experiment):
        def __init__(self, **kwargs):
            super().__init__(**{**kwargs, "executor": _fake()})

    monkeypatch.setattr(experiment, "Experiment", Fake)
    runs = str(tmp_path / "runs")
    space = '{"conv_blocks": 1, "filters": 8, "batch_size": [16, 32]}'
    assert cli.main(["run", "--name", "cli", "--runs-dir", runs, "--trials", "1", "--mode", "health", "--seed", "2",
                     "--max-epochs", "3", "--sample-fraction", "0.5", "--validation-fraction", "0.25",
                     "--metric", "balanced_accuracy", "--search-space", space, "--quiet", "--no-evaluate"]) == 0
    capsys.readouterr()
    assert cli.main(["run", "--name", "cli", "--runs-dir", runs, "--trials", "2", "--quiet", "--no-evaluate"]) == 0
    out = capsys.readouterr().out
    assert "majority-class rate" in out and "balanced accuracy" in out  # the study's metric, not accuracy
    study = Experiment(name="cli", runs_dir=runs, progress="none")
    assert len(study.results) == 2 and (study.mode, study.seed, study.max_epochs) == ("health", 2, 3)
    assert study.study.user_attrs["hpo_nb"]["validation_fraction"] == 0.25
    assert cli.main(["show", "cli", "--runs-dir", runs]) == 0
    assert ("settings: metric balanced_accuracy · seed 2 · validation_fraction 0.25 · sample_fraction 0.5 · "
            f"test_fraction 0.2 · accuracy_weight 0.7 (hpo-nb run --name cli --runs-dir {runs} resumes with these)"
            ) in capsys.readouterr().out
    assert cli.main(["run", "--name", "cli", "--runs-dir", runs, "--mode", "simple", "--quiet"]) == 2
    err = capsys.readouterr().err  # the CLI's flags, not Python's arguments
    assert "searched with --mode health (now simple)" in err
    assert "leave --mode out or pass --mode health; or pick another --name to start a new study" in err
    assert "name=" not in err


@pytest.mark.slow
def test_a_trained_study_reopened_with_dataset_name_and_storage_continues_its_search(tmp_path, monkeypatch):
    """Real Keras training (1 epoch on 10 % of digits per trial): the reopened search adds a trial
    to the same study, trained with the adopted settings."""
    monkeypatch.chdir(tmp_path)  # runs/ (models, run.log) lands here
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    first = Experiment("digits", mode="health", n_trials=1, max_epochs=1, sample_fraction=0.1,
                       validation_fraction=0.3, seed=5, search_space=TINY_CNN, storage=storage, name="real",
                       progress="none", pruning=False, diagnostics=False)
    first.run()
    assert len(first.results) == 1
    again = Experiment("digits", name="real", storage=storage)
    assert (again.mode, again.max_epochs, again.sample_fraction, again.validation_fraction, again.seed) == \
        ("health", 1, 0.1, 0.3, 5)
    assert again.space == first.space and again.n_trials == 1
    again = Experiment("digits", name="real", storage=storage, n_trials=2, progress="none", pruning=False,
                       diagnostics=False)
    again.run()
    rows = again.results
    assert len(rows) == 2 and set(rows["state"]) == {"complete"}
    assert rows["health_score"].notna().all()  # scored in health mode, as the study was
    assert all(t.epochs_run == 1 for t in again.trials)
    with pytest.raises(ConfigError, match=r"sample_fraction=0.1 \(now 1.0\)"):
        Experiment("digits", name="real", storage=storage, sample_fraction=1.0)
