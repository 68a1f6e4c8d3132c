"""`runtime.cpu_devices`: N replicas on a machine without GPUs (docs/distributed.md runs its commands with it).

conftest.py has already split the CPU into 2 logical devices, so 2 is accepted as is and any other N cannot be set
any more in this process (TF is initialised): a one-line ConfigError. The split itself before TF starts is what
`python train/<family>.py --config.runtime.cpu_devices=2` does (docs/performance.md, "Launch guide").
"""

import pytest
import tensorflow as tf

from tfvr.errors import ConfigError
from tfvr.training.config import RuntimeConfig
from tfvr.training.strategy import create_strategy


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="cpu_devices is ignored with a GPU")
def test_cpu_devices_gives_that_many_replicas():
    assert create_strategy(RuntimeConfig(strategy="auto", cpu_devices=2)).num_replicas_in_sync == 2
    assert create_strategy(RuntimeConfig(strategy="mirrored", cpu_devices=2)).num_replicas_in_sync == 2
    assert create_strategy(RuntimeConfig(strategy="auto")).num_replicas_in_sync == 1
    with pytest.raises(ConfigError, match="runtime.cpu_devices=3: TensorFlow was already initialised"):
        create_strategy(RuntimeConfig(cpu_devices=3))
    with pytest.raises(ConfigError, match="cpu_devices"):
        RuntimeConfig(cpu_devices=-1).validate()
