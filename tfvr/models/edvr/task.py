"""EDVR's training task (`tfvr.training.task.Task`): ×4 video super-resolution (or deblurring with `hr_in`).

Models: {"edvr": EDVR(**config.model)}. Step: Charbonnier loss between the output and the ground-truth centre frame
(`config.loss`: BasicSR's eps 1e-12 and sum reduction by default), PyTorch's Adam (`torch_adam`, β = 0.9, 0.99) with
BasicSR's cosine-annealing-with-restarts schedule (`config.optim`), flips / rot90 augmentation (`config.data`).
`tests/models/edvr/test_train_parity.py` checks 3 steps against BasicSR's `EDVRModel`.

The stabilisers (`config.stabilizers`, see `EDVRStabilizerConfig`):
* **DCN learning-rate multiplier**: the deformable-conv parameters (`dcn_lr_scope`) are their own optimizer group
  "dcn" with `lr_multiplier = dcn_lr_mul` (always a separate group, so the offset guard can lower its LR alone).
* **TSA warm-up**: stage "tsa_warmup" for the first `tsa_warmup_steps` steps updates only `model.fusion`
  (BasicSR `tsa_iter` − 1, see `EDVRStabilizerConfig`); Adam's slots (and, with "torch_adam", the per-variable step
  counts) of the frozen weights do not move.
* **Init deep from shallow**: `init_from` copies weights by BasicSR name from a workdir / converted weights /
  BasicSR state dict into the fresh model before step 0 (`init_mode` "prefix": the 10 blocks of a trained M-depth
  model into the first 10 of 40, the others keep their near-identity init; or "repeat").
* **Offset guard**: every step logs `offset/<DCN name>` = mean |offset| of each DCN (TensorBoard
  `train/offset/...`); a `MetricGuard` warns above `offset_warn` (50) and, above `offset_rollback` (100), restores the
  last good checkpoint and multiplies the "dcn" group's learning rate by `offset_lr_factor`.

Evaluation on the held-out clips (`build_dataset(cfg.data, "val")`): PSNR / SSIM (uint8 RGB, BasicSR's convention)
of the model and of the up-sampled LR centre frame: MATLAB bicubic ×s (`psnr_bicubic`, the usual SR baseline) and
bilinear (`psnr_bilinear`, EDVR's own global-residual base); for `hr_in` models, of the input centre frame.

Export: `tfvr.export.restoration.RestorationModule` (uint8 frames [B, T, H, W, 3] → uint8 [B, sH, sW, 3], padding
inside the graph), so `tfvr restore` and TF Serving work with it; the DCNs trace on the pure-TF path.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfvr.errors import ConfigError, UserError
from tfvr.models.edvr.config import EDVRExperiment
from tfvr.models.edvr.convert import init_from_state_dict, to_basicsr
from tfvr.models.edvr.model import EDVR
from tfvr.training.evaluation import RestorationEvaluation, RestorationEvaluator, input_frame, upscale, upscaled
from tfvr.training.task import MetricGuard, OptimizerGroup, Task

log = logging.getLogger("tfvr.training")

DCN_SCOPES = ("dcn", "offset", "pcd")


def load_init_state_dict(path: str) -> dict[str, np.ndarray]:
    """A BasicSR-named EDVR state dict from a tfvr workdir, a converted `.weights.h5`, or a `.pth` / `.npz`."""
    p = Path(path)
    if p.is_dir():  # a training run: its own task rebuilds the model (raw weights, not the EMA)
        from tfvr.models.edvr.cascade import EDVRStage2Task
        from tfvr.training.checkpoints import restore_models

        run = restore_models(p, ema=False, tasks={"edvr": EDVRTask, "edvr_stage2": EDVRStage2Task})
        log.info("init_from: read %s", run.path)
        return to_basicsr(run.models["edvr"])
    if p.name.endswith(".weights.h5"):
        from tfvr.export.converted import load_converted

        return to_basicsr(load_converted(p))  # one-line UserError for a missing sidecar / bad weights
    from tfvr.export.torch_state import load_state_dict

    return load_state_dict(p)


class EDVRTask(RestorationEvaluation, Task):
    """EDVR (Wang et al., CVPRW 2019) trained for ×4 video SR (or deblurring with hr_in) with its stabilisers."""

    autograph = False  # the train step has no Python control flow on tensors (faster traces)

    name = "edvr"
    experiment_cls = EDVRExperiment

    def __init__(self, config: EDVRExperiment):
        super().__init__(config)
        mc, dc, sc = config.model, config.data, config.stabilizers
        if mc.num_frame != dc.num_frames:
            raise ConfigError(f"model.num_frame={mc.num_frame} differs from data.num_frames={dc.num_frames}; "
                              "set both")
        want_scale = 1 if mc.hr_in else 4
        if mc.hr_in:
            if dc.task not in ("deblur", "denoise"):
                raise ConfigError(f"data.task={dc.task!r}: an hr_in EDVR restores same-size frames "
                                  "(task deblur or denoise)")
        elif dc.task != "sr" or dc.scale != 4:
            raise ConfigError(f"data.task={dc.task!r}, data.scale={dc.scale}: EDVR without hr_in is ×4 SR "
                              "(data.task=sr, data.scale=4)")
        self.scale = want_scale
        self._check_stabilizers(config)
        self.evaluator = self._evaluator()

    @staticmethod
    def _check_stabilizers(config) -> None:
        """The stabiliser and loss fields (shared with stage 2, `EDVRStage2Task`)."""
        mc, sc = config.model, config.stabilizers
        if sc.dcn_lr_scope not in DCN_SCOPES:
            raise ConfigError(f"stabilizers.dcn_lr_scope: {sc.dcn_lr_scope!r} is not one of {DCN_SCOPES}")
        if mc.dcn_mode not in ("dcn", "conv"):
            raise ConfigError(f"model.dcn_mode: {mc.dcn_mode!r} is not 'dcn' or 'conv'")
        if sc.init_mode not in ("prefix", "repeat"):
            raise ConfigError(f"stabilizers.init_mode: {sc.init_mode!r} is not 'prefix' or 'repeat'")
        if sc.tsa_warmup_steps and not mc.with_tsa:
            raise ConfigError("stabilizers.tsa_warmup_steps > 0 needs model.with_tsa=True")
        if config.loss.reduction not in ("sum", "mean"):
            raise ConfigError(f"loss.reduction: {config.loss.reduction!r} is not 'sum' or 'mean'")

    def _evaluator(self) -> RestorationEvaluator:
        """hr_in: the input frame is the baseline; x4: MATLAB bicubic (the usual SR baseline, with SSIM) and
        bilinear (EDVR's own global-residual base)."""
        mc = self.config.model
        c = mc.num_frame // 2 if mc.center_frame_idx is None else int(mc.center_frame_idx)
        if self.scale == 1:
            baselines = [input_frame(c, ssim=True)]
        else:
            baselines = [upscaled("bicubic", c, self.scale, ssim=True),
                         upscaled("bilinear", c, self.scale, method="bilinear")]
        return RestorationEvaluator(model="edvr", target=lambda batch: batch["gt"][:, c], baselines=baselines,
                                    gains={"psnr_gain": baselines[0].name})

    # -- models ----------------------------------------------------------------------------------------------------
    def build_models(self):
        model = EDVR(**dataclasses.asdict(self.config.model), name="edvr").build_for_weights()
        init = self.config.stabilizers.init_from
        if init and not getattr(self, "restoring", False):  # a checkpoint being read overwrites it anyway
            report = init_from_state_dict(model, load_init_state_dict(init), mode=self.config.stabilizers.init_mode,
                                          source=init)
            log.info("init_from %s: copied %d tensors, %d keep their initialisation%s", init, len(report["copied"]),
                     len(report["kept"]), f" (e.g. {', '.join(report['kept'][:3])})" if report["kept"] else "")
        return {"edvr": model}

    def dcn_variables(self, model: EDVR) -> list:
        scope = self.config.stabilizers.dcn_lr_scope
        if scope == "pcd":
            return list(model.pcd_align.trainable_variables)
        out = []
        for layer in model.dcn_packs().values():  # with model.dcn_mode="conv": the plain convs in the DCNs' place
            if scope == "offset":
                out += [layer.offset_kernel, layer.offset_bias] if hasattr(layer, "offset_kernel") else []
            else:
                out += list(layer.trainable_variables)
        return out

    def layer_groups(self, models):
        """Named layer groups for `trainer.freeze` (BasicSR module names): "dcn" (the deformable convs of the PCD
        packs, kernels and offset convs; with model.dcn_mode="conv" the plain convs in their place), "pcd" (the whole alignment module), "feature_extraction" (conv_first /
        predeblur + conv_1x1, the extraction blocks and the pyramid convs), "predeblur", "fusion" (TSA or the 1x1
        fusion conv), "reconstruction", "upsample" (upconv1/2, conv_hr, conv_last), and "edvr" (everything)."""
        m = models["edvr"]

        def tv(*layers):
            return [v for layer in layers for v in layer.trainable_variables]

        head = (m.predeblur, m.conv_1x1) if m.with_predeblur else (m.conv_first,)
        groups = {
            "edvr": list(m.trainable_variables),
            "dcn": [v for layer in m.dcn_packs().values() for v in layer.trainable_variables],
            "pcd": tv(m.pcd_align),
            "feature_extraction": tv(*head, *m.feature_extraction, m.conv_l2_1, m.conv_l2_2, m.conv_l3_1,
                                     m.conv_l3_2),
            "fusion": tv(m.fusion),
            "reconstruction": tv(*m.reconstruction),
            "upsample": tv(m.upconv1, m.upconv2, m.conv_hr, m.conv_last),
        }
        if m.with_predeblur:
            groups["predeblur"] = tv(m.predeblur)
        return groups

    def optimizer_groups(self, models):
        model = models["edvr"]
        dcn = self.dcn_variables(model)
        dcn_ids = {id(v) for v in dcn}
        main = [v for v in model.trainable_variables if id(v) not in dcn_ids]
        return [OptimizerGroup("main", main, self.config.optim),
                OptimizerGroup("dcn", dcn, self.config.optim, lr_multiplier=self.config.stabilizers.dcn_lr_mul)]

    def stage(self, step: int) -> str:
        return "tsa_warmup" if step < self.config.stabilizers.tsa_warmup_steps else "main"

    def guards(self):
        sc = self.config.stabilizers
        return [MetricGuard("offset/", warn_above=sc.offset_warn or None, rollback_above=sc.offset_rollback or None,
                            groups=("dcn",), lr_factor=sc.offset_lr_factor, max_failures=sc.offset_max_failures)]

    # -- data ------------------------------------------------------------------------------------------------------
    def build_train_dataset(self, input_context, seed):
        from tfvr.data import pipeline

        cfg = dataclasses.replace(self.config.data, seed=int(seed))
        return pipeline.build_dataset(cfg, "train", input_context)


    # -- the step --------------------------------------------------------------------------------------------------
    def train_step(self, batch, models, ctx):
        from tfvr.losses import charbonnier

        model = models["edvr"]
        lc = self.config.loss
        center = model.center
        target = tf.cast(batch["gt"][:, center], tf.float32)
        with tf.GradientTape() as tape:
            out = tf.cast(model(batch["lq"], training=True), tf.float32)
            loss = charbonnier(out, target, eps=lc.charbonnier_eps, reduction=lc.reduction)
        frozen = ctx.stage == "tsa_warmup"
        ctx.minimize(tape, loss, variables=list(model.fusion.trainable_variables) if frozen else None,
                     loss_reduction=lc.reduction)
        logs = {"loss": loss,
                "loss/per_pixel": tf.reduce_mean(tf.sqrt(tf.square(out - target) + lc.charbonnier_eps))}
        for name, layer in model.dcn_layers().items():
            logs[f"offset/{name}"] = tf.identity(layer.offset_mean_abs.value)
        return logs

    # -- evaluation (RestorationEvaluation: build_eval_dataset, eval_step, reduce_aggregated) ----------------------
    def evaluate(self, models):
        """The evaluator's metrics plus the mean |offset| of every DCN (`offset/<name>`, as last computed)."""
        res = super().evaluate(models)
        for name, layer in models["edvr"].dcn_layers().items():
            res[f"offset/{name}"] = float(layer.offset_mean_abs.numpy())
        return res

    def image_summaries(self, models, batch):
        from tfvr.training import summaries

        model = models["edvr"]
        c = model.center
        lq = batch["lq"][:4]
        out = tf.clip_by_value(tf.cast(self.evaluator.predict(model)(lq), tf.float32), 0.0, 1.0)
        base = tf.convert_to_tensor(upscale(np.asarray(lq[:, c]), self.scale))
        name = "input|output|target" if self.scale == 1 else "bicubic|output|target"
        return {name: summaries.image_strip(tf.clip_by_value(base, 0.0, 1.0), out, batch["gt"][:4, c])}

    # -- export ----------------------------------------------------------------------------------------------------
    def export_module(self, models):
        from tfvr.export.restoration import RestorationModule

        model = models["edvr"]
        return RestorationModule(model, num_frames=model.num_frame, scale=model.scale, multiple=model.size_multiple,
                                 family=self.name, model_config=dataclasses.asdict(self.config.model),
                                 name="edvr_serving")

    def export_signatures(self, module):
        # Trace the serving functions now, on the pure-TF DCN (the SavedModel must not depend on the kernel
        # library); with their input signatures fixed, later get_concrete_function() calls reuse these traces.
        sigs = module.signatures()
        with module.model.dcn_impl_override("reference"):
            for fn in sigs.values():
                if hasattr(fn, "get_concrete_function"):
                    fn.get_concrete_function()
        return sigs

    def export_examples(self, module):
        t = self.config.model.num_frame
        rng = np.random.default_rng(0)
        # Odd sizes, so the reload check exercises the in-graph padding and cropping.
        h, w = (37, 29) if self.scale == 1 else (19, 13)
        return {"serving_default": {"frames": rng.integers(0, 256, (1, t, h, w, 3), dtype=np.uint8)}}

