"""Shared test set-up.

TensorFlow is told to split the CPU into 2 logical devices before anything touches it, so distributed tests can
compare one step on 2 replicas with one step on 1 (`tests.helpers.two_cpu_strategy`). Tests that do not ask for a
strategy run on the default (single) device as usual.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
