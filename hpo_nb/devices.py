"""Devices for local trials: which ones MirroredStrategy uses, how concurrent trials share
them (disjoint groups), and splitting a CPU into logical devices for demos and tests.

Device names are kept short and lower-case ("/gpu:0", "/cpu:1"): TensorFlow accepts them in
``tf.device`` and ``MirroredStrategy``, they fit the RunPod job input, and they read well in
``exp.results``.
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import Sequence

from .errors import ConfigError
from .values import check_int, is_int

log = logging.getLogger("hpo_nb")

_NAME = re.compile(r"(?:^|/)(?:device:)?(gpu|cpu):(\d+)$", re.IGNORECASE)
_SPLIT_HINT = ("To mirror on a machine without GPUs, call hpo_nb.split_cpu(2) first thing in a fresh "
               "process or kernel, before anything else touches TensorFlow.")


def split_cpu(n: int = 2) -> list[str]:
    """Split the CPU into ``n`` logical devices so MirroredStrategy has replicas without GPUs.

    Must run before TensorFlow initializes its devices (right after ``import tensorflow``,
    before any op, model or dataset). Called later, it raises ``ConfigError``: without the
    split, MirroredStrategy over "/cpu:0", "/cpu:1" reports 2 replicas and then hangs in fit.
    Calling it again with the same ``n`` is harmless.

    Args:
        n: logical CPU devices to create, >= 1.

    Returns:
        list[str]: their names, "/cpu:0" .. "/cpu:<n-1>" (for ``Experiment(devices=...)``).

    Raises:
        ConfigError: ``n`` is not an integer >= 1, or TensorFlow already initialized its devices
            with another split.
    """
    if not is_int(n) or n < 1:
        raise ConfigError(f"split_cpu needs an integer n >= 1, not {n!r}.")
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    names = [f"/cpu:{i}" for i in range(n)]
    current = tf.config.get_logical_device_configuration(cpu)
    if (current is not None and len(current) == n) or (current is None and n == 1):
        return names  # already so (one device is what an unsplit CPU is)
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError as exc:
        have = len(current) if current else 1
        raise ConfigError(
            f"split_cpu({n}) was called after TensorFlow had initialized its devices (this process has "
            f"{have} CPU device{'s' if have != 1 else ''}). Restart the kernel or process and call "
            f"hpo_nb.split_cpu({n}) first, before any model, dataset, tensor or Experiment is created."
        ) from exc
    return names


def short_name(name: str) -> str:
    """'/job:localhost/replica:0/task:0/device:GPU:1', 'GPU:1' and '/gpu:1' -> '/gpu:1'."""
    match = _NAME.search(name.strip())
    if not match:
        raise ConfigError(f"{name!r} is not a device name; use names such as '/gpu:0' or '/cpu:1'.")
    return f"/{match.group(1).lower()}:{int(match.group(2))}"


def available_devices() -> tuple[list[str], list[str]]:
    """(GPU, CPU) logical device names of this process. Initializes TensorFlow's devices."""
    import tensorflow as tf

    gpus = [short_name(d.name) for d in tf.config.list_logical_devices("GPU")]
    cpus = [short_name(d.name) for d in tf.config.list_logical_devices("CPU")]
    return gpus, cpus


def default_devices(gpus: Sequence[str], cpus: Sequence[str]) -> list[str]:
    """What ``distribution='mirrored'`` mirrors over when ``devices`` is not given: every GPU;
    without GPUs, the logical CPU devices if the CPU was split; else nothing (one device)."""
    if gpus:
        return list(gpus)
    return list(cpus) if len(cpus) > 1 else []


def plan_device_groups(distribution: str | None, devices: Sequence[str] | None, gpus_per_trial: int | None,
                       concurrency: int,
                       available: tuple[Sequence[str], Sequence[str]] | None = None) -> list[tuple[str, ...]] | None:
    """Disjoint device groups, one per concurrent trial, or None for 'TensorFlow's default device'.

    ``distribution='mirrored'`` mirrors each trial over its group (``gpus_per_trial`` devices;
    default: the devices split evenly over ``concurrency``). Without it, ``gpus_per_trial=1`` or
    an explicit ``devices`` list pins each trial to one device. Impossible combinations raise
    ``ConfigError`` before anything trains. ``available`` = (gpus, cpus) is for tests.
    """
    if distribution not in (None, "mirrored"):
        raise ConfigError(f"distribution must be None or 'mirrored', not {distribution!r}.")
    _check_gpus_per_trial(gpus_per_trial)
    if devices is not None:
        if isinstance(devices, str) or not isinstance(devices, Sequence) or not all(isinstance(d, str) for d in devices):
            raise ConfigError("devices must be a list of device names such as ['/gpu:0', '/gpu:1'].")
        if not devices:
            raise ConfigError("devices is empty; leave it out (None) to use every GPU.")
    if distribution is None and devices is None and gpus_per_trial is None:
        return None
    if distribution is None and gpus_per_trial is not None and gpus_per_trial > 1:
        raise ConfigError(f"gpus_per_trial={gpus_per_trial} puts several devices in one trial, which needs "
                          "distribution='mirrored'.")

    gpus, cpus = available if available is not None else available_devices()
    gpus, cpus = [short_name(d) for d in gpus], [short_name(d) for d in cpus]
    if devices is not None:
        pool = [short_name(d) for d in devices]
        duplicates = sorted({d for d in pool if pool.count(d) > 1})
        if duplicates:
            raise ConfigError(f"devices lists {duplicates} more than once; each device can serve one trial.")
        unknown = [d for d in pool if d not in gpus + cpus]
        if unknown:
            hint = f" {_SPLIT_HINT}" if any(d.startswith("/cpu") for d in unknown) else ""
            raise ConfigError(f"unknown devices {unknown}: this process has {gpus + cpus}.{hint}")
    else:
        pool = default_devices(gpus, cpus)
        if not pool:  # asked for GPUs on a machine with none: refuse rather than train on one CPU device
            raise ConfigError(
                f"distribution={distribution!r}, gpus_per_trial={gpus_per_trial!r} need GPUs, and this machine "
                f"has none (only {cpus}). Leave both out to train on the CPU, run where GPUs are, or try the "
                f"mirrored path on CPU: {_SPLIT_HINT}")

    per_trial = gpus_per_trial or (len(pool) // concurrency if distribution == "mirrored" else 1)
    if per_trial < 1 or per_trial * concurrency > len(pool):
        per = max(per_trial, 1)
        raise ConfigError(
            f"concurrency={concurrency} trials x {per} device{'s' if per > 1 else ''} per trial needs "
            f"{per * concurrency} devices, but {len(pool)} {'is' if len(pool) == 1 else 'are'} available ({pool}). "
            "Lower concurrency or gpus_per_trial, or name more devices."
        )
    if distribution == "mirrored" and per_trial == 1:
        log.warning("distribution='mirrored' with one device per trial (%d devices, concurrency=%d): "
                    "trials run side by side, each on its own device, without mirroring", len(pool), concurrency)
    groups = [tuple(pool[i * per_trial:(i + 1) * per_trial]) for i in range(concurrency)]
    unused = pool[per_trial * concurrency:]
    if unused:
        log.info("devices %s stay unused (concurrency=%d x %d per trial)", unused, concurrency, per_trial)
    return groups


def trial_devices(devices: Sequence[str] | None) -> tuple[str, ...] | None:
    """A spec's devices, checked where the trial runs (a local thread or a RunPod worker): a
    missing device would make MirroredStrategy hang, so it fails the trial with a clear reason."""
    if not devices:
        return None
    names = tuple(short_name(d) for d in devices)
    gpus, cpus = available_devices()
    missing = [d for d in names if d not in gpus + cpus]
    if missing:
        hint = f" {_SPLIT_HINT}" if any(d.startswith("/cpu") for d in missing) else ""
        raise ConfigError(f"this machine has no device {missing} (it has {gpus + cpus}).{hint}")
    return names


def _check_gpus_per_trial(gpus_per_trial: object) -> None:
    if gpus_per_trial is not None:
        check_int("gpus_per_trial", gpus_per_trial, 1)


def remote_devices(distribution: str | None, devices: Sequence[str] | None,
                   gpus_per_trial: int | None) -> tuple[str, ...] | None:
    """``TrialSpec.devices`` for trials on remote workers (RunPod), where one trial is one worker:
    ``distribution='mirrored'`` with ``gpus_per_trial=N`` (the endpoint's GPUs per worker) mirrors
    over "/gpu:0".."/gpu:N-1", or over an explicit ``devices`` list. Nothing is checked against this
    machine; the worker checks, and fails the trial with a clear reason if a device is missing."""
    _check_gpus_per_trial(gpus_per_trial)
    if distribution is None:
        if devices or (gpus_per_trial or 1) > 1:
            raise ConfigError("on remote workers, devices / gpus_per_trial > 1 need distribution='mirrored'.")
        return None
    if devices:
        return tuple(short_name(d) for d in devices)
    if not gpus_per_trial:
        message = ("distribution='mirrored' on remote workers needs gpus_per_trial=<GPUs per worker> (the "
                   "endpoint's GPU count); each trial trains on one GPU.")
        warnings.warn(message, UserWarning, stacklevel=3)
        log.warning(message)
    return worker_devices(gpus_per_trial)


def worker_devices(gpus_per_worker: int | None) -> tuple[str, ...] | None:
    """The ``TrialSpec.devices`` that mirror a trial over every GPU of a ``gpus_per_worker``-GPU
    RunPod worker (None for one GPU: nothing to mirror)."""
    if gpus_per_worker is None or gpus_per_worker <= 1:
        return None
    return tuple(f"/gpu:{i}" for i in range(gpus_per_worker))
