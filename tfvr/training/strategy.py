"""Choosing the tf.distribute strategy from `RuntimeConfig`, and who the chief is.

- "auto" (default): `MultiWorkerMirroredStrategy` when the `TF_CONFIG` environment variable names more than one
  worker (each process is started with its own `task.index`), else `MirroredStrategy` over the visible GPUs, or
  the CPU when there is none.
- "mirrored": `MirroredStrategy(devices)` (`runtime.devices`, comma-separated; empty: all visible).
- "one_device": `OneDeviceStrategy(devices or "/gpu:0" if a GPU is visible else "/cpu:0")`.
- "multi_worker": `MultiWorkerMirroredStrategy` (TF_CONFIG must be set).
- `runtime.cpu_devices=N` (N > 1, no GPU visible): the CPU is split into N logical devices first, and "auto" /
  "mirrored" with no `runtime.devices` mirror over all of them (N replicas on one machine without GPUs).

A MultiWorkerMirroredStrategy must be created before TensorFlow runs anything else in the process: the trainer
creates it first thing. Keras `fit` does not work under it (platform notes), tfvr's loop does.
The chief (worker 0, or the single process) writes checkpoints, summaries and files into the workdir; other
workers write their checkpoints to a scratch folder that is deleted right away.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from tfvr.errors import ConfigError
from tfvr.training.config import RuntimeConfig

__all__ = ["create_strategy", "mirrored_strategy", "tf_config_workers", "is_chief", "worker_index"]

_KEY_STEP = 100_000
_key_base = 0


def mirrored_strategy(devices=None) -> tf.distribute.MirroredStrategy:
    """`tf.distribute.MirroredStrategy(devices)` with collective keys of its own.

    Every MirroredStrategy in a process starts its collective group/instance keys at the same numbers
    (`_collective_key_base` is a class attribute that TF never changes), and the runtime caches the parameters of
    a collective by key: a second strategy in the same process whose all-reduces have other shapes then fails with
    "Shape mismatch in the collective instance 100". Each strategy made here gets its own key range.
    """
    global _key_base
    _key_base += _KEY_STEP
    cls = tf.distribute.MirroredStrategy
    old = cls._collective_key_base
    cls._collective_key_base = _key_base
    try:
        return cls(devices)
    finally:
        cls._collective_key_base = old


def tf_config_workers() -> int:
    """Number of workers TF_CONFIG names (0 when unset)."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return 0
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({e.msg})") from None
    cluster = cfg.get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _devices(runtime: RuntimeConfig) -> list[str] | None:
    devs = [d.strip() for d in runtime.devices.split(",") if d.strip()]
    return devs or None


def _split_cpu(n: int) -> None:
    """Splits the CPU into `n` logical devices (a no-op when it already has n); must run before TF initialises."""
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current is not None and len(current) == n:
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:
        raise ConfigError(f"runtime.cpu_devices={n}: TensorFlow was already initialised in this process with "
                          f"{len(tf.config.list_logical_devices('CPU'))} CPU device(s)") from None


def create_strategy(runtime: RuntimeConfig) -> tf.distribute.Strategy:
    kind = runtime.strategy
    split = runtime.cpu_devices > 1 and not tf.config.list_physical_devices("GPU")
    if split:
        _split_cpu(runtime.cpu_devices)
    if kind == "auto":
        kind = "multi_worker" if tf_config_workers() > 1 else "mirrored"
    if kind == "multi_worker":
        if tf_config_workers() < 1:
            raise ConfigError("runtime.strategy=multi_worker needs TF_CONFIG naming the cluster's workers")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "mirrored":
        devs = _devices(runtime)
        if devs is None and not tf.config.list_physical_devices("GPU"):
            devs = [d.name for d in tf.config.list_logical_devices("CPU")] if split else ["/cpu:0"]
        return mirrored_strategy(devs)
    if kind == "one_device":
        devs = _devices(runtime)
        dev = devs[0] if devs else ("/gpu:0" if tf.config.list_physical_devices("GPU") else "/cpu:0")
        return tf.distribute.OneDeviceStrategy(dev)
    raise ConfigError(f"runtime.strategy: unknown strategy {runtime.strategy!r} "
                      "(expected auto, mirrored, one_device or multi_worker)")


def worker_index(strategy: tf.distribute.Strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return 0
    if resolver.task_type == "chief":
        return 0
    return int(resolver.task_id or 0) + (1 if "chief" in resolver.cluster_spec().as_dict() else 0)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and int(resolver.task_id or 0) == 0 and \
        "chief" not in resolver.cluster_spec().as_dict()
