"""Helpers shared by the tests: where the golden files are, small factories."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# ../shared next to the checkout (CI clones main with shared/ beside it); TFVR_SHARED overrides.
SHARED = Path(os.environ.get("TFVR_SHARED", REPO.parent / "shared"))
GOLDEN = SHARED / "golden"
# Under CI (CI=true, as .ci/run is started) a missing prerequisite - golden file, shared data, the compiled
# kernel - fails the run instead of skipping: a green CI must mean every parity check ran.
STRICT = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str):
    """Skips the calling test with `reason`; under CI (`STRICT`) fails it instead."""
    if STRICT:
        pytest.fail(f"required under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def golden(name: str) -> dict[str, np.ndarray]:
    """Loads ../shared/golden/<name>.npz into a dict; skips the test (with the reason) if it is absent."""
    path = GOLDEN / f"{name}.npz"
    if not path.exists():
        unavailable(f"golden file {path} not found (set TFVR_SHARED to the shared/ folder)")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def golden_weights(arrays: dict[str, np.ndarray], prefix: str = "w/") -> dict[str, np.ndarray]:
    """The `w/<state_dict key>` entries of a golden file as float32, keyed by state-dict name."""
    return {k[len(prefix):]: v.astype(np.float32) for k, v in arrays.items() if k.startswith(prefix)}


def two_cpu_strategy():
    """MirroredStrategy over the 2 logical CPU devices that conftest.py creates.

    Each call gets collective keys of its own (`tfvr.training.strategy.mirrored_strategy`): two plain
    MirroredStrategy objects in one process share keys, and the second one's all-reduces fail with "Shape mismatch
    in the collective instance 100" when their shapes differ from the first one's.
    """
    from tfvr.training.strategy import mirrored_strategy

    return mirrored_strategy(["/cpu:0", "/cpu:1"])


def one_cpu_strategy():
    import tensorflow as tf

    return tf.distribute.OneDeviceStrategy("/cpu:0")
