"""runtime.precision = mixed_bfloat16 / mixed_float16 for every family: two training steps on tiny shapes run,
the losses stay finite, the float32 weights move and stay finite, layers compute in the reduced dtype."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import one_cpu_strategy, steps_only
from tfvr.training.loop import Trainer

PRECISIONS = ["mixed_bfloat16", "mixed_float16"]


def _sttn_restore():
    from tfvr.models.sttn_restore.config import STTNRestoreExperiment
    from tfvr.models.sttn_restore.task import STTNRestoreTask

    cfg = STTNRestoreExperiment()
    cfg.model = dataclasses.replace(cfg.model, num_frames=3, unet_feat=4, unet_max_feat=8, unet_depth=2, num_feat=4,
                                    num_blocks=1, num_flows=2, z_init="spread")
    cfg.data.num_frames = 3
    rng = np.random.default_rng(0)
    gt = rng.uniform(size=(2, 3, 16, 16, 3)).astype(np.float32)
    batch = {"lq": np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1).astype(np.float32), "gt": gt}
    return STTNRestoreTask, cfg, batch


def _edvr():
    from tests.models.edvr.test_task import FakeDataTask, _experiment

    cfg = _experiment()
    rng = np.random.default_rng(1)
    batch = {"lq": rng.uniform(size=(2, 3, 8, 8, 3)).astype(np.float32),
             "gt": rng.uniform(size=(2, 3, 32, 32, 3)).astype(np.float32)}
    return FakeDataTask, cfg, batch


def _sttn_inpaint():
    from tests.models.sttn_inpaint.test_task import _batch, _experiment
    from tfvr.models.sttn_inpaint.task import STTNInpaintTask

    cfg = _experiment()
    cfg.data = dataclasses.replace(cfg.data, batch_size=2)
    return STTNInpaintTask, cfg, {k: v[:2] for k, v in _batch().items()}


def _vid2vid():
    from tests.models.vid2vid.test_task import synthetic_batch, tiny_config
    from tfvr.models.vid2vid.task import Vid2VidTask

    cfg = tiny_config()
    return Vid2VidTask, cfg, synthetic_batch(Vid2VidTask(cfg))


def _memvsr(tmp_path):
    from tests.models.memvsr.test_task import _nextframe_cfg
    from tfvr.models.memvsr.task import MemVSRTask

    return MemVSRTask, _nextframe_cfg(tmp_path), None  # its own (generated) data stream


FAMILIES = {"sttn_restore": _sttn_restore, "edvr": _edvr, "sttn_inpaint": _sttn_inpaint, "vid2vid": _vid2vid,
            "memvsr": _memvsr}


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_two_mixed_precision_steps_stay_finite(tmp_path, family, precision):
    make = FAMILIES[family]
    task_cls, cfg, batch = make(tmp_path) if family == "memvsr" else make()
    cfg.runtime.precision = precision
    cfg.runtime.strategy = "one_device"
    cfg.trainer = steps_only(cfg.trainer, 2)
    try:
        trainer = Trainer(task_cls(cfg), str(tmp_path / "run"), strategy=one_cpu_strategy()).build()
        compute = {layer.compute_dtype for m in trainer.models.values()
                   for layer in m._flatten_layers(include_self=False, recursive=True)}  # noqa: SLF001
        assert precision.split("_")[1] in compute
        before = {v.path: v.numpy().copy() for m in trainer.models.values() for v in m.trainable_variables}
        if batch is None:
            result = trainer.train()
            assert result.step == 2
            logs = result.logs
            assert logs, "no logs from the run"
        else:
            # mixed_float16: a step whose scaled gradients overflow is skipped and the loss scale halves (dynamic
            # loss scaling), so it gets a third step.
            scales = lambda: {n: float(o.dynamic_scale) for n, o in trainer.optimizers.items()  # noqa: E731
                              if hasattr(o, "dynamic_scale")}
            for _ in range(3 if precision == "mixed_float16" else 2):
                before_scale = scales()
                logs = trainer.run_step(batch)
                for k, v in logs.items():
                    if k.startswith("grad_norm/") and not np.isfinite(v) and precision == "mixed_float16":
                        group = k.split("/", 1)[1]
                        assert scales()[group] < before_scale[group], f"{k} = {v} but the loss scale did not drop"
                        continue
                    assert np.isfinite(v), f"{family} {precision}: {k} = {v}"
            logs = {}
        for k, v in logs.items():
            assert np.isfinite(v), f"{family} {precision}: {k} = {v}"
        after = {v.path: v for m in trainer.models.values() for v in m.trainable_variables}
        assert all(v.dtype == "float32" for v in after.values())
        assert all(np.isfinite(v.numpy()).all() for v in after.values()), "non-finite weights"
        moved = [k for k, v in after.items() if not np.array_equal(before[k], v.numpy())]
        assert moved, f"{family} {precision}: no weight changed in two steps"
    finally:
        keras.config.set_dtype_policy("float32")
