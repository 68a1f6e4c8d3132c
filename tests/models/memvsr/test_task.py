"""MemVSR's task: next-frame end-to-end (train, evaluate, PNG folders, export), VSR mode groups, flagfiles."""

import dataclasses
import glob
import json
import os

import numpy as np
import pytest

from tests.helpers import check_flagfile, steps_only
from tfvr.errors import ConfigError
from tfvr.models.memvsr.config import MemVSRExperiment
from tfvr.models.memvsr.task import MemVSRTask
from tfvr.training.loop import Trainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _trainer_cfg(cfg, steps=2):
    cfg.trainer = steps_only(cfg.trainer, steps)
    cfg.runtime.strategy = "one_device"


def _nextframe_cfg(tmp_path):
    cfg = MemVSRExperiment()
    cfg.nextframe = dataclasses.replace(cfg.nextframe, test_type="opticalflow", channels=(3, 4, 8), skip=(True, False))
    cfg.memory = dataclasses.replace(cfg.memory, variant="pixwise", crop=3, embed_size=8, memory_size=2, hops=1)
    cfg.nextframe_data = dataclasses.replace(
        cfg.nextframe_data, input_size=2, frame_interval=1, width=16, height=16, video_width=16, video_height=16,
        video_frames=6, num_train_videos=1, num_eval_videos=1, eval_clips_per_video=3, batch_size=2)
    cfg.output.image_dir = str(tmp_path / "images")
    cfg.output.num_images = 2
    _trainer_cfg(cfg)
    return cfg


def test_nextframe_trains_evaluates_and_saves_pngs(tmp_path):
    task = MemVSRTask(_nextframe_cfg(tmp_path))
    trainer = Trainer(task, str(tmp_path / "run"))
    trainer.train()
    models = trainer.models
    assert {g.name for g in task.optimizer_groups(models)} == {"encoder", "decoder", "memory"}
    res = task.evaluate(models)
    for k in ("psnr_model", "psnr_copy_last", "val_loss", "psnr_gain"):
        assert np.isfinite(res[k]), k
    for folder in ("best_loss", "last"):
        root = tmp_path / "images" / folder
        assert sorted(os.listdir(root / "out_image")) == ["0", "1"]
        assert sorted(os.listdir(root / "out_image" / "0")) == ["input_last.png", "pred.png", "target.png"]
        assert sorted(os.listdir(root / "weight_image" / "1")) == ["slot_0.png", "slot_1.png"]
    assert json.loads((tmp_path / "images" / "best_loss" / "best.json").read_text())["val_loss"] == res["val_loss"]
    images = task.image_summaries(models, task.summary_batch())
    assert images["weight_image"].shape[1] == 16 and images["last|pred|target"].shape[0] == 3
    # the serving module (uint8 in, uint8 out, odd sizes padded in the graph)
    module = task.export_module(models)
    (name, args), = task.export_examples(module).items()
    out = task.export_signatures(module)[name](**args)
    out = out if not isinstance(out, dict) else next(iter(out.values()))
    assert out.dtype.name == "uint8" and tuple(out.shape)[1:] == args["frames"].shape[2:]


def _vsr_task(with_pcd):
    cfg = MemVSRExperiment(mode="vsr")
    cfg.edvr = dataclasses.replace(cfg.edvr, num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1,
                                   num_reconstruct_block=1, dcn_impl="reference")
    cfg.vsr.with_pcd = with_pcd
    cfg.memory = dataclasses.replace(cfg.memory, variant="pixwise", crop=3, embed_size=8, memory_size=2)
    cfg.data = dataclasses.replace(cfg.data, num_frames=3, batch_size=2, crop_size=32)
    cfg.data.synthetic = dataclasses.replace(cfg.data.synthetic, num_train_videos=1, num_eval_videos=1)
    cfg.loss.reduction = "mean"
    _trainer_cfg(cfg, steps=1)
    return MemVSRTask(cfg)


def test_memvsr_is_the_registered_task_of_its_mode(tmp_path):
    from tfvr import registry
    from tfvr.models.memvsr.task import MemVSRNextFrameTask, MemVSRVSRTask

    # "memvsr" (train/memvsr.py, the config.json of existing runs) resolves by config.mode
    assert registry.get_task("memvsr") is MemVSRTask
    assert type(MemVSRTask(_nextframe_cfg(tmp_path))) is MemVSRNextFrameTask
    assert type(_vsr_task(True)) is MemVSRVSRTask
    assert registry.get_task("memvsr_nextframe") is MemVSRNextFrameTask
    assert registry.get_task("memvsr_vsr") is MemVSRVSRTask
    with pytest.raises(ConfigError, match="mode='nextframe'"):
        MemVSRVSRTask(_nextframe_cfg(tmp_path))
    with pytest.raises(ConfigError, match="mode"):
        MemVSRTask(MemVSRExperiment(mode="both"))


@pytest.mark.parametrize("with_pcd", [True, False])
def test_vsr_mode_optimizer_groups(with_pcd):
    task = _vsr_task(with_pcd)
    models = task.build_models()
    names = {g.name for g in task.optimizer_groups(models)}
    assert names == ({"main", "dcn", "memory"} if with_pcd else {"main", "memory"})
    assert any("pcd_align" in v.path for v in models["edvr"].trainable_variables) == with_pcd
    assert bool(task.guards()) == with_pcd


@pytest.mark.slow
def test_vsr_mode_trains_the_memory(tmp_path):
    task = _vsr_task(False)
    models = task.build_models()
    before = {v.path: v.numpy().copy() for v in models["edvr"].memory_variables()}
    trainer = Trainer(task, str(tmp_path / "run"))
    trainer.train()
    after = {v.path: v.numpy() for v in trainer.models["edvr"].memory_variables()}
    assert any(not np.allclose(before[k], after[k]) for k in before)


@pytest.mark.parametrize("field,value", [("memory.variant", "bogus"), ("memory.crop", 4),
                                         ("nextframe.test_type", "nope"), ("nextframe.skip", (True,)),
                                         ("nextframe_data.width", 30)])
def test_bad_config_names_the_field(field, value):
    cfg = MemVSRExperiment()
    cfg.nextframe_data.video_frames = 0
    group, name = field.split(".")
    setattr(getattr(cfg, group), name, value)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        cfg.validate()


@pytest.mark.parametrize("flagfile", sorted(glob.glob(os.path.join(REPO, "train", "configs", "memvsr_*.flags"))))
def test_flagfiles_parse_and_validate(flagfile):
    check_flagfile(flagfile, MemVSRExperiment)  # absl + ml_collections' parser, then every validate()


def test_tfvr_export_cli_rebuilds_the_task(tmp_path):
    from tfvr import cli
    from tfvr.config import save_json

    cfg = _nextframe_cfg(tmp_path)
    cfg.trainer.num_steps = 1
    workdir = tmp_path / "run"
    save_json(cfg, workdir / "config.json", task=MemVSRTask.name, task_module=MemVSRTask.__module__)
    Trainer(MemVSRTask(cfg), str(workdir)).train()
    out = tmp_path / "export"
    assert cli.main(["export", "--workdir", str(workdir), "--out", str(out)]) == 0
    assert (out / "saved_model.pb").exists()
