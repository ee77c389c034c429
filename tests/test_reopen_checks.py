"""What a reopen records, adopts and refuses beyond the split settings: the health score's
weights, your own data under another name (by fingerprint), NumPy scalars, a choice's order, and
what ``hpo-nb run`` / ``hpo-nb show`` say about it (flags, the full resume command, a stored test
accuracy). Training is replaced (``InMemoryExecutor``); the SQLite study is real.
"""

from __future__ import annotations

import numpy as np
import pytest

from hpo_nb import Experiment, cli, datasets
from hpo_nb.errors import ConfigError
from hpo_nb.executors import InMemoryExecutor
from hpo_nb.space import Choice
from hpo_nb.spec import TrialOutcome

from .conftest import TINY_CNN

pytestmark = pytest.mark.filterwarnings("ignore:hpo-nb. the validation split has only:UserWarning")


def _fake():
    return InMemoryExecutor(lambda job: TrialOutcome(job.spec.trial_number, "complete", accuracy=0.9, score=0.9,
                                                     duration_s=1.0, epochs_run=1))


def _fake_cli(monkeypatch):
    from hpo_nb import experiment

    class Fake(experiment.Experiment):
        def __init__(self, **kwargs):
            super().__init__(**{**kwargs, "executor": _fake()})

    monkeypatch.setattr(experiment, "Experiment", Fake)


def _own(seed: int = 0, n: int = 150):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8)).astype("float32"), np.array(["a", "b", "c"])[np.arange(n) % 3]


# ----------------------------------------------------------------- 1. the health score's weights

def test_a_health_study_records_its_weights_and_a_reopen_adopts_them(runs_dir):
    first = Experiment("digits", mode="health", accuracy_weight=0.5, health_weights={"dead_units": 2},
                       name="w", runs_dir=runs_dir, n_trials=1, progress="none", executor=_fake(), save_models=False)
    first.run()
    recorded = first.study.user_attrs["hpo_nb"]
    assert recorded["accuracy_weight"] == 0.5 and recorded["health_weights"]["dead_units"] == 2.0
    again = Experiment(name="w", runs_dir=runs_dir, progress="none", executor=_fake())
    assert again.accuracy_weight == 0.5 and again.health_weights["dead_units"] == 2.0
    spec = again._spec_for(1, {})
    assert spec.accuracy_weight == 0.5 and spec.health_weights["dead_units"] == 2.0  # trials score as trial 0 did
    # the same proportions are the same score: accepted
    same = {m: 2 * w for m, w in recorded["health_weights"].items()}
    assert Experiment(name="w", runs_dir=runs_dir, progress="none", accuracy_weight=0.5, health_weights=same)
    with pytest.raises(ConfigError, match=r"accuracy_weight=0.5 \(now 0.9\); its scores are not comparable.*"
                                          r"pass accuracy_weight=0.5 \(hpo-nb run --accuracy-weight 0.5\)"):
        Experiment(name="w", runs_dir=runs_dir, progress="none", accuracy_weight=0.9)
    with pytest.raises(ConfigError, match=r"health_weights=\{"):
        Experiment(name="w", runs_dir=runs_dir, progress="none", health_weights={"gradient_health": 3})


def test_weights_default_for_a_new_study_and_for_one_that_recorded_none(runs_dir):
    new = Experiment(mode="health", name="nw", runs_dir=runs_dir, progress="none")
    assert new.accuracy_weight == 0.7 and new.health_weights is None
    old = new.study.user_attrs["hpo_nb"]  # a study from before weights were recorded
    new.study.set_user_attr("hpo_nb", {k: v for k, v in old.items() if k not in ("accuracy_weight", "health_weights")})
    assert Experiment(name="nw", runs_dir=runs_dir, progress="none").accuracy_weight == 0.7
    assert Experiment(name="nw", runs_dir=runs_dir, progress="none", accuracy_weight=0.4).accuracy_weight == 0.4
    simple = Experiment(name="sw", runs_dir=runs_dir, progress="none")  # simple mode scores accuracy alone
    assert "accuracy_weight" not in simple.study.user_attrs["hpo_nb"]
    assert Experiment(name="sw", runs_dir=runs_dir, progress="none", accuracy_weight=0.2).accuracy_weight == 0.2


def test_the_cli_takes_shows_and_checks_the_accuracy_weight(tmp_path, monkeypatch, capsys):
    _fake_cli(monkeypatch)
    runs = str(tmp_path / "runs")
    base = ["run", "--name", "cw", "--runs-dir", runs, "--quiet", "--no-evaluate"]
    assert cli.main([*base, "--mode", "health", "--accuracy-weight", "0.4", "--trials", "1",
                     "--search-space", '{"conv_blocks": 1, "filters": 8}']) == 0
    assert cli.main(["show", "cw", "--runs-dir", runs]) == 0
    assert "accuracy_weight 0.4" in capsys.readouterr().out
    assert cli.main([*base, "--accuracy-weight", "0.8"]) == 2
    err = capsys.readouterr().err
    assert "searched with --accuracy-weight 0.4 (now 0.8)" in err and "pass --accuracy-weight 0.4" in err
    assert cli.main([*base, "--trials", "2"]) == 0  # left out: the study's
    assert Experiment(name="cw", runs_dir=runs, progress="none")._spec_for(1, {}).accuracy_weight == 0.4
    assert "0.7 for a new study; resuming one keeps its own" in " ".join(cli._parser()._subparsers._group_actions[0]
                                                                          .choices["run"].format_help().split())


# ----------------------------------------------------------------- 2. your own data, by fingerprint

def test_your_own_data_under_another_name_reopens_the_study(runs_dir, tmp_path):
    x, y = _own()
    first = Experiment(datasets.from_arrays(x, y), name="own", runs_dir=runs_dir, seed=4, progress="none")
    np.savez(tmp_path / "own.npz", x=x, y=y)
    read = datasets.from_path(tmp_path / "own.npz")
    assert read.name != first.dataset.name and read.fingerprint == first.dataset.fingerprint
    again = Experiment(read, name="own", runs_dir=runs_dir, progress="none")
    assert again.seed == 4 and again.dataset.fingerprint == first.dataset.fingerprint
    other = datasets.from_arrays(*_own(seed=1))
    with pytest.raises(ConfigError, match=r"searched on other data \(your own, 'arrays-.*Pass the same samples and "
                                          r"labels again \(e.g. datasets.from_arrays\(x, y\), under any name\)") as err:
        Experiment(other, name="own", runs_dir=runs_dir, progress="none")
    assert "--data PATH" in err.value.cli and "--name" in err.value.cli and "name=" not in err.value.cli
    with pytest.raises(ConfigError, match=r"searched with your own data 'arrays-\w+' \(now 'digits'\).*To reopen it, "
                                          r"pass the same data as dataset=") as err:  # not a name it cannot pass
        Experiment("digits", name="own", runs_dir=runs_dir, progress="none")
    assert "To resume it, pass --data PATH (the file or folder it was read from" in err.value.cli


def test_the_cli_resumes_a_python_study_of_the_same_arrays(tmp_path, monkeypatch, capsys):
    _fake_cli(monkeypatch)
    x, y = _own()
    runs = tmp_path / "runs"
    Experiment(datasets.from_arrays(x, y), name="mine", runs_dir=runs, seed=4, n_trials=1, progress="none",
               executor=_fake(), save_models=False, search_space=TINY_CNN).run()
    np.savez(tmp_path / "own.npz", x=x, y=y)
    assert cli.main(["run", "--name", "mine", "--runs-dir", str(runs), "--data", str(tmp_path / "own.npz"),
                     "--trials", "2", "--quiet", "--no-evaluate"]) == 0
    assert len(Experiment(datasets.from_arrays(x, y), name="mine", runs_dir=runs, progress="none").results) == 2
    capsys.readouterr()
    np.savez(tmp_path / "other.npz", x=x[::-1], y=y)
    assert cli.main(["run", "--name", "mine", "--runs-dir", str(runs), "--data", str(tmp_path / "other.npz"),
                     "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "searched on other data" in err and "--data PATH" in err and "name=" not in err


# ----------------------------------------------------------------- 3-4. hpo-nb show, the run summary

def test_show_prints_the_command_that_resumes_the_study(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    x, y = _own()
    Experiment(datasets.from_arrays(x, y), name="sh", storage=url, runs_dir=tmp_path / "runs", progress="none")
    assert cli.main(["show", "sh", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert f"(hpo-nb run --name sh --storage {url} --data PATH resumes with these" in out


def test_the_summary_shows_a_stored_test_accuracy_without_evaluating(tmp_path, monkeypatch, capsys):
    from hpo_nb.records import TEST_ATTR_PREFIX

    _fake_cli(monkeypatch)
    runs = str(tmp_path / "runs")
    base = ["run", "--name", "dg", "--runs-dir", runs, "--quiet", "--no-evaluate", "--search-space",
            '{"conv_blocks": 1, "filters": 8}']
    assert cli.main([*base, "--trials", "1"]) == 0
    exp = Experiment(name="dg", runs_dir=runs, progress="none")
    exp.study.set_user_attr(f"{TEST_ATTR_PREFIX}0", {"test_accuracy": 0.8765, "n_test": 360, "metric": "accuracy"})
    capsys.readouterr()
    assert cli.main([*base]) == 0
    out = capsys.readouterr().out
    assert "0.8765" in out or "87.65" in out or "0.877" in out
    assert "not measured" not in out


# ----------------------------------------------------------------- 5. NumPy scalars, fractions by isclose

def test_numpy_scalars_are_taken_and_recorded_as_python_numbers(runs_dir):
    exp = Experiment(name="np", runs_dir=runs_dir, progress="none", seed=np.int64(7), max_epochs=np.int64(2),
                     validation_fraction=np.float32(0.3), sample_fraction=np.float64(0.5), n_trials=np.int32(2),
                     mode="health", accuracy_weight=np.float32(0.5), health_weights={"dead_units": np.int64(2)})
    recorded = exp.study.user_attrs["hpo_nb"]
    assert (exp.seed, exp.max_epochs, exp.n_trials) == (7, 2, 2) and type(exp.seed) is int
    assert type(recorded["validation_fraction"]) is float and type(recorded["max_epochs"]) is int
    again = Experiment(name="np", runs_dir=runs_dir, progress="none", validation_fraction=0.1 * 3,
                       sample_fraction=np.float16(0.5), seed=np.uint8(7), accuracy_weight=0.5)
    assert again.seed == 7 and again.validation_fraction == 0.3  # the study's own 0.3, not 0.30000000000000004
    with pytest.raises(ConfigError, match="seed must be an integer >= 0, not True"):
        Experiment(name="np", runs_dir=runs_dir, progress="none", seed=True)


def test_numpy_float32_weights_and_space_values_reopen_with_the_numbers_as_written(runs_dir):
    # float32(0.1) is 0.10000000149011612 in binary: recorded that way, 0.1 given again was refused
    space = {**TINY_CNN, "filters": [np.int64(16), np.int64(32)], "dropout": np.float32(0.25),
             "learning_rate": (np.float32(1e-3), np.float32(1e-2)), "kernel_size": np.array([3, 5])}
    first = Experiment(name="np32", runs_dir=runs_dir, n_trials=1, progress="none", executor=_fake(),
                       save_models=False, mode="health", health_weights={"dead_units": np.float32(0.1)},
                       search_space=space)
    assert first.space["filters"] == Choice((16, 32)) and first.space["kernel_size"] == Choice((3, 5))
    first.run()
    assert first.study.user_attrs["hpo_nb"]["health_weights"]["dead_units"] == 0.1
    again = Experiment(name="np32", runs_dir=runs_dir, n_trials=2, progress="none", executor=_fake(),
                       save_models=False, health_weights={"dead_units": 0.1},
                       search_space={**TINY_CNN, "filters": [16, 32], "dropout": 0.25,
                                     "learning_rate": (1e-3, 1e-2), "kernel_size": [3, 5]})
    assert again._incomparable is None
    again.run()
    assert list(again.results["state"]) == ["complete", "complete"]


# ----------------------------------------------------------------- 6. a choice's order

def test_a_choice_in_another_order_is_the_same_search_space(runs_dir):
    space = {**TINY_CNN, "filters": [16, 32]}
    Experiment(name="ord", runs_dir=runs_dir, n_trials=1, progress="none", executor=_fake(), save_models=False,
               search_space=space).run()
    again = Experiment(name="ord", runs_dir=runs_dir, n_trials=2, progress="none", executor=_fake(),
                       save_models=False, search_space={**space, "filters": [32, 16]})
    assert again._incomparable is None and again.space["filters"] == Choice((16, 32))  # Optuna's order kept
    again.run()
    assert list(again.results["state"]) == ["complete", "complete"]
    other = Experiment(name="ord", runs_dir=runs_dir, progress="none", search_space={**space, "filters": [16, 64]})
    with pytest.raises(ConfigError, match="another search space"):
        other.start()


# ----------------------------------------------------------------- 7. the CLI's words, before any download

def test_the_cli_names_its_flags_and_refuses_another_dataset_before_loading_it(tmp_path, monkeypatch, capsys):
    from hpo_nb.datasets import registry

    _fake_cli(monkeypatch)
    runs = str(tmp_path / "runs")
    base = ["run", "--name", "dg", "--runs-dir", runs, "--quiet", "--no-evaluate"]
    assert cli.main([*base, "--trials", "1", "--max-epochs", "2", "--search-space", '{"conv_blocks": 1}']) == 0
    capsys.readouterr()
    assert cli.main([*base, "--max-epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert "searched with --max-epochs 2 (now 3)" in err
    assert "Leave --max-epochs, --metric and --search-space out" in err and "another --name" in err
    assert "name=" not in err and "max_epochs" not in err

    def no_download(name):
        raise AssertionError(f"{name} loaded before the settings were checked")

    monkeypatch.setattr(registry, "_load_cached", no_download)
    assert cli.main([*base, "--dataset", "mnist"]) == 2
    err = capsys.readouterr().err
    assert "searched with --dataset digits (now mnist)" in err and "pass --dataset digits" in err


# ----------------------------------------------------------------- 8. a refusal creates nothing; a pasted URL

def test_a_refusal_next_to_saved_models_creates_no_study_database(runs_dir):
    models = runs_dir / "gone" / "models"
    models.mkdir(parents=True)
    (models / "trial_0000.keras").write_bytes(b"a model of a study kept in another storage")
    with pytest.raises(ConfigError, match=r"If the study lives in another storage, pass it as storage="):
        Experiment(name="gone", runs_dir=runs_dir, progress="none")
    assert sorted(p.name for p in (runs_dir / "gone").iterdir()) == ["models"]  # no empty study.db


def test_a_storage_url_with_spaces_around_it_opens_the_same_study(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'pasted.db'}"
    Experiment(name="pasted", storage=url, runs_dir=tmp_path / "runs", seed=3, progress="none")
    assert Experiment(name="pasted", storage=f" {url} \n", runs_dir=tmp_path / "runs", progress="none").seed == 3
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("pasted.db ")]  # no new file 'pasted.db '

    assert cli.main(["show", "pasted", "--storage", url + " "]) == 0
    assert f"--storage {url} resumes" in capsys.readouterr().out
