"""RunPod pieces that need no worker process: options, the wire format, the handler coroutine,
progress folding and HTTP back-off. (End-to-end behaviour: tests/test_runpod.py.)"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import json
import threading

import pytest
import requests
from hypothesis import HealthCheck, given, settings, strategies as st

from hpo_nb import remote
from hpo_nb.errors import ConfigError
from hpo_nb.executors.base import TrialJob
from hpo_nb.executors.runpod import RunPodExecutor, _NotFound, _Rejected, _Seen, _short, _Unreachable, check_options
from hpo_nb.progress import EpochEnded, EpochProgress
from hpo_nb.runpod_local import HANDLER
from hpo_nb.spec import TrialOutcome, TrialSpec

KEY = "rpa_UNITKEY_5f0c1d2e3b4a"
PARAMS = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_layers": 0, "batch_size": 64}
SPEC = TrialSpec(trial_number=3, dataset="digits", params=PARAMS, max_epochs=4, seed=7)


@pytest.fixture(scope="module")
def handler_module():
    spec = importlib.util.spec_from_file_location("hpo_nb_runpod_handler", HANDLER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def executor(**options) -> RunPodExecutor:
    return RunPodExecutor(concurrency=1, endpoint_id="unit-endpoint-id", api_key=KEY, **options)


# ------------------------------------------------------------------ options


def test_missing_key_or_endpoint_is_a_config_error_naming_the_variable(monkeypatch):
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    monkeypatch.delenv("RUNPOD_ENDPOINT_ID", raising=False)
    with pytest.raises(ConfigError, match="RUNPOD_ENDPOINT_ID"):
        check_options({"api_key": KEY})
    with pytest.raises(ConfigError, match="RUNPOD_API_KEY"):
        check_options({"endpoint_id": "abc"})
    monkeypatch.setenv("RUNPOD_API_KEY", KEY)
    monkeypatch.setenv("RUNPOD_ENDPOINT_ID", "from-env")
    settings_ = check_options({})
    assert settings_.endpoint_id == "from-env" and settings_.api_key.reveal() == KEY


@pytest.mark.parametrize("options, match", [
    ({"concurrency": 2}, "set concurrency on the Experiment"),
    ({"bogus": 1}, "unknown runpod option"),
    ({"max_retries": -1}, "max_retries"),
    ({"poll_interval_s": 0}, "poll_interval_s"),
    ({"budget_usd": float("nan")}, "budget_usd"),
    ({"fallback": "yes"}, "fallback"),
    ({"base_url": "ftp://x"}, "base_url"),
])
def test_bad_options_are_config_errors(options, match):
    with pytest.raises(ConfigError, match=match):
        check_options({"endpoint_id": "e", "api_key": KEY, **options})


def test_experiment_rejects_runpod_without_a_key_before_training(monkeypatch, runs_dir):
    from hpo_nb import Experiment

    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="RUNPOD_API_KEY"):
        Experiment(dataset="digits", executor="runpod", runpod={"endpoint_id": "e"}, runs_dir=runs_dir,
                   progress="none")


def test_reprs_hide_the_key():
    ex = executor()
    for text in (repr(ex), str(ex), repr(ex.settings), str(ex.settings.api_key), repr(vars(ex.settings))):
        assert KEY not in text
    assert "unit-endpoint-id" not in repr(ex)  # the endpoint id is masked too


def test_execution_timeout_policy_follows_the_epoch_budget():
    ex = executor(epoch_timeout_s=60, startup_s=120)
    assert ex.settings.execution_timeout_ms(SPEC) == 1000 * (120 + 4 * 60)
    assert executor(execution_timeout_s=30).settings.execution_timeout_ms(SPEC) == 30_000


# ------------------------------------------------------------------ HTTP back-off


def _http_error(code: int, headers: dict | None = None) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = code
    response.headers.update(headers or {})
    return requests.HTTPError(f"{code} error", response=response)


def test_429_and_5xx_back_off_then_succeed(monkeypatch):
    ex = executor(max_backoff_s=0.01)
    monkeypatch.setattr(ex, "_endpoint", lambda: None)
    faults = [_http_error(429, {"Retry-After": "0.01"}), _http_error(503), requests.ConnectionError("refused")]
    calls = []

    def call(_ep):
        calls.append(1)
        if faults:
            raise faults.pop(0)
        return "ok"

    assert ex._request(call) == "ok"
    assert len(calls) == 4


def test_http_faults_map_to_reasons(monkeypatch):
    ex = executor(max_backoff_s=0.01, http_retries=2)
    monkeypatch.setattr(ex, "_endpoint", lambda: None)

    def raising(exc):
        def call(_ep):
            raise exc
        return call

    with pytest.raises(_Unreachable, match="ConnectionError"):
        ex._request(raising(requests.ConnectionError(f"no route; key={KEY}")))
    with pytest.raises(_Rejected, match="401"):
        ex._request(raising(RuntimeError("401 Unauthorized | Make sure Runpod API key is set and valid.")))
    with pytest.raises(_NotFound):
        ex._request(raising(_http_error(404)))
    with pytest.raises(_Rejected, match="endpoint not found"):
        ex._request(raising(_http_error(404)), health=True)
    assert KEY not in ex._redact(f"boom {KEY}") and "unit-endpoint-id" not in ex._redact("x/unit-endpoint-id/y")


def test_sdk_error_json_is_shortened_to_its_message():
    raw = json.dumps({"error_type": "<class 'ValueError'>", "error_message": "bad thing",
                      "error_traceback": "Traceback ...\n" * 50})
    assert _short(raw) == "<class 'ValueError'>: bad thing"


# ------------------------------------------------------------------ progress folding


def test_out_of_order_cumulative_progress_becomes_each_event_once():
    ex = executor()
    events, reports = [], []
    ex._publish = events.append
    job = TrialJob(spec=SPEC, publish=events.append, stop=threading.Event(),
                   report=lambda epoch, value: reports.append((epoch, value)) or epoch == 3)
    seen = _Seen()

    def payload(seq, epoch, batch, ended):
        return remote.progress_payload(seq, "w1", SPEC.trial_number, {
            "epoch": epoch, "total_epochs": 4, "batch": batch, "total_batches": 10, "loss": 0.5, "accuracy": 0.6,
            "epochs": [{"epoch": e, "metrics": {"val_accuracy": e / 10, "loss": 1.0}} for e in range(1, ended + 1)]})

    assert ex._follow(job, payload(5, 3, 4, 2), seen) is False  # epochs 1 and 2 ended, epoch 3 running
    assert ex._follow(job, payload(4, 2, 9, 1), seen) is False  # late, older update: ignored
    assert ex._follow(job, {"status": "nonsense"}, seen) is False
    assert ex._follow(job, payload(7, 4, 0, 3), seen) is True  # epoch 3 ended -> pruner says stop
    ended = [e.epoch for e in events if isinstance(e, EpochEnded)]
    assert ended == [1, 2, 3]
    assert reports == [(1, 0.1), (2, 0.2), (3, 0.3)]
    progress = [(e.epoch, e.batch) for e in events if isinstance(e, EpochProgress)]
    assert progress == [(3, 4), (4, 0)]
    outcome = ex._client_outcome(job, "pruned", seen, started=0.0)
    assert outcome.state == "pruned" and outcome.epochs_run == 3 and outcome.accuracy == pytest.approx(0.3)
    assert outcome.history["val_accuracy"] == [0.1, 0.2, 0.3]


def test_epochs_that_end_after_the_last_poll_are_published_from_the_result():
    """A job can finish between two polls: its last epochs then arrive only in the outcome."""
    ex = executor()
    events, reports = [], []
    ex._publish = events.append
    job = TrialJob(spec=SPEC, publish=events.append, stop=threading.Event(),
                   report=lambda epoch, value: reports.append((epoch, value)) or False)
    seen = _Seen()
    ex._follow(job, remote.progress_payload(1, "w1", SPEC.trial_number, {
        "epoch": 2, "total_epochs": 4, "batch": 3, "total_batches": 10,
        "epochs": [{"epoch": 1, "metrics": {"val_accuracy": 0.1, "loss": 1.0}}]}), seen)
    history = {"loss": [1.0, 0.8, 0.6, 0.5], "val_accuracy": [0.1, 0.2, 0.3, 0.4]}
    result = {"outcome": TrialOutcome(SPEC.trial_number, "complete", accuracy=0.4, history=history,
                                      epochs_run=4).to_dict()}
    outcome = ex._completed(job, result, seen)
    assert outcome.state == "complete"
    ended = [(e.epoch, e.metrics.get("val_accuracy")) for e in events if isinstance(e, EpochEnded)]
    assert ended == [(1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4)]
    assert reports == [(1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4)]


# ------------------------------------------------------------------ wire format


def test_a_full_cnn_spec_fits_in_one_kilobyte_and_round_trips():
    params = {"conv_blocks": 3, "filters": 64, "kernel_size": 5, "activation": "relu", "pooling": "average",
              "batch_norm": True, "dropout": 0.123456789012345, "dense_layers": 2, "dense_units": 256,
              "optimizer": "rmsprop", "learning_rate": 0.000123456789012345, "batch_size": 128}
    spec = TrialSpec(trial_number=99999, dataset="digits", params=params, max_epochs=100, seed=2**31 - 1,
                     mode="health", sample_fraction=0.5, health_weights={"dead_units": 2.0})
    data = remote.encode_spec(spec)
    assert len(json.dumps(data, separators=(",", ":"))) < remote.MAX_INPUT_BYTES
    assert remote.decode_input(json.loads(json.dumps(data))) == spec


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=12)
_field = st.sampled_from(sorted(SPEC.to_dict()))


@st.composite
def bad_inputs(draw):
    base = SPEC.to_dict()
    kind = draw(st.sampled_from(["not_a_dict", "wrong_type", "extra_key", "dataset", "huge", "param"]))
    if kind == "not_a_dict":
        return draw(st.none() | st.integers() | st.text(max_size=30) | st.lists(st.integers(), max_size=3))
    if kind == "wrong_type":
        name = draw(_field.filter(lambda f: f not in ("health_weights", "devices")))
        value = draw(_json.filter(lambda v: type(v) is not type(base[name]) and not (
            isinstance(base[name], float) and type(v) is int)))
        return {**base, name: value}
    if kind == "extra_key":
        return {**base, draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in base)): draw(_json)}
    if kind == "dataset":
        return {**base, "dataset": draw(st.text(max_size=40).filter(lambda n: n not in remote.datasets.names()))}
    if kind == "huge":
        name = draw(st.sampled_from(["trial_number", "max_epochs", "seed"]))
        return {**base, name: draw(st.integers(min_value=2**31, max_value=10**30) | st.integers(max_value=-1))}
    return {**base, "params": {**PARAMS, draw(st.sampled_from(["filters", "conv_blocks", "batch_size", "bogus"])):
                               draw(st.integers(min_value=10**5) | st.text(max_size=5) | st.floats(allow_nan=True))}}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bad_inputs())
def test_invalid_inputs_are_rejected_with_a_reason_never_an_exception(raw):
    problem = remote.validation_problem(raw)
    assert problem is not None and problem.startswith(remote.INVALID_PREFIX) and len(problem) <= 600
    with pytest.raises(ValueError, match=remote.INVALID_PREFIX):
        remote.decode_input(raw)


# ------------------------------------------------------------------ the handler, in-process


def test_handler_turns_invalid_input_into_an_error_result(handler_module):
    job = {"id": "job-1", "input": {**SPEC.to_dict(), "code": "rm -rf /"}}
    # Its own thread: the browser tests' sync playwright keeps an event loop in the main thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        result = pool.submit(asyncio.run, handler_module.handler(job)).result()
    assert set(result) == {"error"} and result["error"].startswith(remote.INVALID_PREFIX)
    assert "code" in result["error"]


def test_progress_reporter_numbers_updates_and_keeps_every_ended_epoch(handler_module, monkeypatch):
    sent = []
    reporter = handler_module.ProgressReporter({"id": "job-2"}, SPEC, send=lambda job, payload: sent.append(payload))
    monkeypatch.setattr(handler_module, "PROGRESS_INTERVAL_S", 3600.0)
    reporter.started()
    reporter(EpochProgress(3, 1, 4, 0, 10))
    reporter(EpochProgress(3, 1, 4, 5, 10, loss=0.9))  # throttled
    reporter(EpochEnded(3, 1, 4, {"val_accuracy": 0.5}))
    reporter(EpochEnded(3, 2, 4, {"val_accuracy": 0.6}))
    assert [p["seq"] for p in sent] == [1, 2, 3, 4]
    assert all(remote.is_progress(p) and p["trial"] == 3 for p in sent)
    assert [e["epoch"] for e in sent[-1]["epochs"]] == [1, 2]
    assert sent[2]["epochs"] == [{"epoch": 1, "metrics": {"val_accuracy": 0.5}}]  # earlier payloads unchanged


def test_simulated_trial_stops_after_the_batch_in_flight(handler_module):
    stop = handler_module.StopFlag()
    events = []

    def publish(event):
        events.append(event)
        if isinstance(event, EpochProgress) and event.epoch == 2 and event.batch == 3:
            stop.set()

    outcome = handler_module.simulate_trial(SPEC, publish, stop, epoch_s=0.05)
    assert outcome.state == "stopped" and outcome.epochs_run == 1 and outcome.extra == {"simulated": True}
    assert stop.seen_set == 1
    assert max(e.batch for e in events if isinstance(e, EpochProgress) and e.epoch == 2) == 3


# ------------------------------------------------------------------ the image


def test_worker_requirements_match_the_tested_lock_and_the_dockerfile_copies_what_exists():
    root = HANDLER.parents[1]
    lock = dict(line.split("==", 1) for line in (root / "requirements.lock").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    lock = {k.lower(): v for k, v in lock.items()}
    pins = [line.split("==", 1) for line in (HANDLER.parent / "requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    assert pins and all(lock.get(name.lower()) == version for name, version in pins), pins
    dockerfile = (HANDLER.parent / "Dockerfile").read_text()
    copied = [word for line in dockerfile.splitlines() if line.startswith("COPY ") for word in line.split()[1:-1]]
    assert set(copied) == {"runpod_image/requirements.txt", "pyproject.toml", "README.md", "hpo_nb",
                           "runpod_image/handler.py"}
    assert all((root / source).exists() for source in copied)
    assert 'CMD ["python3", "-u", "runpod_image/handler.py"]' in dockerfile


# ------------------------------------------------------------------ the CLI


def test_runpod_local_cli_serves_the_client_api_and_exits_cleanly_on_sigterm(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    import runpod

    proc = subprocess.Popen([sys.executable, "-m", "hpo_nb", "runpod-local", "--workers", "0", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "workers ready" in line:
                break
        url = next(w for line in lines for w in line.split() if w.startswith("http://127.0.0.1:"))
        endpoint = runpod.Endpoint("local", api_key="any")
        endpoint.rp_client.endpoint_url_base = url
        assert endpoint.health()["workers"] == {"idle": 0, "running": 0, "initializing": 0}
        job = endpoint.run({"input": {"dataset": "digits"}})
        assert job.status() == "IN_QUEUE"
        assert endpoint.purge_queue()["removed"] == 1 and job.status() == "CANCELLED"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)


def test_runpod_local_refuses_non_loopback_hosts():
    from hpo_nb.runpod_local import LoopbackEndpoint

    with pytest.raises(ConfigError, match="loopback"):
        LoopbackEndpoint(workers=0, host="0.0.0.0")
