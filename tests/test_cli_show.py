"""The terminal shows the answer: ``hpo-nb run``'s final lines, ``hpo-nb show NAME`` and
``hpo-nb export NAME PATH``, each as a real subprocess; the search-space JSON form as data.

The fast tests read a real SQLite study built by a real ``Experiment`` whose training is
replaced (``InMemoryExecutor``); the slow one trains, shows and exports for real.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hpo_nb import Experiment
from hpo_nb.errors import ConfigError
from hpo_nb.executors import InMemoryExecutor
from hpo_nb.space import FloatRange, from_json
from hpo_nb.spec import TrialOutcome
from hpo_nb.stored import StoredStudy, parse_param

HPO = [sys.executable, "-m", "hpo_nb"]
SPACE = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_layers": 0, "batch_norm": False,
         "activation": "relu", "pooling": "max", "optimizer": "adam", "dense_units": 32,
         "learning_rate": (1e-4, 1e-1), "batch_size": [16, 32]}


def _cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*HPO, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Path:
    """runs/shown/: 4 trials; trial 2 is the best and has a 'saved model' (a stand-in file)."""
    root = tmp_path_factory.mktemp("cli-show")
    model = root / "trial2.keras"
    model.write_bytes(b"PK stand-in for a saved model")

    def outcome(job) -> TrialOutcome:
        n = job.spec.trial_number
        acc = 0.97 if n == 2 else 0.5 + 0.05 * n
        return TrialOutcome(n, "complete", accuracy=acc, score=acc, duration_s=1.0, epochs_run=1,
                            model_path=str(model) if n == 2 else None,
                            architecture={"summary": {"conv_layers": 1, "filters": [8], "activations": ["relu"]},
                                          "total_params": 1234})

    Experiment("digits", n_trials=4, executor=InMemoryExecutor(outcome), progress="none", runs_dir=root / "runs",
               name="shown", search_space=SPACE, pruning=False).run()
    return root


def test_show_prints_the_table_the_best_configuration_and_its_model(stored):
    proc = _cli("show", "shown", cwd=stored)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "hpo-nb results" in out and "study shown: dataset digits" in out
    assert "best trial 2: validation accuracy 0.9700" in out
    params = next(line for line in out.splitlines() if line.startswith("hyperparameters: "))
    assert "learning_rate=" in params and "batch_size=" in params and "filters" not in params  # searched ones
    fixed = next(line for line in out.splitlines() if line.startswith("fixed: "))
    assert "filters=8" in fixed and "learning_rate" not in fixed
    assert "architecture: 1 conv (8) · relu · 1.2k params" in out
    assert f"model: {stored / 'trial2.keras'}" in out
    assert "test accuracy: not measured yet" in out
    assert "WARNING: All log messages" not in proc.stderr  # reading a result does not import TensorFlow


def test_show_reads_the_stored_test_accuracy(stored):
    from hpo_nb.records import make_test_report, store_evaluation

    study = StoredStudy("shown", runs_dir=stored / "runs")
    store_evaluation(study.study, make_test_report(2, [0, 1, 1, 0], [0, 1, 0, 0], ["a", "b"], 0.97, 0.97))
    proc = _cli("show", "shown", cwd=stored)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy 0.7500 on 4 held-out samples" in proc.stdout
    assert "not measured yet" not in proc.stdout


def test_export_copies_the_best_model(stored, tmp_path):
    proc = _cli("export", "shown", str(tmp_path / "best.keras"), "--runs-dir", str(stored / "runs"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "best.keras").read_bytes() == (stored / "trial2.keras").read_bytes()
    assert "trial 2 of shown" in proc.stdout
    into_folder = _cli("export", "shown", str(tmp_path), "--runs-dir", str(stored / "runs"), cwd=tmp_path)
    assert into_folder.returncode == 0 and (tmp_path / "shown-trial2.keras").exists()


@pytest.mark.parametrize("args, words", [
    (["show", "nope"], "no study 'nope' under runs/"),
    (["export", "shown", "out.h5"], "must end in .keras"),
    (["export", "shown", "x.keras", "--trial", "1"], "study 'shown': trial 1 has no saved model"),
    (["export", "shown", "x.keras", "--trial", "99"], "no trial number 99"),
])
def test_show_and_export_refuse_with_one_line(stored, args, words):
    proc = _cli(*args, cwd=stored)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpo-nb: error: ") and words in lines[0], proc.stderr
    if args[:2] == ["show", "nope"]:
        assert "studies there: shown" in lines[0]


def test_show_finds_a_study_by_storage_url(stored, tmp_path):
    url = f"sqlite:///{stored / 'runs' / 'shown' / 'study.db'}"
    proc = _cli("show", "shown", "--storage", url, cwd=tmp_path)
    assert proc.returncode == 0 and "best trial 2" in proc.stdout, proc.stderr
    other = _cli("show", "other", "--storage", url, cwd=tmp_path)
    assert other.returncode == 2 and "studies there: shown" in other.stderr


def test_stored_space_is_parsed_without_eval():
    assert parse_param("FloatRange(low=0.0001, high=0.1, log=True)") == FloatRange(1e-4, 0.1, log=True)
    assert parse_param("__import__('os').system('true')") is None
    assert parse_param("Choice(options=(open('x'),))") is None


def test_help_shows_defaults():
    text = subprocess.run([*HPO, "run", "--help"], capture_output=True, text=True, timeout=60).stdout
    flat = " ".join(text.split())
    for option, default in (("--trials", "20)"), ("--max-epochs", "10 for a new study; resuming one keeps its own)"),
                            ("--concurrency", "1)"), ("--seed", "0 for a new study; resuming one keeps its own)"),
                            ("--runs-dir", "runs)"), ("--mode", "simple for a new study; resuming one keeps its own)"),
                            ("--sample-fraction", "1.0 for a new study; resuming one keeps its own)"),
                            ("--validation-fraction", "0.2 for a new study; resuming one keeps its own)")):
        section = flat.split(option, 2)[-1].split(" --", 1)[0]  # the option's own help text
        assert f"(default: {default}" in section, (option, section)
    assert '{"range": [lo, hi]}' in flat


def test_search_space_json_form():
    assert from_json({"learning_rate": {"range": [1e-4, 1e-2]}, "filters": [16, 32], "optimizer": "adam",
                      "dropout": {"choice": [0.0, 0.5]}}) == \
        {"learning_rate": (1e-4, 1e-2), "filters": [16, 32], "optimizer": "adam", "dropout": [0.0, 0.5]}
    assert from_json({"conv_blocks": [1, 2]}) == {"conv_blocks": [1, 2]}  # ints: a choice, as documented
    assert from_json({"dropout": [0.0, 0.25, 0.5]}) == {"dropout": [0.0, 0.25, 0.5]}  # 3 values: clearly a choice
    with pytest.raises(ConfigError, match=r'ambiguous.*\{"range": \[0.0001, 0.01\]\}.*\{"choice"'):
        from_json({"learning_rate": [1e-4, 1e-2]})
    with pytest.raises(ConfigError, match="two numbers"):
        from_json({"learning_rate": {"range": [1e-4]}})
    with pytest.raises(ConfigError, match="an object is"):
        from_json({"learning_rate": {"low": 1e-4}})
    with pytest.raises(ConfigError, match="JSON object"):
        from_json([1, 2])  # type: ignore[arg-type]


def test_cli_refuses_an_ambiguous_float_list_before_training(tmp_path):
    proc = _cli("run", "--search-space", json.dumps({"learning_rate": [1e-4, 1e-2]}), cwd=tmp_path)
    assert proc.returncode == 2 and "is ambiguous" in proc.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_run_ends_with_the_answer_and_show_export_read_it_back(tmp_path):
    space = json.dumps({"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_layers": 0, "batch_size": 32,
                        "batch_norm": False, "optimizer": "adam", "learning_rate": {"range": [0.003, 0.01]}})
    run = _cli("run", "--name", "answer", "--trials", "2", "--max-epochs", "1", "--search-space", space,
               "--no-pruning", "--quiet", cwd=tmp_path, timeout=400)
    assert run.returncode == 0, run.stderr
    # TensorFlow's absl/oneDNN block is not printed (it breaks the live bars), but run.log has it
    assert "absl" not in run.stderr and "oneDNN" not in run.stderr and "absl" not in run.stdout, run.stderr
    assert "absl::InitializeLog" in (tmp_path / "runs" / "answer" / "run.log").read_text()
    lines = run.stdout.splitlines()
    best = next(line for line in lines if line.startswith("best trial "))
    number = int(best.split()[2].rstrip(":"))
    assert any(line.startswith("test accuracy ") for line in lines)
    searched = next(line for line in lines if line.startswith("hyperparameters: "))
    assert "learning_rate=" in searched and "filters" not in searched and "conv_blocks" not in searched
    assert "filters=8" in next(line for line in lines if line.startswith("fixed: "))
    assert next(line for line in lines if line.startswith("architecture: ")).startswith("architecture: 1 conv (8)")
    model_line = next(line for line in lines if line.startswith("model: "))
    assert Path(model_line[len("model: "):]).is_absolute() and Path(model_line[len("model: "):]).exists()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    show = _cli("show", "answer", "--runs-dir", str(tmp_path / "runs"), cwd=elsewhere)
    assert show.returncode == 0, show.stderr
    assert best in show.stdout and model_line in show.stdout and "test accuracy " in show.stdout

    export = _cli("export", "answer", "best.keras", cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    assert f"trial {number} of answer" in export.stdout
    with zipfile.ZipFile(tmp_path / "best.keras") as z:  # a Keras archive: config and weights
        assert {"config.json", "model.weights.h5"} <= set(z.namelist())


def _inmemory_study(root: Path, name: str, accuracy: float, **kwargs) -> None:
    def outcome(job) -> TrialOutcome:
        n = job.spec.trial_number
        extra = {"balanced_accuracy": accuracy - 0.1 * n} if kwargs.get("metric") == "balanced_accuracy" else {}
        value = extra.get("balanced_accuracy", accuracy)
        return TrialOutcome(n, "complete", accuracy=accuracy, score=value, duration_s=1.0, epochs_run=1, extra=extra)

    Experiment("digits", n_trials=2, executor=InMemoryExecutor(outcome), progress="none", runs_dir=root / "runs",
               name=name, search_space=SPACE, pruning=False, **kwargs).run()


def test_show_names_the_optimized_metric_its_chance_level_and_the_class_order(tmp_path):
    _inmemory_study(tmp_path, "balanced", 0.95, metric="balanced_accuracy")
    proc = _cli("show", "balanced", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "best trial 0: validation balanced accuracy 0.9500 (what the search optimized)" in out
    assert "validation accuracy 0.9500 (what the search optimized)" not in out
    assert "chance balanced accuracy 0.1000 (1/10 classes) on " in out and "majority-class rate 0.1" in out
    assert "classes (model output order): 0=0, 1=1, 2=2" in out
    assert "warning" not in proc.stderr


def test_show_warns_like_run_when_the_best_does_not_beat_the_majority_class(tmp_path):
    _inmemory_study(tmp_path, "weak", 0.05)
    proc = _cli("show", "weak", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "majority-class rate 0.1" in proc.stdout and "what a model must beat" in proc.stdout
    assert "hpo-nb: warning: the best trial's validation accuracy 0.0500 does not beat" in proc.stderr


def test_export_of_a_failed_trial_says_it_failed_and_why(tmp_path, capsys):
    from hpo_nb import cli

    def outcome(job) -> TrialOutcome:
        n = job.spec.trial_number
        if n == 0:
            return TrialOutcome(n, "failed", error="ValueError: boom", duration_s=1.0)
        return TrialOutcome(n, "complete", accuracy=0.9, score=0.9, duration_s=1.0, epochs_run=1)

    Experiment("digits", n_trials=2, executor=InMemoryExecutor(outcome), progress="none", runs_dir=tmp_path / "runs",
               name="fx", search_space=SPACE, pruning=False).run()
    code = cli.main(["export", "fx", str(tmp_path / "x.keras"), "--trial", "0", "--runs-dir", str(tmp_path / "runs")])
    assert code == 2
    assert capsys.readouterr().err.strip() == ("hpo-nb: error: study 'fx': trial 0 failed (ValueError: boom), so it has "
                                               "no model; hpo-nb show fx lists the complete trials.")
    with pytest.raises(ConfigError, match=r"^trial 0 failed \(ValueError: boom\), so it has no model; results lists"):
        StoredStudy("fx", runs_dir=tmp_path / "runs").best_model(0)


def test_show_lists_only_folders_whose_database_holds_their_study(stored):
    (stored / "runs" / "empty").mkdir(exist_ok=True)
    (stored / "runs" / "empty" / "study.db").write_bytes(b"")  # a start refused before its study was created
    proc = _cli("show", "nothere", cwd=stored)
    assert proc.returncode == 2 and "studies there: shown." in proc.stderr, proc.stderr


def test_show_into_a_closed_pipe_is_quiet(stored):
    proc = subprocess.run(f"{sys.executable} -m hpo_nb show shown | head -n 1", shell=True, cwd=stored,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("study shown: dataset digits") and proc.stderr == "", proc.stderr


def test_export_refuses_to_overwrite_unless_forced(stored, tmp_path):
    target = tmp_path / "mine.keras"
    target.write_bytes(b"someone's model")
    proc = _cli("export", "shown", str(target), "--runs-dir", str(stored / "runs"), cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "exists; pass --force" in lines[0], proc.stderr
    assert target.read_bytes() == b"someone's model"
    forced = _cli("export", "shown", str(target), "--force", "--runs-dir", str(stored / "runs"), cwd=tmp_path)
    assert forced.returncode == 0 and target.read_bytes() == (stored / "trial2.keras").read_bytes()


def test_help_lists_choices_and_defaults_once():
    run = " ".join(subprocess.run([*HPO, "run", "--help"], capture_output=True, text=True, timeout=60).stdout.split())
    assert "--mode {simple,health}" in run
    for default in ("(default: none, one device per trial)", "(default: TensorFlow's default device;",
                    "(default: 1; with --distribution mirrored"):  # --distribution, --devices, --gpus-per-trial
        assert default in run
    for command in ("show", "export"):
        text = " ".join(subprocess.run([*HPO, command, "--help"], capture_output=True, text=True,
                                       timeout=60).stdout.split())
        assert "(default: None)" not in text and "(default: sqlite under RUNS_DIR/NAME/)" in text, text


@pytest.mark.slow
def test_evaluate_measures_a_stopped_search_s_best_and_show_reads_it(tmp_path, capsys):
    """`hpo-nb show` said "not measured yet (... hpo-nb run without --no-evaluate)", and no command could measure
    it without running more trials: `hpo-nb evaluate NAME` scores the saved best model on the test split."""
    from hpo_nb import cli

    space = json.dumps({"conv_blocks": 1, "filters": 4, "kernel_size": 3, "dense_layers": 0, "batch_size": 64,
                        "batch_norm": False, "optimizer": "adam", "learning_rate": 0.005})
    runs = str(tmp_path / "runs")
    assert cli.main(["run", "--name", "ev", "--trials", "1", "--max-epochs", "1", "--search-space", space,
                     "--sample-fraction", "0.5", "--no-evaluate", "--quiet", "--runs-dir", runs]) == 0
    assert "test accuracy: not measured (hpo-nb evaluate ev measures it)" in capsys.readouterr().out
    assert cli.main(["show", "ev", "--runs-dir", runs]) == 0
    assert "test accuracy: not measured yet (hpo-nb evaluate ev, or exp.evaluate() in Python)" in capsys.readouterr().out
    assert cli.main(["evaluate", "ev", "--runs-dir", runs]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("test accuracy "))
    assert line.endswith("on 359 held-out samples no trial trained or was scored on (the honest estimate)"), out
    accuracy = float(line.split()[2])
    assert 0 <= accuracy <= 1
    stored_accuracy, n_test = StoredStudy("ev", runs_dir=runs).test_accuracy(0)
    assert n_test == 359 and stored_accuracy == pytest.approx(accuracy, abs=5e-5)
    assert cli.main(["show", "ev", "--runs-dir", runs]) == 0
    shown = capsys.readouterr().out
    assert "not measured yet" not in shown and f"test accuracy {accuracy:.4f} on 359 held-out samples" in shown


def test_evaluate_of_a_study_of_your_own_data_asks_for_it(tmp_path, capsys):
    import numpy as np

    from hpo_nb import cli, datasets

    rng = np.random.default_rng(0)
    own = datasets.from_arrays(rng.integers(0, 256, (80, 8, 8)).astype("uint8"), np.arange(80) % 2, name="mine")
    Experiment(own, n_trials=1, executor=InMemoryExecutor(lambda job: TrialOutcome(0, "complete", accuracy=0.9,
                                                                                   score=0.9, duration_s=1.0)),
               progress="none", runs_dir=tmp_path / "runs", name="own", search_space=SPACE).run()
    assert cli.main(["evaluate", "own", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "study 'own' searched your own data ('mine'): pass it again with --data PATH" in capsys.readouterr().err
