"""EDVR's two-stage restoration (Wang et al., CVPRW 2019, §3.4 "Two-stage restoration"; NTIRE 2019 entry): a second,
shallower EDVR refines the outputs of the first.

Stage 2 is EDVR with `hr_in=True` (it takes HR frames: the stage-1 outputs), predeblur, 128 channels, 5 + **20**
residual blocks — preset `edvr_l_stage2`, the configuration of the EDVR authors' `EDVR_REDS_SR_Stage2` model (their
test script builds `EDVR(128, 5, 8, 5, 20, predeblur=True, HR_in=True)` for stage 2; BasicSR has no stage-2 option
file). For a centre frame t it sees the stage-1 outputs of frames t-N2 .. t+N2, each restored by the frozen stage-1
model from its own LR window, so one sample reads T1 + T2 - 1 LR frames (9 for 5 + 5).

`EDVRCascade(stage1, stage2, quantize=True)`: LR frames `[B, T1 + T2 - 1, h, w, 3]` → `[B, 4h, 4w, 3]`; with
`quantize` the stage-1 outputs are rounded to 8-bit levels, as the authors trained stage 2 on stage-1 result images.

`EDVRStage2Task` (train/edvr_stage2.py): trains stage 2 on the outputs of a frozen stage-1 model:
* `stage1.weights`: the stage-1 model — a tfvr EDVR workdir (its config.json gives the architecture, its newest
  checkpoint the weights), a `.weights.h5` from `tfvr convert-weights`, or a BasicSR / EDVR `.pth` state dict (then
  `stage1.model` is the architecture, default EDVR-L). Every stage-1 tensor must load (strict): a stage 2 trained
  on a half-initialised stage 1 would be meaningless.
* `data.num_frames` = stage1.num_frame + model.num_frame - 1 LR frames per sample (task sr, ×4).
* The loss, optimizer and stabilisers are EDVR's (`EDVRTask`), on the stage-2 output against the centre frame;
  stage 1 is excluded from the optimizer and from the EMA, and is not trainable.
* Evaluation: PSNR / SSIM of the cascade (`psnr_model`), of stage 1 alone (`psnr_stage1`, the centre window) and
  bicubic ×4; export: the whole cascade as one `RestorationModule` (T1 + T2 - 1 uint8 LR frames → ×4 uint8 frame).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging

import keras
import numpy as np
import tensorflow as tf

from tfvr.errors import ConfigError, UserError
from tfvr.models.edvr.config import EDVRConfig, EDVRStage2Experiment
from tfvr.models.edvr.model import EDVR
from tfvr.models.edvr.task import EDVRTask, load_init_state_dict
from tfvr.training.evaluation import RestorationEvaluator, other_model, upscaled
from tfvr.training.task import Task

log = logging.getLogger("tfvr.training")


def stage1_windows(stage1, lq, t1: int, t2: int, quantize: bool = True):
    """Stage-1 outputs of the T2 frames around the centre: `[B, T1 + T2 - 1, h, w, C]` → `[B, T2, 4h, 4w, C]`
    (each output from its own T1-frame window), rounded to 8-bit levels when `quantize`."""
    lq = tf.convert_to_tensor(lq)
    b = tf.shape(lq)[0]
    windows = tf.concat([lq[:, i:i + t1] for i in range(t2)], axis=0)  # [T2 * B, T1, h, w, C]
    out = tf.cast(stage1(windows, training=False), tf.float32)
    if quantize:
        out = tf.round(tf.clip_by_value(out, 0.0, 1.0) * 255.0) / 255.0
    shape = tf.shape(out)
    out = tf.reshape(out, tf.concat([[t2, b], shape[1:]], 0))
    return tf.stop_gradient(tf.transpose(out, [1, 0, 2, 3, 4]))


@keras.saving.register_keras_serializable(package="tfvr")
class EDVRCascade(keras.Model):
    """Stage 1 (LR → ×4) then stage 2 (hr_in refinement) — see the module docstring."""

    def __init__(self, stage1: EDVR, stage2: EDVR, quantize: bool = True, **kwargs):
        super().__init__(**kwargs)
        if not stage2.hr_in:
            raise ValueError("EDVRCascade: stage 2 must be an hr_in EDVR (it takes the stage-1 HR outputs)")
        if stage1.hr_in:
            raise ValueError("EDVRCascade: stage 1 must be a x4 EDVR (hr_in=False)")
        self.stage1, self.stage2 = stage1, stage2
        self.quantize = bool(quantize)
        self.t1, self.t2 = stage1.num_frame, stage2.num_frame
        self.num_frame = self.t1 + self.t2 - 1
        self.center = self.num_frame // 2
        self.scale = 4
        self.size_multiple = 4

    def call(self, x, training=False):
        frames = stage1_windows(self.stage1, x, self.t1, self.t2, self.quantize)
        return self.stage2(frames, training=training)

    def dcn_layers(self) -> dict:
        return {**{f"stage1.{k}": v for k, v in self.stage1.dcn_layers().items()},
                **{f"stage2.{k}": v for k, v in self.stage2.dcn_layers().items()}}

    @contextlib.contextmanager
    def dcn_impl_override(self, impl: str):
        with self.stage1.dcn_impl_override(impl), self.stage2.dcn_impl_override(impl):
            yield

    def get_config(self):
        base = {k: v for k, v in super().get_config().items() if k in ("name", "trainable", "dtype")}
        return dict(base, stage1=keras.saving.serialize_keras_object(self.stage1),
                    stage2=keras.saving.serialize_keras_object(self.stage2), quantize=self.quantize)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["stage1"] = keras.saving.deserialize_keras_object(config["stage1"])
        config["stage2"] = keras.saving.deserialize_keras_object(config["stage2"])
        return cls(**config)


# ---------------------------------------------------------------------------------------------------------------
# The task (its config, `EDVRStage2Experiment`, lives in `tfvr.models.edvr.config`)


class EDVRStage2Task(EDVRTask):
    """Stage 2 of EDVR's two-stage restoration, trained on the outputs of a frozen stage-1 model."""

    name = "edvr_stage2"
    experiment_cls = EDVRStage2Experiment
    ema_models = ("edvr",)

    def __init__(self, config):
        Task.__init__(self, config)
        mc, dc, s1 = config.model, config.data, config.stage1
        if not mc.hr_in:
            raise ConfigError("model.hr_in must be true for stage 2 (it refines the stage-1 HR outputs; preset "
                              "edvr_l_stage2)")
        if dc.task != "sr" or dc.scale != 4:
            raise ConfigError(f"data.task={dc.task!r}, data.scale={dc.scale}: stage 2 trains on x4 SR data "
                              "(data.task=sr, data.scale=4): stage 1 makes its inputs")
        if not s1.weights:
            raise ConfigError("stage1.weights: the stage-1 model (a tfvr EDVR workdir, a .weights.h5 or a BasicSR "
                              ".pth) is required")
        self.stage1_config = self._stage1_config()
        want = self.stage1_config.num_frame + mc.num_frame - 1
        if dc.num_frames != want:
            raise ConfigError(f"data.num_frames={dc.num_frames}: stage 2 needs stage1.num_frame + model.num_frame - "
                              f"1 = {self.stage1_config.num_frame} + {mc.num_frame} - 1 = {want} LR frames")
        self._check_stabilizers(config)
        self.scale = 4
        self.evaluator = self._evaluator()

    def _stage1_config(self) -> EDVRConfig:
        from pathlib import Path

        from tfvr.config import read_json

        s1 = self.config.stage1
        p = Path(s1.weights)
        if p.is_dir() and (p / "config.json").exists():
            model_cfg = read_json(p / "config.json").get("model", {})
            try:
                cfg = EDVRConfig(**{**dataclasses.asdict(EDVRConfig()), **model_cfg})
            except TypeError as e:
                raise UserError(f"{p / 'config.json'}: not an EDVR model config ({e})") from None
        else:
            cfg = dataclasses.replace(s1.model)
        if cfg.hr_in:
            raise ConfigError(f"stage1.weights={s1.weights}: stage 1 must be a x4 EDVR (hr_in=false)")
        return cfg

    # -- models ----------------------------------------------------------------------------------------------------
    def build_models(self):
        from tfvr.models.edvr.convert import init_from_state_dict

        models = super().build_models()  # {"edvr": stage 2} (+ stabilizers.init_from)
        s1cfg = dataclasses.asdict(self.stage1_config)
        s1cfg["dcn_impl"] = self.config.model.dcn_impl
        stage1 = EDVR(**s1cfg, name="stage1").build_for_weights()
        stage1.trainable = False
        models["stage1"] = stage1
        if getattr(self, "restoring", False):  # `restore_models`: the checkpoint holds stage 1 too
            return models
        src = self.config.stage1.weights
        report = init_from_state_dict(stage1, load_init_state_dict(src), mode="prefix", source=src)
        if report["kept"]:
            raise UserError(f"stage1.weights={src}: {len(report['kept'])} stage-1 tensors are missing or have other "
                            f"shapes (e.g. {', '.join(report['kept'][:3])}); stage 1 must load completely")
        log.info("stage 1: %d tensors from %s (frozen)", len(report["copied"]), src)
        return models

    def layer_groups(self, models):
        groups = super().layer_groups({"edvr": models["edvr"]})
        groups["stage1"] = list(models["stage1"].weights)
        return groups

    def cascade(self, models) -> EDVRCascade:
        return EDVRCascade(models["stage1"], models["edvr"], quantize=self.config.stage1.quantize,
                           name="edvr_cascade")

    # -- the step --------------------------------------------------------------------------------------------------
    def _stage2_batch(self, batch, models):
        t1, t2 = self.stage1_config.num_frame, self.config.model.num_frame
        frames = stage1_windows(models["stage1"], batch["lq"], t1, t2, self.config.stage1.quantize)
        c = (t1 - 1) // 2
        return {"lq": frames, "gt": batch["gt"][:, c:c + t2]}

    def train_step(self, batch, models, ctx):
        return super().train_step(self._stage2_batch(batch, models), models, ctx)

    # -- evaluation (tfvr.training.evaluation: stage 1 alone and bicubic x4 are the baselines) -------------------
    def _evaluator(self) -> RestorationEvaluator:
        t1 = self.stage1_config.num_frame
        c = self.config.data.num_frames // 2
        window = slice(c - t1 // 2, c + t1 // 2 + 1)  # stage 1 alone on the centre frame's own window
        return RestorationEvaluator(
            model="edvr", target=lambda batch: batch["gt"][:, c],
            inputs=lambda batch, models: self._stage2_batch(batch, models)["lq"],
            baselines=[other_model("stage1", "stage1", inputs=lambda batch: batch["lq"][:, window]),
                       upscaled("bicubic", c, 4)],
            gains={"psnr_gain_over_stage1": "stage1"})

    def evaluate(self, models):
        return Task.evaluate(self, models)  # no offset/* metrics (EDVRTask's): the cascade has two sets of DCNs

    def image_summaries(self, models, batch):
        from tfvr.training import summaries

        b = self._stage2_batch({k: v[:2] for k, v in batch.items()}, models)
        t2c = self.config.model.num_frame // 2
        out = tf.clip_by_value(tf.cast(self.evaluator.predict(models["edvr"])(b["lq"]), tf.float32), 0.0, 1.0)
        return {"stage1|stage2|target": summaries.image_strip(b["lq"][:, t2c], out, b["gt"][:, t2c])}

    # -- export ----------------------------------------------------------------------------------------------------
    def export_module(self, models):
        from tfvr.export.restoration import RestorationModule

        cascade = self.cascade(models)
        return RestorationModule(cascade, num_frames=cascade.num_frame, scale=4, multiple=4, family="edvr_stage2",
                                 model_config={"stage1": dataclasses.asdict(self.stage1_config),
                                               "stage2": dataclasses.asdict(self.config.model),
                                               "quantize": self.config.stage1.quantize},
                                 name="edvr_cascade_serving")

    def export_examples(self, module):
        t = self.config.data.num_frames
        rng = np.random.default_rng(0)
        return {"serving_default": {"frames": rng.integers(0, 256, (1, t, 7, 5, 3), dtype=np.uint8)}}
