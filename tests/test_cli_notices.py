"""What ``hpo-nb`` tells a new user besides progress: warnings that ``--quiet`` must not hide, a
new study started under a name that may be a typo, flags named in value errors, and ``show`` of
an unknown name leaving the run folders as they were."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _imbalanced_npz(path: Path) -> Path:
    """sklearn's digits as float32 images, labelled 'zero' or 'rest' (about 9 in 10 are 'rest')."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(path, x=digits.images.astype("float32"), y=np.where(digits.target == 0, "zero", "rest"))
    return path


def _weak_trials(monkeypatch, accuracy: float = 0.5) -> None:
    """Trials replaced (InMemoryExecutor at ``accuracy``): the CLI's own lines are under test."""
    from hpo_nb import experiment
    from hpo_nb.executors import InMemoryExecutor
    from hpo_nb.spec import TrialOutcome

    class Weak(experiment.Experiment):
        def __init__(self, **kwargs):
            weak = InMemoryExecutor(lambda job: TrialOutcome(job.spec.trial_number, "complete", accuracy=accuracy,
                                                             score=accuracy, duration_s=1.0, epochs_run=1))
            super().__init__(**{**kwargs, "executor": weak})

    monkeypatch.setattr(experiment, "Experiment", Weak)


@pytest.mark.parametrize("quiet", [False, True])
def test_quiet_still_warns_once_of_a_tiny_validation_split(tmp_path, monkeypatch, capsys, quiet):
    from hpo_nb import cli

    _weak_trials(monkeypatch)
    data = _imbalanced_npz(tmp_path / "imb.npz")
    code = cli.main(["run", "--data", str(data), "--name", "q", "--trials", "1", "--max-epochs", "1",
                     "--sample-fraction", "0.2", "--validation-fraction", "0.03", "--no-evaluate",
                     "--runs-dir", str(tmp_path / "runs"), *(["--quiet"] if quiet else [])])
    out, err = capsys.readouterr()
    assert code == 0, err
    both = out + err
    assert both.count("the validation split has only 43 samples") == 1, both
    if quiet:  # on stderr, as a warning, in the CLI's words
        line = next(x for x in err.splitlines() if "only 43 samples" in x)
        assert line.startswith("hpo-nb: warning: ") and "--validation-fraction" in line
        assert "validation_fraction" not in line, line
    assert both.count("does not beat the majority-class rate") == 1, both


@pytest.mark.parametrize("args, said", [
    (["--accuracy-weight", "2"], "--accuracy-weight must be a number in [0, 1], not 2.0."),
    (["--validation-fraction", "1"], "--validation-fraction must be a number in (0, 1), not 1.0."),
    (["--sample-fraction", "0"], "--sample-fraction must be a number in (0, 1], not 0.0."),
    (["--test-fraction", "1"], "--test-fraction must be a number in [0, 1), not 1.0."),
    (["--max-epochs", "0"], "--max-epochs must be an integer >= 1, not 0."),
    (["--seed", "-1"], "--seed must be an integer >= 0, not -1."),
    (["--trials", "0"], "--trials must be an integer >= 1, not 0."),
    (["--heartbeat-interval", "0"], "--heartbeat-interval must be an integer >= 1, not 0."),
])
def test_value_errors_name_the_flag_under_the_cli(args, said, tmp_path, capsys):
    from hpo_nb import cli

    code = cli.main(["run", "--name", "v", "--runs-dir", str(tmp_path / "runs"), *args])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"hpo-nb: error: {said}"


def test_value_errors_name_the_argument_in_python(tmp_path):
    from hpo_nb import Experiment
    from hpo_nb.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^accuracy_weight must be a number in \[0, 1\], not 2\.$"):
        Experiment(name="v", accuracy_weight=2, runs_dir=tmp_path / "runs", progress="none")


def test_show_of_an_unknown_name_leaves_the_run_folders_as_they_were(tmp_path, capsys):
    import optuna

    from hpo_nb import cli
    from hpo_nb.storage import default_url, open_storage

    runs = tmp_path / "runs"
    for name in ("a", "b"):  # WAL-mode SQLite studies, as hpo-nb run leaves them
        (runs / name).mkdir(parents=True)
        storage = open_storage(default_url(runs / name))
        optuna.create_study(study_name=name, storage=storage)
        storage.engine.dispose()
    before = sorted(p.relative_to(runs) for p in runs.rglob("*"))
    assert not [p for p in before if p.name.endswith(("-wal", "-shm"))], before
    assert cli.main(["show", "typo1", "--runs-dir", str(runs)]) == 2
    assert "studies there: a, b." in capsys.readouterr().err
    assert sorted(p.relative_to(runs) for p in runs.rglob("*")) == before


def _studies(runs: Path, *names: str) -> None:
    """Empty WAL-mode SQLite studies under ``runs/<name>/study.db``, as hpo-nb run leaves them."""
    import optuna

    from hpo_nb.storage import default_url, open_storage

    for name in names:
        (runs / name).mkdir(parents=True)
        storage = open_storage(default_url(runs / name))
        optuna.create_study(study_name=name, storage=storage)
        storage.engine.dispose()


def test_a_new_name_beside_other_studies_is_said_in_python(tmp_path):
    import warnings

    from hpo_nb import Experiment

    runs = tmp_path / "runs"
    with warnings.catch_warnings(record=True) as first:  # a new user's first study: nothing to say
        warnings.simplefilter("always")
        Experiment(name="first", runs_dir=runs, progress="none")
    assert not [w for w in first if "no study" in str(w.message)]
    _studies(runs, "b", "a")
    with pytest.warns(UserWarning, match=rf"^hpo-nb: no study 'typo2' in {runs}/: starting a new one on digits "
                                         r"\(existing: a, b, first\)$"):
        Experiment(name="typo2", runs_dir=runs, progress="none")
    with warnings.catch_warnings(record=True) as again:  # now it exists: a reopen, nothing to say
        warnings.simplefilter("always")
        Experiment(name="typo2", runs_dir=runs, progress="none")
    assert not [w for w in again if "no study" in str(w.message)]


def test_a_new_name_in_a_shared_storage_is_said_with_its_masked_url(tmp_path):
    import optuna

    from hpo_nb import Experiment

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(study_name="other", storage=url)
    with pytest.warns(UserWarning, match=r"no study 'typo3' in sqlite:///.*shared\.db: starting a new one on digits "
                                         r"\(existing: other\)"):
        Experiment(name="typo3", storage=url, runs_dir=tmp_path / "runs", progress="none")


@pytest.mark.slow
def test_run_says_once_on_stderr_that_a_new_name_starts_a_new_study(tmp_path):
    """A real (tiny) run: the notice comes first on stderr, quiet or not."""
    import subprocess
    import sys

    _studies(tmp_path / "runs", "a", "b")
    proc = subprocess.run([sys.executable, "-m", "hpo_nb", "run", "--name", "typo5", "--trials", "1", "--max-epochs",
                           "1", "--sample-fraction", "0.2", "--quiet", "--no-evaluate"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    said = [x for x in proc.stderr.splitlines() if "no study" in x]
    assert said == ["hpo-nb: no study 'typo5' in runs/: starting a new one on digits (existing: a, b)"], proc.stderr


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype("float32"), digits.target  # pixel values 0..16


def test_a_study_scaled_in_python_resumes_from_the_cli_with_scale(tmp_path, monkeypatch, capsys):
    """Built with from_arrays(x, y, scale=1/16); `hpo-nb run --data x.npz` needs --scale 0.0625 (or 1/16),
    and says so in flags, not in Python's scale=1/16."""
    from hpo_nb import Experiment, cli, datasets

    x, y = _digits_arrays()
    runs = tmp_path / "runs"
    Experiment(dataset=datasets.from_arrays(x, y, scale=1 / 16), name="scaled", runs_dir=runs, progress="none")
    np.savez(tmp_path / "digits.npz", x=x, y=y)
    _weak_trials(monkeypatch)
    base = ["run", "--data", str(tmp_path / "digits.npz"), "--name", "scaled", "--trials", "1", "--no-evaluate",
            "--runs-dir", str(runs), "--quiet"]
    capsys.readouterr()

    assert cli.main(base) == 2
    err = capsys.readouterr().err
    assert "pass --scale 0.0625 if 16 is their full range, or --scale 1 to keep them" in err, err  # the reader's note
    refusal = err.strip().splitlines()[-1]
    assert refusal.startswith("hpo-nb: error: ") and "the study's data was scaled by 1/16 (--scale 0.0625)" in refusal
    assert "Pass the same scale: --data PATH --scale 0.0625" in refusal, refusal
    assert "scale=" not in err, err

    for scale in ("0.0625", "1/16"):
        assert cli.main([*base, "--scale", scale]) == 0, capsys.readouterr().err
    assert "scale" not in capsys.readouterr().err
    assert cli.main(["show", "scaled", "--runs-dir", str(runs)]) == 0
    assert f"(hpo-nb run --name scaled --runs-dir {runs} --data PATH --scale 0.0625 resumes with these" \
        in capsys.readouterr().out
    assert cli.main(["evaluate", "scaled", "--runs-dir", str(runs)]) == 2
    assert "pass it again with --data PATH --scale 0.0625 and the options" in capsys.readouterr().err


def test_python_names_the_scale_when_only_the_scale_differs(tmp_path):
    from hpo_nb import Experiment, datasets
    from hpo_nb.errors import ConfigError

    x, y = _digits_arrays()
    runs = tmp_path / "runs"
    Experiment(dataset=datasets.from_arrays(x, y, scale=1 / 16), name="s", runs_dir=runs, progress="none")
    with pytest.raises(ConfigError) as refused:
        Experiment(dataset=datasets.from_arrays(x, y, scale=1 / 255), name="s", runs_dir=runs, progress="none")
    said = str(refused.value)
    assert "the study's data was scaled by 1/16 (scale=0.0625), this data by 1/255" in said, said
    assert "Pass the same scale= (e.g. datasets.from_arrays(x, y, scale=0.0625))" in said, said
    with pytest.raises(ConfigError) as other:  # other samples: not a matter of scale
        Experiment(dataset=datasets.from_arrays(x[::-1].copy(), y, scale=1 / 255), name="s", runs_dir=runs,
                   progress="none")
    assert "scale" not in str(other.value) and "was searched on other data" in str(other.value)


@pytest.mark.parametrize("command", [["run"], ["evaluate", "s"]])
def test_every_command_reading_data_takes_scale(command):
    from hpo_nb import cli

    args = cli._parser().parse_args([*command, "--data", "x.npz", "--scale", "1/16"])
    assert args.scale == 1 / 16


def test_scale_is_refused_where_the_reader_takes_none(tmp_path, capsys):
    from hpo_nb import cli

    (tmp_path / "a.txt").write_text("pos\tgood film\nneg\tbad film\n" * 10)
    assert cli.main(["run", "--data", str(tmp_path / "a.txt"), "--scale", "0.5", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hpo-nb: error: --scale does not apply to a text file"), err
