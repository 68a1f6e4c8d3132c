"""STTN-R's training task (`tfvr.training.task.Task`): denoising / deblurring windows of 2N+1 frames.

Models: "sttn" (`STTNRestore` from `config.model`) and, with `config.train_ablation` and a flow model, "ablation":
the single-frame ablation (the same ResNet head on the reference frame alone, `use_flow=False`). Both are trained in
the same step on the same batches, each by its own optimizer (groups "main" and "ablation", same `config.optim`),
so the comparison is at equal steps, data and learning rate by construction.

Loss of the STTN model (each term logged under `train/loss/...`):
    output_weight · pix(ỹ, y) + warped_weight · pix(x̃, y) + tv_weight · TV(u, v, z)
where y is the ground-truth centre frame, x̃ the K transformed frames (each compared with y) and pix the
`loss.pixel` loss. The ablation is trained with output_weight · pix(ỹ_ablation, y).

Evaluation on the held-out synthetic clips (`build_dataset(cfg.data, "val")`, deterministic noise): PSNR (uint8,
RGB, BasicSR convention) of the degraded centre frame (`psnr_input`), the ablation (`psnr_ablation`) and STTN-R
(`psnr_model`), plus SSIM of STTN-R and the mean |u, v| and z of its flow.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tfvr.models.sttn_restore.config import STTNRestoreExperiment
from tfvr.models.sttn_restore.model import STTNRestore
from tfvr.training.evaluation import RestorationEvaluation, RestorationEvaluator, input_frame, other_model
from tfvr.training.task import OptimizerGroup, Task


def _pixel_loss(cfg):
    from tfvr import losses

    if cfg.pixel == "mse":
        return losses.mse
    if cfg.pixel == "l1":
        return losses.l1
    if cfg.pixel == "charbonnier":
        return lambda p, t: losses.charbonnier(p, t, eps=cfg.charbonnier_eps)
    from tfvr.errors import ConfigError

    raise ConfigError(f"loss.pixel: expected mse, l1 or charbonnier, got {cfg.pixel!r}")


class STTNRestoreTask(RestorationEvaluation, Task):
    """STTN-R (Kim et al., ECCV 2018) trained for video denoising or deblurring, with its single-frame ablation."""

    autograph = False  # the train step has no Python control flow on tensors (faster traces)

    name = "sttn_restore"
    experiment_cls = STTNRestoreExperiment
    ema_models = None

    def __init__(self, config: STTNRestoreExperiment):
        super().__init__(config)
        if config.model.num_frames != config.data.num_frames:
            from tfvr.errors import ConfigError

            raise ConfigError(f"model.num_frames={config.model.num_frames} differs from "
                              f"data.num_frames={config.data.num_frames}; set both")
        if config.data.task not in ("denoise", "deblur"):
            from tfvr.errors import ConfigError

            raise ConfigError(f"data.task={config.data.task!r}: STTN-R restores same-size frames "
                              "(denoise or deblur)")
        self._pix = _pixel_loss(config.loss)
        c = config.model.num_frames // 2
        self.evaluator = RestorationEvaluator(
            model="sttn", output_key="output", target=lambda batch: batch["gt"][:, c],
            baselines=[input_frame(c), other_model("ablation", "ablation", output_key="output")],
            gains={"psnr_gain_over_input": "input", "psnr_gain_over_ablation": "ablation"}, count="num_windows")

    @property
    def with_ablation(self) -> bool:
        return bool(self.config.train_ablation and self.config.model.use_flow)

    # -- models ----------------------------------------------------------------------------------------------------
    def build_models(self):
        mc = self.config.model
        t, c = mc.num_frames, mc.num_channels
        models = {"sttn": STTNRestore(**dataclasses.asdict(mc), name="sttn")}
        if self.with_ablation:
            models["ablation"] = STTNRestore(**{**dataclasses.asdict(mc), "use_flow": False}, name="ablation")
        dummy = tf.zeros([1, t, 16, 16, c])
        for m in models.values():
            m(dummy)
        return models

    def optimizer_groups(self, models):
        groups = [OptimizerGroup("main", list(models["sttn"].trainable_variables), self.config.optim)]
        if "ablation" in models:
            groups.append(OptimizerGroup("ablation", list(models["ablation"].trainable_variables), self.config.optim))
        return groups

    # -- data ------------------------------------------------------------------------------------------------------
    def build_train_dataset(self, input_context, seed):
        from tfvr.data import pipeline

        cfg = dataclasses.replace(self.config.data, seed=int(seed))
        return pipeline.build_dataset(cfg, "train", input_context)


    # -- the step --------------------------------------------------------------------------------------------------
    def train_step(self, batch, models, ctx):
        from tfvr import losses

        lc = self.config.loss
        t = self.config.model.num_frames
        lq = batch["lq"]
        target = tf.cast(batch["gt"][:, t // 2], tf.float32)
        logs = {}
        with tf.GradientTape() as tape:
            out = models["sttn"](lq, training=True)
            y_loss = self._pix(out["output"], target)
            loss = lc.output_weight * y_loss
            logs["loss/output"] = y_loss
            if "flow" in out:
                k = self.config.model.num_flows
                x_loss = self._pix(out["warped"], tf.tile(target, [1, 1, 1, k]))
                tv = losses.flow_smoothness(out["flow"])
                loss = loss + lc.warped_weight * x_loss + lc.tv_weight * tv
                logs["loss/warped"] = x_loss
                logs["loss/tv"] = tv
                flow = tf.reshape(out["flow"], tf.concat([tf.shape(out["flow"])[:3], [k, 3]], 0))
                logs["flow/uv_abs"] = tf.reduce_mean(tf.abs(flow[..., :2]))
                logs["flow/z_offset_abs"] = tf.reduce_mean(tf.abs(flow[..., 2] - (t - 1) / 2.0))
            total = loss
            if "ablation" in models:
                a_loss = self._pix(models["ablation"](lq, training=True)["output"], target)
                logs["loss/ablation"] = a_loss
                total = total + lc.output_weight * a_loss
        ctx.minimize(tape, total)
        logs["loss"] = loss
        return logs

    # -- evaluation (tfvr.training.evaluation: the input frame and the ablation are the baselines) ----------------
    def eval_step(self, batch, models):
        scores, out = self.evaluator.step(batch, models)
        if "flow" in out:  # one value per batch: the mean |u|, |v| and z of STTN-R's flow
            f = out["flow"].numpy()
            scores["flow_uv_abs"] = float(np.abs(f[..., 0::3]).mean() / 2 + np.abs(f[..., 1::3]).mean() / 2)
            scores["flow_z"] = float(f[..., 2::3].mean())
        return scores

    def image_summaries(self, models, batch):
        from tfvr.training import summaries

        t = self.config.model.num_frames
        lq = batch["lq"][:4]
        target = batch["gt"][:4, t // 2]
        out = self.evaluator.predict(models["sttn"])(lq)
        panels = [lq[:, t // 2]]
        if "warped" in out:
            panels.append(out["warped"][..., :3])
        panels.append(tf.clip_by_value(out["output"], 0.0, 1.0))
        if "ablation" in models:
            panels.append(tf.clip_by_value(self.evaluator.predict(models["ablation"])(lq)["output"], 0.0, 1.0))
        panels.append(target)
        images = {"input|warped|output|ablation|target" if "ablation" in models else
                  ("input|warped|output|target" if "warped" in out else "input|output|target"):
                  summaries.image_strip(*panels)}
        if "flow" in out:
            flow = out["flow"]
            images["flow_uv"] = summaries.flow_to_color(flow[..., :2])
            z = flow[..., 2:3] / max(t - 1, 1)
            images["flow_z"] = tf.tile(z, [1, 1, 1, 3])
        return images

    # -- export ----------------------------------------------------------------------------------------------------
    def export_module(self, models):
        from tfvr.export.restoration import RestorationModule

        model = models["sttn"]
        return RestorationModule(model, num_frames=self.config.model.num_frames, scale=1, multiple=model.multiple,
                                 family=self.name, model_config=dataclasses.asdict(self.config.model),
                                 name="sttn_restore_serving")

    def export_signatures(self, module):
        return module.signatures()

    def export_examples(self, module):
        return module.examples(height=37, width=29)  # odd: the reload check also exercises padding and cropping
