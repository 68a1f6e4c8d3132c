"""`python train/edvr.py` end to end for 2 steps on tiny generated data (run folder, eval.json, export + reload);
the flagfiles parse and say how to run them."""

import numpy as np
import pytest

from tests.helpers import REPO, check_flagfile, run_train_script_test, tiny_run
from tfvr.models.edvr.config import EDVRExperiment
from tfvr.models.edvr.task import EDVRTask

TINY = tiny_run(data__crop_size=32, model__num_feat=8, model__deformable_groups=2, model__num_extract_block=1,
                model__num_reconstruct_block=1, trainer__image_every=2)


def test_two_step_run_writes_everything_and_exports(tmp_path):
    run = run_train_script_test(
        "edvr.py", "edvr_m_sr4x_demo.flags", TINY, tmp_path, task="edvr", export_kind="restoration",
        eval_keys=("psnr_model", "psnr_bicubic", "psnr_bilinear", "ssim_model", "psnr_gain"),
        printed=("psnr_bicubic", "psnr_model"))
    assert run.config["model"]["num_feat"] == 8 and run.config["model"]["with_tsa"]
    assert any("offset/pcd_align.cas_dcnpack" in e for e in run.metrics())
    meta = run.export_meta()
    assert meta["num_frames"] == 5 and meta["scale"] == 4 and meta["family"] == "edvr"
    frames = np.random.default_rng(0).integers(0, 256, (1, 5, 9, 14, 3), dtype=np.uint8)
    out = run.serve(frames=frames)["restored"]
    assert out.dtype == np.uint8 and out.shape == (1, 36, 56, 3)


@pytest.mark.parametrize("name", ["edvr_m_sr4x_demo.flags", "edvr_m_sr4x_wotsa.flags", "edvr_m_sr4x.flags"])
def test_flagfiles_parse_and_say_how_to_run_them(name):
    check_flagfile(REPO / "train" / "configs" / name, EDVRExperiment, task_cls=EDVRTask, how_to_run=True)
