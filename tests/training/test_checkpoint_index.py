"""Checkpoints hold every variable of every model (`checkpoints.variable_index`), also those of layers kept in a
Python list, which Keras 3's `TrackedList` hides from `tf.train.Checkpoint`; checkpoints written before the index
are still read by the trainer and refused by `restore_models` when they lack model variables."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvr.errors import UserError
from tfvr.models.sttn_restore import STTNRestore
from tfvr.training import checkpoints as C


def _model(seed):
    keras.utils.set_random_seed(seed)
    m = STTNRestore(num_frames=3, unet_feat=4, unet_depth=2, unet_max_feat=8, num_feat=4, num_blocks=2)
    m(np.zeros((1, 3, 8, 8, 3), np.float32))
    for i, v in enumerate(m.variables):  # zero-initialised heads too: every variable distinct from a fresh one
        v.assign(np.random.default_rng(seed * 100 + i).normal(0, 0.1, v.shape).astype(np.float32))
    return m


def _same(a, b):
    return [bool(np.array_equal(x.numpy(), y.numpy())) for x, y in zip(a.variables, b.variables)]


def test_a_run_checkpoint_restores_every_model_variable(tmp_path):
    src, dst = _model(1), _model(2)
    path = C.Checkpointer(str(tmp_path / "new"), C.checkpoint_objects({"sttn": src})).save(1)
    ckpt = C.Checkpointer(str(tmp_path / "new"), C.checkpoint_objects({"sttn": dst}))
    ckpt.restore(path)
    assert not ckpt.predates_index
    assert all(_same(src, dst)), f"{_same(src, dst).count(False)} of {len(src.variables)} variables not restored"
    # the model object alone (what a checkpoint held before the index) misses the list-held layers
    old = tf.train.Checkpoint(model_sttn=src).save(str(tmp_path / "old" / "ckpt"))
    bare = _model(3)
    tf.train.Checkpoint(model_sttn=bare).read(old).expect_partial()
    assert 0 < _same(src, bare).count(True) < len(src.variables)


def test_a_checkpoint_from_before_the_index(tmp_path, caplog):
    src = _model(1)
    opt = keras.optimizers.Adam(1e-3)
    opt.build(src.trainable_variables)
    # what the trainer wrote before: the model object and its optimizer (which holds the trainable variables)
    old = tf.train.Checkpoint(model_sttn=src, optimizer_main=opt).save(str(tmp_path / "ckpt"))
    dst = _model(2)
    opt2 = keras.optimizers.Adam(1e-3)
    opt2.build(dst.trainable_variables)
    ckpt = C.Checkpointer(str(tmp_path / "resume"), C.checkpoint_objects({"sttn": dst}, optimizers={"main": opt2}))
    with caplog.at_level(logging.WARNING, logger="tfvr.training"):
        ckpt.restore(old)  # the trainer resumes it (no CheckpointMismatch) ...
    assert ckpt.predates_index and "older tfvr" in caplog.text
    assert all(_same(src, dst))  # ... every variable came back through the optimizer state
    # restore_models has no optimizer: it refuses rather than hand back random layers
    with pytest.raises(UserError, match=r"holds \d+ of the \d+ variables of model 'sttn'.*resume the run"):
        C._check_old_checkpoint(old, {"sttn": _model(3)}, ema_complete=False)
    C._check_old_checkpoint(old, {"sttn": _model(3)}, ema_complete=True)  # EMA shadows cover trainable ones
    # a real mismatch is still one
    other = STTNRestore(num_frames=3, unet_feat=4, unet_depth=2, unet_max_feat=8, num_feat=6, num_blocks=2)
    other(np.zeros((1, 3, 8, 8, 3), np.float32))
    new = C.Checkpointer(str(tmp_path / "n"), C.checkpoint_objects({"sttn": src})).save(1)
    with pytest.raises((C.CheckpointMismatch, ValueError, tf.errors.InvalidArgumentError)):
        C.Checkpointer(str(tmp_path / "n"), C.checkpoint_objects({"sttn": other})).restore(new)
