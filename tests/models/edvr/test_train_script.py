"""`python train/edvr.py` end to end for 2 steps on tiny generated data (run folder, eval.json, export + reload);
the flagfiles parse and say how to run them."""

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
from tfvr.models.edvr.config import EDVRExperiment

REPO = Path(__file__).resolve().parents[3]
TINY = [
    "--config.data.synthetic.num_train_videos=1", "--config.data.synthetic.num_eval_videos=1",
    "--config.data.synthetic.num_frames=12", "--config.data.synthetic.height=32", "--config.data.synthetic.width=48",
    "--config.data.synthetic.clip_len=6", "--config.data.synthetic.cuts=false", "--config.data.crop_size=32",
    "--config.data.batch_size=2", "--config.data.eval.windows_per_clip=1", "--config.data.shuffle_buffer=4",
    "--config.model.num_feat=8", "--config.model.deformable_groups=2", "--config.model.num_extract_block=1",
    "--config.model.num_reconstruct_block=1", "--config.trainer.num_steps=2", "--config.trainer.checkpoint_every=1",
    "--config.trainer.log_every=1", "--config.trainer.image_every=2", "--config.trainer.progress_bar=false",
]


def test_two_step_run_writes_everything_and_exports(tmp_path):
    workdir = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TFVR_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "train/edvr.py", "--flagfile=train/configs/edvr_m_sr4x_demo.flags",
           f"--workdir={workdir}", f"--config.data.cache_dir={tmp_path / 'cache'}", *TINY]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((workdir / "config.json").read_text())
    assert config["task"] == "edvr" and config["model"]["num_feat"] == 8 and config["model"]["with_tsa"]
    assert glob.glob(str(workdir / "checkpoints" / "ckpt-2.index"))
    assert glob.glob(str(workdir / "tb" / "**" / "events.out.tfevents.*"), recursive=True)
    logged = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert any("offset/pcd_align.cas_dcnpack" in e for e in logged)
    result = json.loads((workdir / "eval.json").read_text())
    for key in ("psnr_model", "psnr_bicubic", "psnr_bilinear", "ssim_model", "psnr_gain", "steps"):
        assert key in result, key
    assert result["steps"] == 2
    assert "psnr_bicubic" in proc.stdout and "psnr_model" in proc.stdout
    export = workdir / "export"
    meta = json.loads((export / "assets" / "tfvr.json").read_text())
    assert meta["num_frames"] == 5 and meta["scale"] == 4 and meta["family"] == "edvr"
    loaded = tf.saved_model.load(str(export))
    frames = np.random.default_rng(0).integers(0, 256, (1, 5, 9, 14, 3), dtype=np.uint8)
    out = loaded.signatures["serving_default"](frames=tf.constant(frames))["restored"]
    assert out.dtype == tf.uint8 and out.shape == (1, 36, 56, 3)


@pytest.mark.parametrize("name", ["edvr_m_sr4x_demo.flags", "edvr_m_sr4x_wotsa.flags", "edvr_m_sr4x.flags"])
def test_flagfiles_parse_and_say_how_to_run_them(name, monkeypatch):
    monkeypatch.chdir(REPO)
    path = f"train/configs/{name}"
    check_overrides(EDVRExperiment(), ["train/edvr.py", f"--flagfile={path}"])
    comments = "\n".join(line for line in Path(path).read_text().splitlines() if line.startswith("#"))
    assert f"--flagfile={path}" in comments and "Expected" in comments
    assert read_flagfile_lines(path)
