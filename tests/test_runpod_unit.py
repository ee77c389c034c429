"""RunPod pieces that need no worker process: options, the wire format, the worker's handler
coroutine, progress folding, the HTTP transport and back-off. (The job state machine:
tests/test_runpod_states.py; end to end: tests/test_runpod.py.)"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hpo_nb.errors import ConfigError
from hpo_nb.executors.base import TrialJob
from hpo_nb.executors.runpod import RunPodExecutor, check_options, wire
from hpo_nb.executors.runpod.executor import short_error
from hpo_nb.executors.runpod.tracking import Tracker
from hpo_nb.executors.runpod.transport import (HttpError, HttpTransport, NotFound, Rejected, Retryable, Unreachable,
                                               call_with_backoff)
from hpo_nb.progress import EpochEnded, EpochProgress
from hpo_nb.spec import TrialOutcome, TrialSpec

KEY = "rpa_UNITKEY_5f0c1d2e3b4a"
PARAMS = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_layers": 0, "batch_size": 64}
SPEC = TrialSpec(trial_number=3, dataset="digits", params=PARAMS, max_epochs=4, seed=7)


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def handler_module():
    from hpo_nb.executors.runpod import worker

    return worker


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
    assert settings_.endpoint_id == "from-env" and settings_.api_key.get_secret_value() == KEY


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


# ------------------------------------------------------------------ HTTP transport and back-off


@pytest.fixture
def http_endpoint():
    """A one-thread HTTP server answering scripted (code, headers, body) triples; it records
    each request's method, path and Authorization header."""
    answers, seen = [], []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            seen.append((self.command, self.path, self.headers.get("Authorization"), body))
            code, headers, data = answers.pop(0) if answers else (200, {}, {})
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k, v)
            payload = json.dumps(data).encode()
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    transport = HttpTransport("ep1", lambda: KEY, f"http://127.0.0.1:{server.server_address[1]}/v2/", timeout_s=5)
    try:
        yield transport, answers, seen
    finally:
        server.shutdown()
        server.server_close()


def test_http_transport_speaks_runpods_v2_api(http_endpoint):
    transport, answers, seen = http_endpoint
    answers.extend([(200, {}, {"id": "j1", "status": "IN_QUEUE"}), (200, {}, {"id": "j1", "status": "IN_PROGRESS"}),
                    (200, {}, {"id": "j1", "status": "CANCELLED"}), (200, {}, {"workers": {"idle": 1}})])
    assert transport.run({"dataset": "digits"}, {"executionTimeout": 1000}) == "j1"
    assert transport.status("j1")["status"] == "IN_PROGRESS"
    transport.cancel("j1")
    assert transport.health() == {"workers": {"idle": 1}}
    assert [(m, p) for m, p, _, _ in seen] == [("POST", "/v2/ep1/run"), ("GET", "/v2/ep1/status/j1"),
                                               ("POST", "/v2/ep1/cancel/j1"), ("GET", "/v2/ep1/health")]
    assert seen[0][3] == {"input": {"dataset": "digits"}, "policy": {"executionTimeout": 1000}}
    assert {auth for _, _, auth, _ in seen} == {f"Bearer {KEY}"}
    assert KEY not in repr(transport)


@pytest.mark.parametrize("code, headers, error, match", [
    (401, {}, Rejected, "rejected the API key \\(401 Unauthorized\\)"),
    (403, {}, Rejected, "403 Forbidden"),
    (404, {}, NotFound, "404"),
    (429, {"Retry-After": "0.25"}, Retryable, "HTTP 429"),
    (503, {}, Retryable, "HTTP 503"),
    (400, {}, HttpError, "HTTP 400"),
])
def test_http_faults_become_typed_errors_without_the_key(http_endpoint, code, headers, error, match):
    transport, answers, _ = http_endpoint
    answers.append((code, headers, {"error": "no"}))
    with pytest.raises(error, match=match) as info:
        transport.status("j1")
    assert KEY not in str(info.value)
    if code == 429:
        assert info.value.retry_after == 0.25


def test_a_closed_port_is_retryable():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(Retryable, match="ConnectionError"):
        HttpTransport("ep1", lambda: KEY, f"http://127.0.0.1:{port}/v2").health()


def test_backoff_retries_retryable_faults_then_succeeds_or_gives_up():
    faults = [Retryable("HTTP 429", retry_after=0.01), Retryable("HTTP 503"), Retryable("ConnectionError")]
    calls = []

    def call():
        calls.append(1)
        if faults:
            raise faults.pop(0)
        return "ok"

    assert call_with_backoff(call, retries=6, max_backoff_s=0.01) == "ok" and len(calls) == 4
    with pytest.raises(Unreachable, match="unreachable \\(HTTP 503\\)"):
        call_with_backoff(lambda: (_ for _ in ()).throw(Retryable("HTTP 503")), retries=2, max_backoff_s=0.01)
    with pytest.raises(Rejected):  # not retryable: raised at once
        call_with_backoff(lambda: (_ for _ in ()).throw(Rejected("401")), retries=2, max_backoff_s=10)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Unreachable):  # a set stop event ends the pauses at once
        call_with_backoff(lambda: (_ for _ in ()).throw(Retryable("HTTP 503")), retries=5, max_backoff_s=60, stop=stop)


def test_redact_masks_the_key_and_the_endpoint_id():
    ex = executor()
    assert KEY not in ex.settings.redact(f"boom {KEY}")
    assert "unit-endpoint-id" not in ex.settings.redact("x/unit-endpoint-id/y")


def test_sdk_error_json_is_shortened_to_its_message():
    raw = json.dumps({"error_type": "<class 'ValueError'>", "error_message": "bad thing",
                      "error_traceback": "Traceback ...\n" * 50})
    assert short_error(raw) == "<class 'ValueError'>: bad thing"


# ------------------------------------------------------------------ progress folding


def test_out_of_order_cumulative_progress_becomes_each_event_once():
    events, reports = [], []
    job = TrialJob(spec=SPEC, publish=events.append, stop=threading.Event(),
                   report=lambda epoch, value: reports.append((epoch, value)) or epoch == 3)
    tracker = Tracker(job, events.append)

    def payload(seq, epoch, batch, ended):
        return wire.progress_payload(seq, "w1", SPEC.trial_number, {
            "epoch": epoch, "total_epochs": 4, "batch": batch, "total_batches": 10, "loss": 0.5, "accuracy": 0.6,
            "epochs": [{"epoch": e, "metrics": {"val_accuracy": e / 10, "loss": 1.0}} for e in range(1, ended + 1)]})

    assert tracker.follow(payload(5, 3, 4, 2)) is False  # epochs 1 and 2 ended, epoch 3 running
    assert tracker.follow(payload(4, 2, 9, 1)) is False  # late, older update: ignored
    assert tracker.follow({"status": "nonsense"}) is False
    assert tracker.follow(payload(7, 4, 0, 3)) is True  # epoch 3 ended -> pruner says stop
    ended = [e.epoch for e in events if isinstance(e, EpochEnded)]
    assert ended == [1, 2, 3]
    assert reports == [(1, 0.1), (2, 0.2), (3, 0.3)]
    progress = [(e.epoch, e.batch) for e in events if isinstance(e, EpochProgress)]
    assert progress == [(3, 4), (4, 0)]
    outcome = tracker.client_outcome("pruned", started=0.0)
    assert outcome.state == "pruned" and outcome.epochs_run == 3 and outcome.accuracy == pytest.approx(0.3)
    assert outcome.history["val_accuracy"] == [0.1, 0.2, 0.3]


def test_epochs_that_end_after_the_last_poll_are_published_from_the_result():
    """A job can finish between two polls: its last epochs then arrive only in the outcome."""
    events, reports = [], []
    job = TrialJob(spec=SPEC, publish=events.append, stop=threading.Event(),
                   report=lambda epoch, value: reports.append((epoch, value)) or False)
    tracker = Tracker(job, events.append)
    tracker.follow(wire.progress_payload(1, "w1", SPEC.trial_number, {
        "epoch": 2, "total_epochs": 4, "batch": 3, "total_batches": 10,
        "epochs": [{"epoch": 1, "metrics": {"val_accuracy": 0.1, "loss": 1.0}}]}))
    history = {"loss": [1.0, 0.8, 0.6, 0.5], "val_accuracy": [0.1, 0.2, 0.3, 0.4]}
    result = {"outcome": TrialOutcome(SPEC.trial_number, "complete", accuracy=0.4, history=history,
                                      epochs_run=4).to_dict()}
    outcome = tracker.completed(result)
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
    data = wire.encode_spec(spec)
    assert len(json.dumps(data, separators=(",", ":"))) < wire.MAX_INPUT_BYTES
    assert wire.decode_input(json.loads(json.dumps(data))) == spec


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
        # optional fields (None in the base: health_weights, devices, retry_of) take a value of
        # another type legitimately (an int retry_of is valid), so they are not "wrong types"
        name = draw(_field.filter(lambda f: base[f] is not None))
        value = draw(_json.filter(lambda v: type(v) is not type(base[name]) and not (
            isinstance(base[name], float) and type(v) is int)))
        return {**base, name: value}
    if kind == "extra_key":
        return {**base, draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in base)): draw(_json)}
    if kind == "dataset":
        return {**base, "dataset": draw(st.text(max_size=40).filter(lambda n: n not in wire.datasets.names()))}
    if kind == "huge":
        name = draw(st.sampled_from(["trial_number", "max_epochs", "seed"]))
        return {**base, name: draw(st.integers(min_value=2**31, max_value=10**30) | st.integers(max_value=-1))}
    return {**base, "params": {**PARAMS, draw(st.sampled_from(["filters", "conv_blocks", "batch_size", "bogus"])):
                               draw(st.integers(min_value=10**5) | st.text(max_size=5) | st.floats(allow_nan=True))}}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bad_inputs())
def test_invalid_inputs_are_rejected_with_a_reason_never_an_exception(raw):
    problem = wire.validation_problem(raw)
    assert problem is not None and problem.startswith(wire.INVALID_PREFIX) and len(problem) <= 600
    with pytest.raises(ValueError, match=wire.INVALID_PREFIX):
        wire.decode_input(raw)


# ------------------------------------------------------------------ the handler, in-process


def test_handler_turns_invalid_input_into_an_error_result(handler_module):
    job = {"id": "job-1", "input": {**SPEC.to_dict(), "code": "rm -rf /"}}
    # Its own thread: the browser tests' sync playwright keeps an event loop in the main thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        result = pool.submit(asyncio.run, handler_module.handler(job)).result()
    assert set(result) == {"error"} and result["error"].startswith(wire.INVALID_PREFIX)
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
    assert all(wire.is_progress(p) and p["trial"] == 3 for p in sent)
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
    root, image = ROOT, ROOT / "runpod_image"
    lock = dict(line.split("==", 1) for line in (root / "requirements.lock").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    lock = {k.lower(): v for k, v in lock.items()}
    pins = [line.split("==", 1) for line in (image / "requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    assert pins and all(lock.get(name.lower()) == version for name, version in pins), pins
    dockerfile = (image / "Dockerfile").read_text()
    copied = [word for line in dockerfile.splitlines() if line.startswith("COPY ") for word in line.split()[1:-1]]
    assert set(copied) == {"runpod_image/requirements.txt", "pyproject.toml", "README.md", "hpo_nb",
                           "runpod_image/handler.py"}
    assert all((root / source).exists() for source in copied)
    assert 'CMD ["python3", "-u", "runpod_image/handler.py"]' in dockerfile
    assert "from hpo_nb.executors.runpod.worker import main" in (image / "handler.py").read_text()


def test_the_worker_runs_from_the_package_outside_the_checkout(tmp_path):
    """What an installed wheel offers: ``python -m hpo_nb.executors.runpod.worker`` runs a job
    (the SDK's ``--test_input`` mode; benchmark mode, so no TensorFlow) from any folder."""
    job = {"input": {"trial_number": 0, "dataset": "digits", "params": {"filters": 8}, "max_epochs": 2}}
    env = {**os.environ, "HPO_NB_SIMULATE_EPOCH_S": "0.02", "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
           "RUNPOD_SKIP_GPU_CHECK": "true", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "hpo_nb.executors.runpod.worker", "--test_input", json.dumps(job)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert '"simulated": true' in (run.stdout + run.stderr).replace("'", '"').lower()


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
    from hpo_nb.executors.runpod.loopback import WORKER_MODULE, LoopbackEndpoint

    with pytest.raises(ConfigError, match="loopback"):
        LoopbackEndpoint(workers=0, host="0.0.0.0")
    assert LoopbackEndpoint(workers=0).command[-2:] == ["-m", WORKER_MODULE]  # the worker inside the package
