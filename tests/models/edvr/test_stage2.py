"""EDVR's two-stage restoration: stage 2 (hr_in, shallower) trained for 2 steps on the outputs of a frozen stage-1
model read from a stage-1 workdir; stage 1 stays bit-identical, stage 2 trains, the cascade is the composition."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import steps_only
from tfvr.config import save_json
from tfvr.errors import ConfigError, UserError
from tfvr.models.edvr.cascade import EDVRCascade, EDVRStage2Task, stage1_windows
from tfvr.models.edvr.config import EDVRConfig, EDVRExperiment, EDVRStage2Experiment
from tfvr.models.edvr.presets import get_preset
from tfvr.models.edvr.task import EDVRTask
from tfvr.training.loop import Trainer

S1 = dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1,
          dcn_impl="reference")
S2 = dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=2,
          hr_in=True, with_predeblur=True, dcn_impl="reference")
SYN = dict(num_train_videos=1, num_eval_videos=1, num_frames=12, height=32, width=48, clip_len=8, cuts=False)


@pytest.fixture(scope="module")
def stage1_workdir(tmp_path_factory):
    """A stage-1 run folder (config.json + a checkpoint of a freshly initialised tiny EDVR)."""
    wd = tmp_path_factory.mktemp("stage1") / "run"
    cfg = EDVRExperiment()
    cfg.model = EDVRConfig(**S1)
    cfg.data.num_frames = 3
    cfg.runtime.strategy = "one_device"
    trainer = Trainer(EDVRTask(cfg), str(wd)).build()
    trainer.save()
    save_json(cfg, wd / "config.json", task="edvr")
    return wd


def _experiment(stage1_workdir, cache):
    cfg = EDVRStage2Experiment()
    cfg.model = EDVRConfig(**S2)
    cfg.stage1.weights = str(stage1_workdir)
    cfg.data = dataclasses.replace(cfg.data, num_frames=5, crop_size=32, batch_size=2, shuffle_buffer=2,
                                   cache_dir=str(cache), synthetic=dataclasses.replace(cfg.data.synthetic, **SYN))
    cfg.data.eval.windows_per_clip = 1
    cfg.loss.reduction = "mean"
    cfg.optim = dataclasses.replace(cfg.optim, learning_rate=1e-3, schedule="constant", periods=(),
                                    restart_weights=())
    cfg.trainer = steps_only(cfg.trainer, 2, log_grad_norm=False)
    cfg.runtime.strategy = "one_device"
    return cfg


def test_preset_is_the_shallow_hr_in_edvr():
    p = get_preset("edvr_l_stage2")
    assert (p.num_feat, p.num_reconstruct_block, p.hr_in, p.with_predeblur) == (128, 20, True, True)
    d = EDVRStage2Experiment()
    assert d.model == p and d.data.num_frames == 9 and d.stage1.model.num_reconstruct_block == 40


def test_stage2_trains_two_steps_on_frozen_stage1_outputs(stage1_workdir, tmp_path):
    cfg = _experiment(stage1_workdir, tmp_path / "cache")
    task = EDVRStage2Task(cfg)
    trainer = Trainer(task, str(tmp_path / "run")).build()
    s1, s2 = trainer.models["stage1"], trainer.models["edvr"]
    # Stage 1 is the stage-1 run's checkpoint, loaded completely.
    from tfvr.models.edvr.model import EDVR

    ref_model = EDVR(**S1, name="edvr").build_for_weights()
    tf.train.Checkpoint(model_edvr=ref_model).read(tf.train.latest_checkpoint(str(stage1_workdir / "checkpoints")))\
        .expect_partial()
    for a, b in zip(s1.weights, ref_model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    s1_before = [w.numpy().copy() for w in s1.weights]
    s2_before = [w.numpy().copy() for w in s2.trainable_variables]
    result = trainer.train()
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(s1_before, s1.weights))  # frozen
    moved = [not np.array_equal(a, w.numpy()) for a, w in zip(s2_before, s2.trainable_variables)]
    assert sum(moved) > 0.9 * len(moved)
    assert not any(v is w for g in trainer.groups.values() for v in g.variables for w in s1.weights)
    # The cascade is stage 2 on the quantised stage-1 outputs of the sliding windows.
    x = tf.random.stateless_uniform([1, 5, 8, 8, 3], [1, 2])
    cascade = task.cascade(trainer.models)
    frames = stage1_windows(s1, x, 3, 3)
    assert frames.shape == (1, 3, 32, 32, 3)
    np.testing.assert_allclose(frames[:, 1].numpy(), np.round(np.clip(s1(x[:, 1:4]).numpy(), 0, 1) * 255) / 255,
                               atol=1e-6)
    np.testing.assert_allclose(cascade(x).numpy(), s2(frames).numpy(), atol=1e-6)
    ev = task.evaluate(trainer.models)
    for k in ("psnr_model", "psnr_stage1", "psnr_bicubic", "psnr_gain_over_stage1"):
        assert np.isfinite(ev[k]), k


def test_stage2_config_errors(stage1_workdir, tmp_path):
    cfg = _experiment(stage1_workdir, tmp_path)
    bad = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, num_frames=7))
    with pytest.raises(ConfigError, match="3 \\+ 3 - 1 = 5"):
        EDVRStage2Task(bad)
    bad = dataclasses.replace(cfg, model=EDVRConfig(**{**S2, "hr_in": False, "with_predeblur": False}))
    with pytest.raises(ConfigError, match="hr_in"):
        EDVRStage2Task(bad)
    bad = dataclasses.replace(cfg, stage1=dataclasses.replace(cfg.stage1, weights=""))
    with pytest.raises(ConfigError, match="stage1.weights"):
        EDVRStage2Task(bad)
    # A state dict of another architecture does not load completely: refused.
    wd = tmp_path / "other"
    other = EDVRExperiment(model=EDVRConfig(**{**S1, "num_feat": 4}))
    other.data.num_frames = 3
    other.runtime.strategy = "one_device"
    Trainer(EDVRTask(other), str(wd)).build().save()
    save_json(other, wd / "config.json", task="edvr")
    ok = EDVRStage2Task(dataclasses.replace(cfg, stage1=dataclasses.replace(cfg.stage1, weights=str(wd))))
    assert ok.stage1_config.num_feat == 4  # the architecture comes from the workdir's config.json
    (wd / "config.json").write_text('{"model": ')  # a corrupt config.json: one line, no traceback
    with pytest.raises(ConfigError, match=r"config.json: not valid JSON \(Expecting value at line 1\)$"):
        EDVRStage2Task(dataclasses.replace(cfg, stage1=dataclasses.replace(cfg.stage1, weights=str(wd))))
