"""End to end: real HTTP and the real runpod SDK worker loop. The client is ``RunPodExecutor``;
the endpoint is ``hpo_nb.executors.runpod.loopback`` driving two worker processes that run
``hpo_nb.executors.runpod.worker`` under the unmodified SDK worker loop. One endpoint serves the
whole module (each worker imports TensorFlow once)."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hpo_nb import Experiment
from hpo_nb.errors import ConfigError
from hpo_nb.executors.base import TrialJob
from hpo_nb.executors.runpod import RunPodExecutor, wire
from hpo_nb.executors.runpod.loopback import LoopbackEndpoint
from hpo_nb.progress import EpochEnded, Notice, TrialStarted, TrialStatus
from hpo_nb.spec import TrialSpec
from hpo_nb.training import train_trial
from hpo_nb.views import viewmodel as vm

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

KEY = "rpa_E2EKEY_" + os.urandom(8).hex()
SPACE = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_layers": 0, "batch_size": 64,
         "batch_norm": False, "optimizer": "adam", "learning_rate": (3e-3, 1e-2)}
PARAMS = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_layers": 0, "batch_size": 64,
          "batch_norm": False, "optimizer": "adam", "learning_rate": 0.005, "dropout": 0.1}
SEEN: list[str] = []  # every text a user could see: outputs, notices, errors, results, reprs
RUN_DIRS: list[Path] = []


class _Collect(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        SEEN.append(self.format(record))


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    handler, root = _Collect(level=logging.DEBUG), logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    endpoint = LoopbackEndpoint(workers=2, api_key=KEY, log_dir=tmp_path_factory.mktemp("runpod-workers")).start()
    try:
        yield endpoint
    finally:
        endpoint.stop()
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.fixture
def ready(loopback, capfd):
    """Both workers polling; afterwards keep what the test printed for the key check."""
    loopback.wait_ready()
    yield loopback
    out, err = capfd.readouterr()
    SEEN.extend([out, err])


def options(loopback, **extra):
    return {"endpoint_id": "local", "api_key": KEY, "base_url": loopback.url, "poll_interval_s": 0.25, **extra}


def experiment(tmp_path, loopback, name, snaps, **kw):
    kw.setdefault("search_space", SPACE)
    runpod = options(loopback, **kw.pop("runpod", {}))
    exp = Experiment(dataset="digits", executor="runpod", name=name, runs_dir=tmp_path / "runs", runpod=runpod,
                     progress=snaps.append, **kw)
    RUN_DIRS.append(exp.run_dir)
    return exp


def record(exp, snaps):
    SEEN.extend([repr(exp), exp.results.to_json(), *(n for s in snaps[-1:] for n in s.notices)])
    SEEN.extend(repr(t) + str(t.error) + str(t.extra) for t in exp.trials)


def wait_for(predicate, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# ------------------------------------------------------------------ the search


def test_four_trial_search_on_two_workers_completes_like_a_local_run(tmp_path, ready):
    snaps: list = []
    # 4 epochs: a worker's epoch-end gradient norms reach the hub live only if a status poll (every
    # 0.25 s) lands while the trial still runs; with 2 epochs of ~0.2 s that window was often missed
    exp = experiment(tmp_path, ready, "remote4", snaps, n_trials=4, max_epochs=4, concurrency=2)
    exp.run()
    record(exp, snaps)
    df = exp.results
    assert len(df) == 4 and set(df.state) <= {"complete", "pruned"} and (df.state == "complete").sum() >= 3
    assert set(df.executor) == {"runpod"}
    assert df.worker.str.match(r"local-\d+-\d+").all() and df.worker.nunique() == 2  # both workers trained
    assert (df.execution_s > 0).all() and (df.cost_usd > 0).all() and (df.delay_s >= 0).all()
    assert f"RunPod {vm.fmt_usd(df.cost_usd.sum())}" in vm.overall_label(exp.hub.snapshot())  # the bar's label
    for t in exp.trials:  # everything a local trial stores came back from the worker
        assert t.accuracy is not None and t.history["val_accuracy"] and t.epochs_run == len(t.history["loss"])
        if t.state == "complete":
            assert t.architecture["layers"] and t.health["health_score"] is not None and t.param_count > 0
    for t in exp.study.trials:  # pruning saw every epoch's value as it arrived
        assert sorted(t.intermediate_values) == list(range(1, t.user_attrs["epochs_run"] + 1))
    for t in exp.trials:  # diagnostics came back within the wire bound; the driver stored the arrays
        if t.state == "complete":
            assert t.diagnostics["gradients"]["mean"] and "inline" not in t.diagnostics
            assert (exp.run_dir / "artifacts" / t.diagnostics["artifacts"]["activations.npz"]).exists()
    assert exp.plot_activations().data and exp.plot_gradient_flow().data
    running = [r for s in snaps for r in s.running]
    assert any(r.gradients for r in running)  # the live gradient flow reached the hub from the workers
    assert {r.where for r in running if r.status == "running"} >= {f"runpod:{w}" for w in df.worker.unique()}
    assert any(r.epoch_fraction > 0 and r.where.startswith("runpod:") for r in running)  # live remote bars

    local = Experiment(dataset="digits", name="local1", runs_dir=tmp_path / "runs", n_trials=1, max_epochs=1,
                       search_space=SPACE, progress="none")
    local.run()
    extra = set(df.columns) - set(local.results.columns)
    assert set(local.results.columns) <= set(df.columns)
    assert extra == {"cost_usd", "delay_s", "execution_s", "worker"}
    shared = [c for c in local.results.columns if local.results[c].notna().all() and df[c].notna().all()]
    assert {c: df[c].dtype.kind for c in shared} == {c: local.results[c].dtype.kind for c in shared}


def test_same_spec_gives_the_same_accuracy_remotely_and_locally_with_queue_and_worker_shown(ready):
    events: list = []
    ex = RunPodExecutor(concurrency=2, **options(ready))
    ex.prepare(events.append)
    specs = [TrialSpec(trial_number=100 + i, dataset="digits", params=PARAMS, max_epochs=2, seed=i) for i in range(2)]
    futures = [ex.submit(TrialJob(spec=s, publish=events.append, stop=threading.Event())) for s in specs]
    outcomes = [f.result(timeout=240) for f in futures]
    ex.shutdown()
    SEEN.extend(str(o.to_dict()) for o in outcomes)
    SEEN.extend(str(e) for e in events)
    assert [o.state for o in outcomes] == ["complete"] * 2
    local = train_trial(specs[0])
    assert abs(outcomes[0].accuracy - local.accuracy) <= 0.005
    assert outcomes[0].history["val_accuracy"] == pytest.approx(local.history["val_accuracy"], abs=0.005)
    for spec in specs:
        mine = [e for e in events if getattr(e, "trial", None) == spec.trial_number]
        assert isinstance(mine[0], TrialStarted) and (mine[0].status, mine[0].where) == ("queued", "runpod")
        assert any(isinstance(e, TrialStatus) and e.status == "running" and re.fullmatch(r"runpod:local-\d+-\d+", e.where)
                   for e in mine)
        assert [e.epoch for e in mine if isinstance(e, EpochEnded)] == [1, 2]
    assert not [e for e in events if isinstance(e, Notice)]


# ------------------------------------------------------------------ faults


def test_worker_killed_mid_trial_is_retried_and_the_search_finishes(tmp_path, ready):
    snaps: list = []
    # 12 epochs: a window of epochs 1-9 to catch a remote trial in (digits epochs take a fraction of
    # a second, and remote progress arrives by polling).
    exp = experiment(tmp_path, ready, "killed", snaps, n_trials=2, max_epochs=12, concurrency=2, pruning=False)
    pids_before = {w["pid"] for w in ready.workers().values()}
    exp.start()

    def running_remote():
        for r in exp.hub.snapshot().running:
            if r.where.startswith("runpod:") and 1 <= r.epochs_done <= r.total_epochs - 3:
                return r
        return None

    victim = wait_for(running_remote, what="a remote trial past its first epoch")
    worker = victim.where.split(":", 1)[1]
    os.kill(ready.workers()[worker]["pid"], signal.SIGKILL)
    exp.wait(timeout=240)
    record(exp, snaps)
    df = exp.results
    assert list(df.state) == ["complete"] * 2  # nothing lost
    retried = exp.trial(victim.trial)
    assert retried.extra["attempts"] == 2 and retried.epochs_run == 12
    # The workers share a checkpoint folder (a network volume in the cloud): the retry resumed.
    assert 1 <= retried.extra["resumed_from_epoch"] < 12
    failed = [j for j in ready.jobs() if j["status"] == "FAILED"]
    assert any(f"worker {worker} exited (signal 9)" in j.get("error", "") for j in failed)
    assert any(f"trial {victim.trial}: RunPod job failed" in n for n in snaps[-1].notices)
    wait_for(lambda: len(ready.workers()) == 2 and not {w["pid"] for w in ready.workers().values()} >= pids_before,
             what="the killed worker to be replaced")


# The process that drives a search: `exp.run()` on RunPod, nothing else (killed mid-job below).
DRIVER = """
import os, sys
from hpo_nb import Experiment
Experiment(dataset="digits", executor="runpod", name="reattach", runs_dir=sys.argv[1], n_trials=1, max_epochs=30,
           search_space={**SPACE, "batch_size": 16}, pruning=False, heartbeat_interval=1, progress="none",
           runpod={"endpoint_id": "local", "api_key": os.environ["HPO_NB_TEST_KEY"], "base_url": sys.argv[2],
                   "poll_interval_s": 0.25}).run()
"""


def test_a_new_process_reattaches_to_the_job_of_a_killed_one(tmp_path, ready):
    import subprocess
    import sys

    before = {j["id"] for j in ready.jobs()}
    driver = subprocess.Popen(
        [sys.executable, "-c", f"SPACE = {SPACE!r}\n{DRIVER}", str(tmp_path / "runs"), ready.url],
        cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL, stderr=open(tmp_path / "driver.log", "w"),
        env={**os.environ, "HPO_NB_TEST_KEY": KEY, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"})
    try:
        def running_job():
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            jobs = [j for j in ready.jobs() if j["id"] not in before and j["status"] == "IN_PROGRESS"]
            return jobs and len((jobs[0].get("output") or {}).get("epochs") or []) >= 2 and jobs[0]
        job = wait_for(running_job, timeout=180, what="the driver's job past its second epoch")
        driver.send_signal(signal.SIGKILL)  # a kernel restart, a killed script: the job runs on, billed
        driver.wait(10)
    finally:
        if driver.poll() is None:
            driver.kill()
    snaps: list = []
    exp = experiment(tmp_path, ready, "reattach", snaps, n_trials=1, max_epochs=30, pruning=False,
                     heartbeat_interval=1, search_space={**SPACE, "batch_size": 16})
    exp.run()  # a new process on the same study: the old one is gone, so it follows the job at once
    record(exp, snaps)
    (trial,) = exp.trials  # the original trial: not failed, not retried
    assert trial.number == 0 and trial.state == "complete" and trial.epochs_run == 30
    assert trial.extra["job_id"] == job["id"] and trial.extra["attempts"] == 1
    new_jobs = [j for j in ready.jobs() if j["id"] not in before]
    assert [j["id"] for j in new_jobs] == [job["id"]] and new_jobs[0]["status"] == "COMPLETED"  # one job billed
    assert trial.extra["execution_s"] == pytest.approx(new_jobs[0]["executionTime"] / 1000, abs=0.01)
    assert any(f"following its runpod job {job['id']}" in n for n in snaps[-1].notices)


def test_stop_cancels_remote_jobs_and_workers_stop_within_one_batch(tmp_path, ready):
    snaps: list = []
    exp = experiment(tmp_path, ready, "stopped", snaps, n_trials=2, max_epochs=60, concurrency=2, pruning=False)
    exp.start()
    wait_for(lambda: sum(r.epochs_done >= 1 and r.where.startswith("runpod:") for r in exp.hub.snapshot().running) == 2,
             what="both remote trials past their first epoch")
    exp.stop()
    record(exp, snaps)
    trials = exp.trials
    assert [t.state for t in trials] == ["stopped", "stopped"]
    for t in trials:
        job_id = t.extra["job_id"]
        assert ready.job(job_id)["status"] == "CANCELLED"
        assert 1 <= t.epochs_run < 60
        line = wait_for(lambda: re.search(rf"{job_id} \| trial {t.number} stopped on request: stopped after "
                                          rf"\d+ epoch\(s\); batches finished after the stop: (\d+)",
                                          ready.worker_logs()), what="the worker's stop report")
        assert int(line.group(1)) <= 1
    wait_for(lambda: all(not w["jobs"] for w in ready.workers().values()), what="workers free again")


def test_execution_timeout_is_retried_then_recorded_as_failed(ready):
    events: list = []
    ex = RunPodExecutor(concurrency=1, **options(ready, execution_timeout_s=1.0, max_retries=1))
    ex.prepare(events.append)
    spec = TrialSpec(trial_number=200, dataset="digits", params=PARAMS, max_epochs=200)
    outcome = ex.submit(TrialJob(spec=spec, publish=events.append, stop=threading.Event())).result(timeout=240)
    ex.shutdown()
    SEEN.append(str(outcome.to_dict()))
    assert outcome.state == "failed" and "timed out" in outcome.error and "2 attempts" in outcome.error
    assert outcome.extra["attempts"] == 2 and outcome.extra["execution_s"] >= 2.0
    assert sum(isinstance(e, Notice) and "retry 1 of 1" in e.message for e in events) == 1


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(bad=st.one_of(
    st.integers() | st.text(max_size=20) | st.lists(st.integers(), max_size=3),
    st.fixed_dictionaries({"dataset": st.text(max_size=20)}),
    st.builds(lambda k, v: {**TrialSpec(0, "digits", PARAMS, 1).to_dict(), k: v},
              st.sampled_from(["max_epochs", "seed", "trial_number"]), st.integers(min_value=10**9, max_value=10**40)),
    st.builds(lambda k: {**TrialSpec(0, "digits", PARAMS, 1).to_dict(), k: "x"}, st.text(min_size=1, max_size=10)),
    st.builds(lambda v: {**TrialSpec(0, "digits", PARAMS, 1).to_dict(), "params": {"filters": v}},
              st.text(max_size=8) | st.floats() | st.lists(st.integers(), max_size=2)),
))
def test_bad_input_fails_the_job_with_a_message_and_the_worker_survives(ready, bad):
    import runpod

    pids = {w["pid"] for w in ready.workers().values()}
    endpoint = runpod.Endpoint("local", api_key=KEY)
    endpoint.rp_client.endpoint_url_base = ready.url
    job = endpoint.run({"input": bad})
    status = wait_for(lambda: (s := ready.job(job.job_id)) and s["status"] not in ("IN_QUEUE", "IN_PROGRESS") and s,
                      what="the bad job to end")
    assert status["status"] == "FAILED" and status["error"].startswith(wire.INVALID_PREFIX)
    assert {w["pid"] for w in ready.workers().values()} == pids  # no worker died or restarted


def test_workers_still_train_after_bad_input(ready):
    events: list = []
    ex = RunPodExecutor(concurrency=1, **options(ready))
    spec = TrialSpec(trial_number=300, dataset="digits", params=PARAMS, max_epochs=1)
    outcome = ex.submit(TrialJob(spec=spec, publish=events.append, stop=threading.Event())).result(timeout=240)
    ex.shutdown()
    assert outcome.state == "complete" and outcome.accuracy > 0


# ------------------------------------------------------------------ fallback and cost


def test_rejected_key_falls_back_to_local_training_and_says_so(tmp_path, ready):
    snaps: list = []
    wrong = "rpa_WRONGKEY_" + os.urandom(6).hex()
    exp = experiment(tmp_path, ready, "fallback", snaps, n_trials=1, max_epochs=1, runpod={"api_key": wrong})
    exp.run()
    record(exp, snaps)
    assert list(exp.results.state) == ["complete"] and list(exp.results.executor) == ["local"]
    assert any("rejected the API key" in n and "running trials locally" in n for n in snaps[-1].notices)
    assert all(wrong not in text for text in SEEN)

    strict = RunPodExecutor(concurrency=1, **options(ready, api_key=wrong, fallback=False))
    with pytest.raises(ConfigError, match="rejected the API key") as info:
        strict.prepare(lambda e: None)
    assert wrong not in str(info.value)


def test_unreachable_endpoint_falls_back_with_a_notice():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    events: list = []
    ex = RunPodExecutor(concurrency=1, endpoint_id="local", api_key=KEY, base_url=f"http://127.0.0.1:{port}/v2",
                        max_backoff_s=0.05)
    ex.prepare(events.append)
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and "unreachable" in notices[0] and "running trials locally" in notices[0]
    assert ex.describe() == {"executor": "local"}
    ex.shutdown()
    SEEN.extend(notices)


def test_budget_cap_stops_submitting(tmp_path, ready):
    snaps: list = []
    exp = experiment(tmp_path, ready, "budget", snaps, n_trials=3, max_epochs=1, concurrency=1,
                     runpod={"price_per_second": 1.0, "budget_usd": 0.01})
    exp.run()
    record(exp, snaps)
    df = exp.results
    assert len(df) == 1 and df.cost_usd.iloc[0] > 0.01
    assert any("budget of $0.01 reached" in n for n in snaps[-1].notices)


# ------------------------------------------------------------------ secrets (runs last)


def test_the_api_key_appears_in_no_log_result_error_or_output(loopback):
    texts = [*SEEN, loopback.worker_logs()]
    texts += [p.read_text(errors="replace") for d in RUN_DIRS for p in Path(d).rglob("*.log")]
    assert len(SEEN) > 50 and "Started." in texts[len(SEEN)]  # the worker logs are there
    leaks = [t[:200] for t in texts if KEY in t]
    assert not leaks
