"""Ctrl+C (SIGINT) records every running trial before the process ends: the ``hpo-nb`` command
exits 130 with a table that lists them as stopped, and a script calling ``exp.run()`` gets its
KeyboardInterrupt back only after the record is written. Each test starts one small search
(digits, one tiny CNN, 3 epochs, 2 trials at once) in its own process group."""

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

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[1]
# Batch 2: a trial must still be in its first epoch when the signal comes 1 s into it (at batch 16 a
# whole 3-epoch trial took 1.1 s on a quiet machine and both had ended: nothing left to record as stopped).
SPACE = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_layers": 0, "batch_size": 2,
         "batch_norm": False, "optimizer": "adam", "learning_rate": (0.003, 0.01)}

SCRIPT = """
import json, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, whoever started us
from hpo_nb import Experiment
space = json.loads(sys.argv[2]); space["learning_rate"] = tuple(space["learning_rate"])
exp = Experiment(dataset="digits", n_trials=6, max_epochs=3, concurrency=2, name="sigint", runs_dir=sys.argv[1],
                 search_space=space, progress="none", heartbeat_interval=1)
try:
    exp.run()
except KeyboardInterrupt:
    states = [t.state.name for t in exp.study.get_trials()]
    print("INTERRUPTED " + json.dumps(states), flush=True)
    raise
print("RETURNED", flush=True)
"""


def _default_sigint() -> None:
    """In the child: SIGINT as a terminal delivers it (a background job may have it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, preexec_fn=_default_sigint)


def _trials(db: Path) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="sigint", storage=f"sqlite:///{db}").get_trials()
    except Exception:  # not created yet
        return []


def _interrupt_when_two_run(proc: subprocess.Popen, db: Path) -> float:
    """SIGINT once two trials are RUNNING and training; returns seconds from the signal to the exit."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        running = [t for t in _trials(db) if t.state == optuna.trial.TrialState.RUNNING and "params_all" in t.user_attrs]
        if len(running) == 2:
            break
        time.sleep(0.2)
    else:
        pytest.fail("two trials never ran at once")
    time.sleep(1.0)  # inside their first epoch
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=120)
    return time.monotonic() - sent


def _assert_all_recorded(db: Path) -> None:
    trials = _trials(db)
    states = [t.state for t in trials]
    assert optuna.trial.TrialState.RUNNING not in states, states
    stopped = [t for t in trials if t.user_attrs.get("hpo_state") == "stopped"]
    assert len(stopped) >= 1, [t.user_attrs.get("hpo_state") for t in trials]


def test_sigint_to_a_script_running_exp_run_records_every_trial_then_reraises(tmp_path):
    script = tmp_path / "search.py"
    script.write_text(SCRIPT)
    proc = _start([sys.executable, str(script), str(tmp_path / "runs"), json.dumps(SPACE)], tmp_path)
    took = _interrupt_when_two_run(proc, tmp_path / "runs" / "sigint" / "study.db")
    out, err = proc.communicate()
    print(f"script: exit {proc.returncode} {took:.1f} s after SIGINT")
    assert proc.returncode in (-signal.SIGINT, 130), (proc.returncode, err[-2000:])
    assert "RETURNED" not in out and "INTERRUPTED" in out, (out, err[-2000:])
    seen_by_script = json.loads(out.split("INTERRUPTED ", 1)[1].splitlines()[0])
    assert "RUNNING" not in seen_by_script  # recorded before the KeyboardInterrupt came back
    assert "KeyboardInterrupt" in err
    _assert_all_recorded(tmp_path / "runs" / "sigint" / "study.db")


def test_sigint_to_the_cli_exits_130_with_running_trials_recorded_as_stopped(tmp_path):
    args = [sys.executable, "-m", "hpo_nb", "run", "--name", "sigint", "--trials", "6", "--max-epochs", "3",
            "--concurrency", "2", "--search-space", json.dumps({**SPACE, "learning_rate": {"range": [0.003, 0.01]}}),
            "--heartbeat-interval", "1", "--no-evaluate"]
    proc = _start(args, tmp_path)
    took = _interrupt_when_two_run(proc, tmp_path / "runs" / "sigint" / "study.db")
    out, err = proc.communicate()
    print(f"cli: exit {proc.returncode} {took:.1f} s after SIGINT")
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    assert "stopping" in err
    table = out.split("hpo-nb results", 1)[1]
    assert "stopped" in table and "running" not in table, out
    _assert_all_recorded(tmp_path / "runs" / "sigint" / "study.db")
