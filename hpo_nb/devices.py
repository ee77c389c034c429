"""Devices for local trials: which ones MirroredStrategy uses, how concurrent trials share
them (disjoint groups), and splitting a CPU into logical devices for demos and tests."""

from __future__ import annotations

import logging
import os
from typing import Any

from .errors import ConfigError

log = logging.getLogger("hpo_nb")


def split_cpu(n: int = 2) -> list[str]:
    """Split the CPU into ``n`` logical devices so MirroredStrategy has replicas without GPUs.

    Must run before TensorFlow initializes its devices (right after ``import tensorflow``,
    before any op or model). Called later, it raises: MirroredStrategy over devices that do not
    exist would otherwise hang silently. Returns the device names ("/cpu:0", ...).
    """
    if n < 1:
        raise ConfigError(f"split_cpu needs n >= 1, not {n}.")
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == n:
        return [f"/cpu:{i}" for i in range(n)]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError as exc:
        raise ConfigError(
            "split_cpu() ran after TensorFlow had initialized its devices. Call "
            "hpo_nb.split_cpu(n) first thing in a fresh process or kernel (restart the kernel), "
            "before any model, dataset or tensor is created."
        ) from exc
    return [f"/cpu:{i}" for i in range(n)]


def available_devices() -> tuple[list[str], list[str]]:
    """(GPU logical device names, CPU logical device names)."""
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    return gpus, cpus


def plan_device_groups(distribution: str | None, devices: list[str] | None, gpus_per_trial: int | None,
                       concurrency: int) -> list[tuple[str, ...]] | None:
    """Disjoint device groups, one per concurrent trial; None means 'the default device'."""
    if distribution is None and devices is None and gpus_per_trial is None:
        return None
    if gpus_per_trial is not None and (not isinstance(gpus_per_trial, int) or gpus_per_trial < 1):
        raise ConfigError(f"gpus_per_trial must be an integer >= 1, not {gpus_per_trial!r}.")
    if devices is not None and (not isinstance(devices, (list, tuple)) or not all(isinstance(d, str) for d in devices)):
        raise ConfigError("devices must be a list of device names such as ['/gpu:0', '/gpu:1'].")
    gpus, cpus = available_devices()
    if devices is None:
        devices = gpus or (cpus if len(cpus) > 1 else [])
    known = {_norm(d) for d in gpus + cpus}
    unknown = [d for d in devices if _norm(d) not in known]
    if unknown:
        raise ConfigError(f"unknown devices {unknown}; this machine has {gpus + cpus}.")
    if not devices:
        log.warning("distribution=%r: no GPUs and no logical CPU devices; training on one device. "
                    "Call hpo_nb.split_cpu(2) at the start of the process to try mirroring on CPU.", distribution)
        return None
    per_trial = gpus_per_trial or (len(devices) // concurrency if distribution == "mirrored" else 1)
    if per_trial < 1 or per_trial * concurrency > len(devices):
        raise ConfigError(
            f"concurrency={concurrency} trials x {per_trial} devices per trial needs {per_trial * concurrency} "
            f"devices, but {len(devices)} are available ({devices}). Lower concurrency or gpus_per_trial."
        )
    if distribution != "mirrored" and per_trial > 1:
        raise ConfigError("more than one device per trial needs distribution='mirrored'.")
    return [tuple(devices[i * per_trial:(i + 1) * per_trial]) for i in range(concurrency)]


def _norm(name: str) -> str:
    """'/job:localhost/replica:0/task:0/device:GPU:1' and '/gpu:1' compare equal."""
    tail = name.lower().rsplit("/", 1)[-1].replace("device:", "")
    return tail
