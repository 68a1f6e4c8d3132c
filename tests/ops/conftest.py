"""$TFVR_TEST_DEVICE (e.g. /GPU:0, set by scripts/gpu_check.sh): every test in tests/ops runs inside
`tf.device(...)`, so the kernel parity tests exercise that device's kernels against the reference there."""

import os

import pytest


@pytest.fixture(autouse=True)
def _test_device():
    device = os.environ.get("TFVR_TEST_DEVICE")
    if not device:
        yield
        return
    import tensorflow as tf

    with tf.device(device):
        yield
