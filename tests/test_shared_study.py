"""One study, several processes: a real PostgreSQL server (started here), real Keras trials.

Two processes split ``n_trials`` exactly; a process SIGKILLed mid-trial loses nothing completed,
and its trial is failed via the heartbeat and retried by the survivor.
"""

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

from hpo_nb import Experiment, cli
from hpo_nb.errors import ConfigError
from hpo_nb.storage import open_storage

from .pg_server import PASSWORD, postgres_server

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("study_worker.py")
# As JSON, the way `hpo-nb run --search-space` takes it: a list is a choice, {"range": [lo, hi]} a range.
SPACE = {"conv_blocks": 1, "filters": [4, 8], "kernel_size": 3, "dense_layers": 0, "batch_size": 64,
         "batch_norm": False, "optimizer": "adam", "learning_rate": {"range": [3e-3, 1e-2]}, "activation": "relu",
         "pooling": "max", "dropout": 0.1}


@pytest.fixture(scope="module")
def pg_url():
    with postgres_server() as url:
        yield url


@pytest.fixture
def spawned():
    """Processes a test starts; whatever still runs when it ends (a failed assertion) is killed."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def _worker(settings: dict, log: Path, spawned: list[subprocess.Popen]) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    spawned.append(subprocess.Popen([sys.executable, str(WORKER), json.dumps(settings)], cwd=ROOT, env=env,
                                    stdout=subprocess.PIPE, stderr=open(log, "w"), text=True))
    return spawned[-1]


def _result(proc: subprocess.Popen, log: Path, timeout: float = 240) -> dict:
    out, _ = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"worker failed ({proc.returncode}):\n{out}\n{log.read_text()[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def _wait_for(path: Path, procs: list[subprocess.Popen], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert all(p.poll() is None for p in procs), "a worker exited early"
        assert time.monotonic() < deadline, f"timed out waiting for {path.name}"
        time.sleep(0.1)


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    storage = open_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=True)
    finally:
        storage.engine.dispose()


def test_bad_storage_urls_fail_clearly_and_never_show_the_password(pg_url, runs_dir, capsys):
    port = pg_url.rsplit(":", 1)[1].split("/")[0]
    wrong = pg_url.replace(PASSWORD, "wrong-" + PASSWORD)
    cases = {
        wrong: "password authentication failed",
        f"postgresql://hpo:{PASSWORD}@127.0.0.1:1/postgres": "connection refused",
        f"postgresql://hpo:{PASSWORD}@127.0.0.1:notaport/postgres": "malformed",
        f"postgresql://hpo:p@{PASSWORD}@127.0.0.1:{port}/postgres": "percent-encode",
        f"postgresql://hpo:{PASSWORD}@/postgres": "needs a host",
    }
    for url, words in cases.items():
        with pytest.raises(ConfigError) as err:
            Experiment("digits", n_trials=1, storage=url, runs_dir=runs_dir, progress="none")
        message = str(err.value)
        assert words in message.lower() and "***" in message, message
        assert PASSWORD not in message and PASSWORD[3:] not in message, message
    assert cli.main(["run", "--storage", wrong, "--trials", "1", "--runs-dir", str(runs_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "password authentication failed" in err and PASSWORD not in err


@pytest.mark.slow
def test_two_processes_split_the_budget_exactly_and_see_each_other(pg_url, tmp_path, spawned):
    name, n_trials = "shared-two", 3
    settings = {"storage": pg_url, "name": name, "n_trials": n_trials, "max_epochs": 1, "concurrency": 2,
                "space": SPACE, "go": str(tmp_path / "go")}
    procs = [_worker({**settings, "runs_dir": str(tmp_path / f"runs{i}"), "ready": str(tmp_path / f"ready{i}")},
                     tmp_path / f"worker{i}.log", spawned) for i in range(2)]
    for i in range(2):
        _wait_for(tmp_path / f"ready{i}", procs)
    (tmp_path / "go").touch()  # both search from the same moment: four asks race for three trials
    a, b = (_result(p, tmp_path / f"worker{i}.log") for i, p in enumerate(procs))

    trials = _trials(pg_url, name)
    complete = sorted(t.number for t in trials if t.state == optuna.trial.TrialState.COMPLETE)
    assert len(complete) == n_trials, [(t.number, t.state) for t in trials]  # nothing beyond the budget
    # Under heavy load a trial may miss heartbeats for the grace period: then it is failed (and does
    # not count) and retried. Anything not complete must be such a trial, with its retry complete.
    retried = {t.system_attrs.get("failed_trial") for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert all(t.number in retried and "hpo_state" not in t.user_attrs for t in trials if t.number not in complete)
    assert a["mine"] and b["mine"] and not set(a["mine"]) & set(b["mine"])  # split, no trial run twice
    assert sorted(a["mine"] + b["mine"]) == complete
    best = max((t for t in trials if t.number in complete), key=lambda t: t.value)
    for seen in (a, b):  # each process's exp.results shows the other's trials; best is the global best
        assert seen["numbers"] == [t.number for t in trials]
        assert [n for n, s in zip(seen["numbers"], seen["states"]) if s == "complete"] == complete
        assert seen["best"] == best.number and seen["best_score"] == pytest.approx(best.value)


@pytest.mark.slow
def test_a_killed_process_loses_nothing_and_its_trial_is_retried_by_the_survivor(pg_url, tmp_path, spawned):
    name = "shared-kill"
    # The victim is the terminal twin, `hpo-nb run --storage URL`; pruning on, so trials report epochs.
    victim = subprocess.Popen(
        [sys.executable, "-m", "hpo_nb", "run", "--storage", pg_url, "--name", name, "--trials", "3",
         "--max-epochs", "8", "--search-space", json.dumps(SPACE), "--heartbeat-interval", "2", "--quiet",
         "--runs-dir", str(tmp_path / "victim")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "victim.log", "w"),
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"})
    spawned.append(victim)
    # The survivor searches the same study, so with the same epochs (a study refuses incomparable trials).
    survivor = _worker({"storage": pg_url, "name": name, "n_trials": 3, "space": SPACE, "max_epochs": 8,
                        "runs_dir": str(tmp_path / "survivor"), "ready": str(tmp_path / "ready-survivor"),
                        "go": str(tmp_path / "go")}, tmp_path / "survivor.log", spawned)
    storage = open_storage(pg_url)
    try:
        _wait_for(tmp_path / "ready-survivor", [victim, survivor])  # start-up overlaps the victim's first trial
        deadline = time.monotonic() + 240
        while True:  # kill the victim in the middle of a trial (it reported an epoch), after one completed
            assert victim.poll() is None, (tmp_path / "victim.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the victim never got into its second trial"
            try:
                trials = optuna.load_study(study_name=name, storage=storage).get_trials()
            except KeyError:  # not created yet
                trials = []
            done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
            mid = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING
                   and 1 <= len(t.intermediate_values) <= 3]  # epochs left: seconds, the kill takes ms
            if done and mid:
                break
            time.sleep(0.1)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(30)
    finally:
        storage.engine.dispose()
    completed = {t.number: t.value for t in done}
    [killed] = [t.number for t in _trials(pg_url, name) if t.state == optuna.trial.TrialState.RUNNING]
    (tmp_path / "go").touch()
    seen = _result(survivor, tmp_path / "survivor.log")

    trials = {t.number: t for t in _trials(pg_url, name)}
    complete = [t for t in trials.values() if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 3, {n: t.state for n, t in trials.items()}
    for number, value in completed.items():  # nothing completed is lost
        assert trials[number].state == optuna.trial.TrialState.COMPLETE and trials[number].value == value
    assert trials[killed].state == optuna.trial.TrialState.FAIL  # failed by the survivor via the heartbeat
    retries = [t for t in complete if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].params == trials[killed].params
    from hpo_nb import records  # its row says why it failed, and which trial retried it

    rows = records.results_frame(list(trials.values())).set_index("number")
    assert rows.loc[killed, "error"] == f"process died (heartbeat lost); retried as trial {retries[0].number}"
    # The survivor ran the retry and whatever budget the victim left: a fresh trial too when the victim
    # had completed one trial before the kill, only the retry when it had completed two.
    victims = {t.number for t in complete if t.user_attrs.get("runner", "").endswith(f":{victim.pid}")}
    assert retries[0].number in seen["mine"] and set(seen["mine"]) == {t.number for t in complete} - victims
