"""Every full-size recipe flagfile (train/configs/) runs 2 training steps at its full size — the crop size and model
size it names — with batch 1 on generated data of the right layout (fake REDS / Vimeo-90K / GoPro / Cityscapes copies
or synthetic frames of the right size), through its `train/<family>.py` script exactly as its header says to run it.

Only the run length, the batch (1), the data folder and the evaluation / export switches are overridden. vid2vid's
sequence length is cut to 2 generated frames per step (crop and model stay full size): NVIDIA's 6-frame sequences at
512x256 cost about 40 CPU-minutes per step here. vid2vid_label2city_1024's `init_from` (the trained 512 run folder)
is cleared; its 2-step run needs about 27 GiB at full size (docs/performance.md, "vid2vid label2city_1024"). The runs are slow on 2 shared CPU cores (figures in
docs/performance.md, "Full-size flagfiles"), so all but one are `@pytest.mark.slow` (`pytest -m slow
tests/training/test_full_size_flagfiles.py`); `test_full_size_default_suite_representative` keeps one in the
default suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fake_data import make_gopro, make_reds, make_vimeo

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "train" / "configs"

SHORT = ["--config.trainer.num_steps=2", "--config.trainer.checkpoint_every=2", "--config.trainer.log_every=1",
         "--config.trainer.image_every=0", "--config.trainer.eval_every=0", "--config.trainer.export=false",
         "--config.trainer.eval_at_end=false", "--config.trainer.progress_bar=false",
         "--config.runtime.strategy=one_device", "--config.data.batch_size=1", "--config.data.shuffle_buffer=2"]
SYN = ["--config.data.source=synthetic", "--config.data.synthetic.num_train_videos=1",
       "--config.data.synthetic.num_eval_videos=1", "--config.data.synthetic.num_frames=8",
       "--config.data.synthetic.clip_len=6", "--config.data.synthetic.cuts=false"]
VID2VID_SHORT = ["--config.sequence.start_frames=2", "--config.sequence.max_frames=2", "--config.data.num_frames=3",
                 "--config.disc.n_scales_temporal=1", "--config.eval_frames=3"]

# flagfile -> (script, data key, extra overrides). Data keys are made once per module by `_data`.
CASES = {
    "edvr_m_sr4x_wotsa": ("edvr", "reds_x4", []),
    "edvr_m_sr4x": ("edvr", "reds_x4", ["--config.stabilizers.init_from="]),
    "edvr_l_sr4x_wotsa": ("edvr", "reds_x4", []),
    "edvr_l_sr4x": ("edvr", "reds_x4", ["--config.stabilizers.init_from="]),
    "edvr_l_sr4x_vimeo": ("edvr", "vimeo_x4", []),
    "edvr_l_deblur": ("edvr", "reds_blur", []),
    "edvr_l_deblurcomp": ("edvr", "reds_blur_comp", []),
    "edvr_l_srblur": ("edvr", "reds_blur_x4", []),
    "edvr_l_sr4x_stage2": ("edvr_stage2", "reds_x4", ["STAGE1"]),
    "sttn_denoise": ("sttn", "synthetic", SYN + ["--config.data.synthetic.height=64",
                                                 "--config.data.synthetic.width=96"]),
    "sttn_deblur": ("sttn", "synthetic", SYN + ["--config.data.synthetic.height=64",
                                                "--config.data.synthetic.width=96"]),
    "sttn_gopro_deblur": ("sttn", "gopro", []),
    "sttn_inpaint_ytvos": ("sttn_inpaint", "synthetic", SYN + ["--config.data.synthetic.height=240",
                                                               "--config.data.synthetic.width=432"]),
    "vid2vid_label2city_512": ("vid2vid", "city_512", VID2VID_SHORT),
    # init_from (the trained 512 run) is cleared: cross-scale init is tested at tiny shapes (test_two_scales.py)
    "vid2vid_label2city_1024": ("vid2vid", "city_1024", VID2VID_SHORT + ["--config.init_from="]),
    "memvsr_t1_pixsim": ("memvsr", "reds_x4", []),
    "memvsr_t1_pixwise": ("memvsr", "reds_x4", []),
    "memvsr_t1_pixsentence": ("memvsr", "reds_x4", []),
    "memvsr_t2_128_crop3": ("memvsr", "reds_x4", []),
    "memvsr_t2_256_concat": ("memvsr", "reds_x4", []),
    "memvsr_t2_256_concat_norm": ("memvsr", "reds_x4", []),
    "memvsr_t3_pcd": ("memvsr", "reds_x4", []),
    "memvsr_t3_nopcd": ("memvsr", "reds_x4", []),
}
DEFAULT = "edvr_m_sr4x_wotsa"  # the representative full-size run of the default suite (the cheapest EDVR recipe)
TIMES = Path(os.environ.get("TFVR_FULL_SIZE_TIMES", "")) if os.environ.get("TFVR_FULL_SIZE_TIMES") else None


def _prepare(src, out, *args):
    from tfvr.cli import main

    assert main(["prepare", str(src), str(out), "--quiet", *args]) == 0
    return out


class _Data:
    """Generated data sets, made on first use (each takes a few seconds to a minute)."""

    def __init__(self, root: Path):
        self.root = root
        self.made: dict[str, Path] = {}

    def get(self, key: str) -> Path | None:
        if key == "synthetic":
            return None
        if key not in self.made:
            self.made[key] = getattr(self, f"_{key.split('_', 1)[0]}")(key)
        return self.made[key]

    def _reds(self, key):
        src = self.root / "REDS"
        if not src.exists():  # 256x320 frames (a 256 crop fits), 10 frames (stage 2 reads 9)
            make_reds(src, clips=("000", "001"), num_frames=10, height=256, width=320)
        kind = {"reds_x4": "sharp_bicubic", "reds_blur": "blur", "reds_blur_comp": "blur_comp",
                "reds_blur_x4": "blur_bicubic"}[key]
        return _prepare(src, self.root / key, "--layout", "reds", "--reds-input", kind, "--clip-len", "10")

    def _vimeo(self, key):
        src = make_vimeo(self.root / "vimeo" / "vimeo_septuplet", num_train=1, num_val=1, height=256, width=448)
        return _prepare(src, self.root / key, "--layout", "vimeo90k")

    def _gopro(self, key):
        src = make_gopro(self.root / "GOPRO_Large", num_frames=6, height=360, width=640)
        return _prepare(src, self.root / key, "--layout", "gopro", "--clip-len", "6")

    def _city(self, key):
        from tests.fake_data import make_cityscapes

        h, w = (256, 512) if key == "city_512" else (512, 1024)
        return make_cityscapes(self.root / key, h, w, num_frames=4)

    def stage1(self) -> Path:
        """A stage-1 EDVR-L workdir (config.json + an untrained checkpoint) for the stage-2 flagfile."""
        wd = self.root / "stage1_edvr_l"
        if not wd.exists():
            from tfvr.config import save_json
            from tfvr.models.edvr.config import EDVRExperiment
            from tfvr.models.edvr.presets import get_preset
            from tfvr.models.edvr.task import EDVRTask
            from tfvr.training.loop import Trainer

            cfg = EDVRExperiment()
            cfg.model = get_preset("edvr_l")
            cfg.runtime.strategy = "one_device"
            Trainer(EDVRTask(cfg), str(wd)).build().save()
            save_json(cfg, wd / "config.json", task="edvr")
        return wd


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return _Data(tmp_path_factory.mktemp("full_size_data"))


def _run(name: str, data: _Data, tmp_path: Path) -> float:
    script, key, extra = CASES[name]
    flagfile = CONFIGS / f"{name}.flags"
    header = [line for line in flagfile.read_text().splitlines() if line.startswith("#")]
    assert any(f"--flagfile=train/configs/{name}.flags" in line for line in header), "header must give the command"
    assert any("Reproduces" in line or "reproduces" in line for line in header) or name.startswith(
        ("edvr_m", "sttn_denoise", "sttn_deblur", "memvsr")), "header must say what it reproduces"
    extra = list(extra)
    if "STAGE1" in extra:
        extra.remove("STAGE1")
        extra.append(f"--config.stage1.weights={data.stage1()}")
    src = data.get(key)
    if key.startswith("city"):
        extra.append(f"--config.sequence_root={src}")
    elif src is not None:
        extra.append(f"--config.data.source={src}")
    workdir = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO), "TFVR_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, f"train/{script}.py", f"--flagfile=train/configs/{name}.flags", f"--workdir={workdir}",
           *SHORT, f"--config.data.cache_dir={tmp_path / 'cache'}", *extra]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    seconds = time.time() - t0
    assert proc.returncode == 0, proc.stderr[-4000:]
    logged = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    steps = sorted({e["step"] for e in logged if "step" in e})
    assert steps and steps[-1] == 2, steps
    assert (workdir / "checkpoints" / "ckpt-2.index").exists()
    config = json.loads((workdir / "config.json").read_text())
    if TIMES is not None:
        with open(TIMES, "a") as f:
            f.write(json.dumps({"flagfile": name, "seconds": round(seconds, 1),
                                "loadavg": open("/proc/loadavg").read().split()[:3],
                                "crop_size": config["data"]["crop_size"]}) + "\n")
    return seconds


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n in CASES if n != DEFAULT))
def test_full_size_flagfile_two_steps(name, data, tmp_path):
    _run(name, data, tmp_path)


def test_full_size_default_suite_representative(data, tmp_path):
    _run(DEFAULT, data, tmp_path)


def test_every_recipe_flagfile_is_covered():
    demos = {"edvr_m_sr4x_demo", "memvsr_nextframe_demo", "memvsr_vsr_demo", "memvsr_vsr_demo_nomem",
             "sttn_denoise_demo", "sttn_inpaint_demo", "vid2vid_demo", "sttn_chain_demo", "sttn_ablation",
             "memvsr_vsr_reds_base", "vid2vid_cityscapes"}
    names = {p.stem for p in CONFIGS.glob("*.flags")}
    assert names - demos <= set(CASES), sorted(names - demos - set(CASES))


TASKS = {"edvr": "tfvr.models.edvr.task:EDVRTask", "edvr_stage2": "tfvr.models.edvr.cascade:EDVRStage2Task",
         "sttn": "tfvr.models.sttn_restore.task:STTNRestoreTask",
         "sttn_inpaint": "tfvr.models.sttn_inpaint.task:STTNInpaintTask",
         "vid2vid": "tfvr.models.vid2vid.task:Vid2VidTask", "memvsr": "tfvr.models.memvsr.task:MemVSRTask"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_full_size_flagfile_parses_and_has_a_header(name, monkeypatch):
    import importlib

    from tfvr.config import check_overrides

    monkeypatch.chdir(REPO)
    script = CASES[name][0]
    module, cls = TASKS[script].split(":")
    task_cls = getattr(importlib.import_module(module), cls)
    check_overrides(task_cls.experiment_cls(), ["prog", f"--flagfile=train/configs/{name}.flags"])
    text = (CONFIGS / f"{name}.flags").read_text()
    assert text.startswith("#") and f"train/{script}.py" in text
