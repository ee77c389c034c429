"""The terminal twin: one-line errors, and a search that survives SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

HPO = [sys.executable, "-m", "hpo_nb"]
SPACE = json.dumps({"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_layers": 0, "batch_size": 16,
                    "batch_norm": False, "optimizer": "adam", "learning_rate": {"range": [0.003, 0.01]}})


def _cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*HPO, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args, words", [
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--mode", "fast"], "argument --mode: invalid choice: 'fast'"),
    (["--trials", "0"], "--trials must be an integer >= 1"),
    (["--concurrency", "0"], "--concurrency must be an integer >= 1"),
    (["--search-space", "{bad json"], "--search-space is not valid JSON"),
    (["--search-space", '{"lstm_units": 8}'], "unknown search-space key"),
])
def test_bad_input_exits_nonzero_with_one_line(args, words, tmp_path):
    proc = _cli("run", *args, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpo-nb: error: ") and words in lines[0], proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("models/*"))


def test_datasets_lists_the_registry(tmp_path):
    proc = _cli("datasets", cwd=tmp_path)
    assert proc.returncode == 0 and "digits" in proc.stdout and "imdb" in proc.stdout


def _study(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(study_name="resume", storage=f"sqlite:///{tmp_path / 'runs' / 'resume' / 'study.db'}")


@pytest.mark.slow
def test_sigkilled_search_resumes_and_keeps_every_completed_trial(tmp_path):
    args = ["run", "--name", "resume", "--trials", "5", "--max-epochs", "3", "--search-space", SPACE,
            "--no-pruning", "--heartbeat-interval", "1", "--quiet"]
    proc = subprocess.Popen([*HPO, *args], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 300
    completed: list[int] = []
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            trials = _study(tmp_path).get_trials()
        except Exception:  # the study does not exist yet
            continue
        completed = [t.number for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        if len(completed) >= 2 and running:
            break
    assert proc.poll() is None, proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_mid_trial = [t.number for t in _study(tmp_path).get_trials()
                        if t.state == optuna.trial.TrialState.RUNNING]
    assert killed_mid_trial, "the kill was meant to land inside a trial"

    again = _cli(*args[:-1], cwd=tmp_path, timeout=420)  # resume, with console output this time
    assert again.returncode == 0, again.stderr
    trials = _study(tmp_path).get_trials()
    by_number = {t.number: t for t in trials}
    for n in completed:  # nothing that was completed is lost or redone
        assert by_number[n].state == optuna.trial.TrialState.COMPLETE
    counted = [t for t in trials if t.user_attrs.get("hpo_state") in ("complete", "pruned", "failed")]
    assert len(counted) == 5
    assert all(by_number[n].state == optuna.trial.TrialState.FAIL for n in killed_mid_trial)
    retried = [t for t in trials if t.system_attrs.get("failed_trial") in killed_mid_trial]
    assert retried, "the killed trial was queued again with the same parameters"
    assert "hpo-nb results" in again.stdout


def test_run_where_every_trial_failed_says_so_once(tmp_path, monkeypatch, capsys):
    """Trials are replaced (InMemoryExecutor, each failing); the CLI's closing lines are under test."""
    from hpo_nb import cli, experiment
    from hpo_nb.executors import InMemoryExecutor
    from hpo_nb.spec import TrialOutcome

    class Failing(experiment.Experiment):
        def __init__(self, **kwargs):
            failing = InMemoryExecutor(lambda job: TrialOutcome(job.spec.trial_number, "failed", error="ValueError: x"))
            super().__init__(**{**kwargs, "executor": failing})

    monkeypatch.setattr(experiment, "Experiment", Failing)
    code = cli.main(["run", "--trials", "2", "--runs-dir", str(tmp_path / "runs"), "--name", "fails", "--quiet"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hpo-nb: ")]
    assert code == 1
    assert err == ["hpo-nb: all 2 trials failed; the first error (trial 0): ValueError: x. Fix that and run() again "
                   "(results['error'] has every trial's error; run.log the tracebacks)."], err


@pytest.mark.parametrize("quiet", [False, True])
def test_run_warns_in_its_summary_when_the_best_does_not_beat_the_majority_class(tmp_path, monkeypatch, capsys, quiet):
    """Trials are replaced (InMemoryExecutor, 5 % accuracy on digits); the closing lines are under test.
    The warning is the dashboard's (baseline.not_beaten), printed once beside the majority-class rate."""
    from hpo_nb import cli, experiment
    from hpo_nb.executors import InMemoryExecutor
    from hpo_nb.spec import TrialOutcome

    class Weak(experiment.Experiment):
        def __init__(self, **kwargs):
            weak = InMemoryExecutor(lambda job: TrialOutcome(job.spec.trial_number, "complete", accuracy=0.05,
                                                             score=0.05, duration_s=1.0, epochs_run=1))
            super().__init__(**{**kwargs, "executor": weak, "search_space": {"conv_blocks": 1, "filters": 8,
                                                                             "batch_size": [16, 32]}})

    monkeypatch.setattr(experiment, "Experiment", Weak)
    code = cli.main(["run", "--trials", "2", "--runs-dir", str(tmp_path / "runs"), "--name", "weak", "--no-evaluate",
                     *(["--quiet"] if quiet else [])])
    out, err = capsys.readouterr()
    warned = [line for line in err.splitlines() if line.startswith("hpo-nb: warning: ")]
    assert code == 0
    assert warned == ["hpo-nb: warning: the best trial's validation accuracy 0.0500 does not beat the majority-class "
                      "rate 0.1010 (always answering '1'): the models learned nothing beyond the class balance. Try "
                      "--metric balanced_accuracy for imbalanced classes, more epochs or a wider search space."], err
    assert "majority-class rate 0.1010 on 287 validation samples" in out
    assert (out + err).count("does not beat") == 1, out  # in the summary only, not also as the live bars' "!" line
