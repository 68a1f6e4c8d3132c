"""STTN-R's task end to end: `python train/sttn.py` for 2 steps on tiny generated data, then the run folder,
eval.json, export and its reload; the flagfiles parse; the 2-replica step equals the 1-replica step."""

import dataclasses

import numpy as np
import pytest

from tests.helpers import REPO, check_config_errors, check_flagfile, check_train_run
from tfvr.models.sttn_restore.config import STTNRestoreExperiment
from tfvr.models.sttn_restore.task import STTNRestoreTask


def test_two_step_run_writes_everything_and_exports(sttn_restore_run):
    run = sttn_restore_run  # tests/conftest.py: train/sttn.py for 2 steps at tiny sizes, shared with the console tests
    check_train_run(run, task="sttn_restore", steps=2, printed=("psnr_input", "psnr_model"),
                    eval_keys=("psnr_input", "psnr_ablation", "psnr_model", "seconds"), export_kind="restoration")
    assert run.config["model"]["num_flows"] == 4 and run.config["model"]["num_feat"] == 4
    # the export passed the framework's fresh-process reload check; load it here too and restore an odd size
    meta = run.export_meta()
    assert meta["num_frames"] == 5 and meta["scale"] == 1
    frames = np.random.default_rng(0).integers(0, 256, (1, 5, 19, 23, 3), dtype=np.uint8)
    out = run.serve(frames=frames)["restored"]
    assert out.dtype == np.uint8 and out.shape == (1, 19, 23, 3)


@pytest.mark.parametrize("name", ["sttn_denoise_demo.flags", "sttn_denoise.flags", "sttn_deblur.flags",
                                  "sttn_ablation.flags"])
def test_flagfiles_parse_and_say_how_to_run_them(name):
    cfg = check_flagfile(REPO / "train" / "configs" / name, STTNRestoreExperiment, task_cls=STTNRestoreTask,
                         how_to_run=True)
    assert cfg.data.task in ("denoise", "deblur")


def test_task_rejects_mismatched_frames_and_tasks():
    check_config_errors(STTNRestoreTask, STTNRestoreExperiment, [("model.num_frames", 3, "num_frames"),
                                                                 ("data.task", "sr", "denoise or deblur")])


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
