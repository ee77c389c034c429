"""Devices: disjoint groups for concurrent trials, clear errors for impossible plans, and real
MirroredStrategy searches on a CPU split into two logical devices (in a subprocess, because
the split must happen before TensorFlow starts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpo_nb import Experiment
from hpo_nb.devices import plan_device_groups, remote_devices, short_name, worker_devices
from hpo_nb.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
GPUS4 = (["/gpu:0", "/gpu:1", "/gpu:2", "/gpu:3"], ["/cpu:0"])


def _disjoint(groups: list[tuple[str, ...]]) -> bool:
    flat = [d for g in groups for d in g]
    return len(flat) == len(set(flat))


@pytest.mark.parametrize("kwargs, expected", [
    (dict(distribution="mirrored", concurrency=1), [("/gpu:0", "/gpu:1", "/gpu:2", "/gpu:3")]),
    (dict(distribution="mirrored", concurrency=2), [("/gpu:0", "/gpu:1"), ("/gpu:2", "/gpu:3")]),
    (dict(distribution="mirrored", concurrency=3), [("/gpu:0",), ("/gpu:1",), ("/gpu:2",)]),
    (dict(distribution="mirrored", concurrency=1, gpus_per_trial=3), [("/gpu:0", "/gpu:1", "/gpu:2")]),
    (dict(distribution=None, concurrency=4, gpus_per_trial=1), [("/gpu:0",), ("/gpu:1",), ("/gpu:2",), ("/gpu:3",)]),
    (dict(distribution=None, concurrency=2, devices=["/GPU:3", "gpu:1"]), [("/gpu:3",), ("/gpu:1",)]),
    (dict(distribution="mirrored", concurrency=1, devices=["/job:localhost/replica:0/task:0/device:GPU:2", "/gpu:0"]),
     [("/gpu:2", "/gpu:0")]),
])
def test_concurrent_trials_get_disjoint_device_groups(kwargs, expected):
    groups = plan_device_groups(kwargs.pop("distribution"), kwargs.pop("devices", None),
                                kwargs.pop("gpus_per_trial", None), kwargs.pop("concurrency"), available=GPUS4)
    assert groups == expected and _disjoint(groups)


@pytest.mark.parametrize("args, words", [
    (("mirrored", None, 2, 3), "needs 6 devices, but 4 are available"),
    (("mirrored", None, None, 5), "needs 5 devices"),
    ((None, None, 2, 1), "needs distribution='mirrored'"),
    ((None, None, 1, 5), "needs 5 devices"),
    (("mirrored", ["/gpu:0", "/gpu:0"], None, 1), "more than once"),
    (("mirrored", ["/gpu:0", "/gpu:7"], None, 1), "unknown devices ['/gpu:7']"),
    (("mirrored", ["/cpu:0", "/cpu:1"], None, 1), "split_cpu(2)"),
    (("mirrored", "/gpu:0", None, 1), "list of device names"),
    (("mirrored", [], None, 1), "devices is empty"),
    (("mirrored", ["tpu-7"], None, 1), "not a device name"),
    (("mirrored", None, 0, 1), "gpus_per_trial must be an integer >= 1"),
    (("mirorred", None, None, 1), "distribution must be None or 'mirrored'"),
])
def test_impossible_device_plans_are_clear_errors(args, words):
    with pytest.raises(ConfigError) as err:
        plan_device_groups(*args, available=GPUS4)
    assert words in str(err.value)


def test_without_gpus_asking_for_them_fails_before_training_unless_the_cpu_was_split():
    """The README's multi-GPU examples on a machine without GPUs: a ConfigError that says what to
    do (it used to warn and train every trial on the one CPU device)."""
    no_gpu = ([], ["/cpu:0"])
    for args in (("mirrored", None, None, 1), (None, None, 1, 4), ("mirrored", None, 2, 2)):
        with pytest.raises(ConfigError, match=r"need GPUs, and this machine has none.*split_cpu"):
            plan_device_groups(*args, available=no_gpu)
    split = ([], ["/cpu:0", "/cpu:1"])
    assert plan_device_groups("mirrored", None, None, 1, available=split) == [("/cpu:0", "/cpu:1")]
    assert plan_device_groups(None, None, 1, 2, available=split) == [("/cpu:0",), ("/cpu:1",)]
    assert plan_device_groups(None, None, None, 3) is None  # nothing asked: TensorFlow's default device


@pytest.mark.slow
@pytest.mark.parametrize("options", [{"distribution": "mirrored"}, {"concurrency": 4, "gpus_per_trial": 1},
                                     {"distribution": "mirrored", "concurrency": 2, "gpus_per_trial": 2}])
def test_the_readmes_multi_gpu_examples_fail_before_training_without_gpus(options, tmp_path):
    """This test process has no GPU and an unsplit CPU (conftest): each README example refuses."""
    with pytest.raises(ConfigError, match="need GPUs, and this machine has none"):
        Experiment("digits", runs_dir=tmp_path, progress="none", **options)
    assert not any((tmp_path).rglob("models/*"))


def test_names_and_runpod_worker_devices():
    assert short_name("/job:localhost/replica:0/task:0/device:CPU:1") == "/cpu:1"
    assert short_name("GPU:12") == "/gpu:12"
    assert worker_devices(None) is None and worker_devices(1) is None
    assert worker_devices(2) == ("/gpu:0", "/gpu:1")


@pytest.mark.slow
def test_remote_workers_get_their_devices_through_the_spec():
    from hpo_nb.executors.runpod.wire import decode_input, encode_spec
    from hpo_nb.spec import TrialSpec
    from hpo_nb.training import train_trial

    assert remote_devices("mirrored", None, 2) == ("/gpu:0", "/gpu:1")  # gpus_per_trial = GPUs per worker
    assert remote_devices("mirrored", ["GPU:1", "/gpu:2"], None) == ("/gpu:1", "/gpu:2")
    assert remote_devices(None, None, 1) is None
    with pytest.raises(ConfigError, match="need distribution='mirrored'"):
        remote_devices(None, None, 2)
    with pytest.warns(UserWarning, match="gpus_per_trial=<GPUs per worker>"):
        assert remote_devices("mirrored", None, None) is None

    spec = TrialSpec(0, "digits", {"filters": 8, "conv_blocks": 1}, max_epochs=1,
                     devices=remote_devices("mirrored", None, 2))
    assert decode_input(encode_spec(spec)) == spec  # the job input carries the devices to the worker
    out = train_trial(spec)  # a worker without those GPUs fails the trial, clearly, instead of hanging
    assert out.state == "failed" and "no device ['/gpu:0', '/gpu:1']" in out.error


def test_experiment_rejects_impossible_device_settings_before_training(runs_dir):
    with pytest.raises(ConfigError, match="distribution='mirrored'"):
        Experiment("digits", n_trials=1, concurrency=2, gpus_per_trial=2, runs_dir=runs_dir, progress="none")
    with pytest.raises(ConfigError, match="unknown devices"):
        Experiment("digits", n_trials=1, distribution="mirrored", devices=["/gpu:0", "/gpu:1"], runs_dir=runs_dir,
                   progress="none")


def _python(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_split_cpu_after_tensorflow_started_is_a_clear_error():
    import tensorflow as tf

    import hpo_nb

    tf.config.list_logical_devices("CPU")  # TensorFlow is now initialized in this process (if it was not)
    with pytest.raises(ConfigError, match=r"split_cpu\(2\) was called after TensorFlow had initialized") as err:
        hpo_nb.split_cpu(2)
    assert "Restart the kernel" in str(err.value)
    assert hpo_nb.split_cpu(1) == ["/cpu:0"]  # asking for what is already so is fine


@pytest.mark.slow
def test_mirrored_search_on_two_logical_cpus(tmp_path):
    done = _python(str(ROOT / "tests" / "devices_worker.py"), str(tmp_path / "runs"))
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["split"] == ["/cpu:0", "/cpu:1"]

    mirrored, single = out["mirrored"], out["single"]
    assert all(r["state"] == "complete" and r["replicas"] == 2 and r["devices"] == "/cpu:0,/cpu:1" for r in mirrored)
    assert all(r["state"] == "complete" and r["replicas"] == 1 and r["devices"] == "" for r in single)
    # Diagnostics under mirroring: a per-epoch probe on a one-device copy (the train step's own
    # per-batch norms on one device).
    assert all(r["gradients"].startswith("probe batch") for r in mirrored), mirrored
    assert single[0]["gradients"] == "every training batch"
    # Same spec, same seed; the global batch doubles with two replicas (half the steps per epoch).
    acc_m, acc_s = mirrored[0]["accuracy"], single[0]["accuracy"]
    assert acc_m > 0.75 and acc_s > 0.75 and abs(acc_m - acc_s) < 0.1, (acc_m, acc_s)

    side = out["side_by_side"]  # concurrency=2, one device each: the two trials overlap, on different devices
    assert all(r["state"] == "complete" and r["replicas"] == 1 for r in side)
    assert sorted(r["devices"] for r in side) == ["/cpu:0", "/cpu:1"]
    assert side[0]["start"] < side[1]["end"] and side[1]["start"] < side[0]["end"]

    assert "split_cpu(3) was called after TensorFlow had initialized" in out["late_split"]
