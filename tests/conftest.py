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


import pytest  # noqa: E402

from tests.helpers import tiny_run  # noqa: E402

# STTN-R's 2-step train-script run at tiny sizes (tests/models/sttn_restore/test_task.py), shared with the console /
# TensorBoard checks (tests/training/test_console_tensorboard.py): one run of `python train/sttn.py` per session.
STTN_RESTORE_TINY = tiny_run(data__crop_size=16, model__unet_feat=4, model__unet_max_feat=8, model__num_feat=4,
                             model__num_blocks=1, trainer__eval_every=1)


@pytest.fixture(scope="session")
def sttn_restore_run(tmp_path_factory):
    """`python train/sttn.py --flagfile=train/configs/sttn_denoise_demo.flags` for 2 steps on a fresh synthetic
    cache, in a user's environment (no TF_CPP_MIN_LOG_LEVEL): a `tests.helpers.TrainRun` (read only), made once
    per session (`once_per_session`: one run whichever workers its two test files land on)."""
    from tests.helpers import once_per_session, run_train_script, train_run_in

    root, proc = once_per_session(
        tmp_path_factory, "sttn_restore_run",
        lambda folder: run_train_script("sttn.py", "sttn_denoise_demo.flags", STTN_RESTORE_TINY, folder).proc)
    return train_run_in(root, proc)


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory):
    """`python -m tests.training.toy_train` (the toy task's train script) for 3 steps with EMA 0.5, a checkpoint at
    steps 2 and 3, evaluation and export; model.features=6 on the command line beats the flagfile. Returns
    (workdir, the finished process). tests/cli/test_export.py checks what it wrote; tests/reliability/test_export.py
    exports from it (read only). Made once per session (`tests.helpers.once_per_session`)."""
    import subprocess

    from tests.helpers import REPO, once_per_session, toy_flags

    def make(tmp):
        (tmp / "toy.flags").write_text(toy_flags(
            trainer__num_steps=3, trainer__checkpoint_every=2, trainer__image_every=3, trainer__ema_decay=0.5,
            trainer__export=True, trainer__eval_at_end=True, optim__learning_rate="1e-2", model__features=4))
        proc = subprocess.run([sys.executable, "-m", "tests.training.toy_train", f"--flagfile={tmp / 'toy.flags'}",
                               f"--workdir={tmp / 'run'}", "--config.model.features=6"], cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    tmp, proc = once_per_session(tmp_path_factory, "toy_run", make)
    w = tmp / "run"
    assert f"exported {w / 'export'}" in proc.stdout
    return w, proc
