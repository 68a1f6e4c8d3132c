"""vid2vid's training task (`tfvr.training.task.Task`): sequential GAN training on label-to-video clips.

Models: "generator" (`Vid2VidGenerator`), "image_d" (conditional multi-scale PatchGAN on labels ⊕ frame),
"video_d" (`VideoDiscriminator`: frames ⊕ reference flows at several temporal scales) and, with
`config.train_baseline`, the per-frame baseline "baseline_g" (the same generator with `no_flow=True`, fed no
previous frames) with its own "baseline_d". Optimizer groups: "g", "d" (image + video D), "baseline_g",
"baseline_d"; the baseline sees the same batches at the same steps.

One step = one clip per sample, generated frame by frame (`generate_sequence`): frame 0 from its labels alone
(no previous frames: the image encoder is skipped and only the hallucinated image is used), frame t from the
labels t−2..t and the model's own outputs t−2, t−1 (zeros before frame 0). Gradients flow through previous outputs only within windows of `sequence.bptt_frames` frames
(truncated BPTT). The clip length grows with the step (`stage` = "seq<L>", each length traced once).

Losses (NVIDIA/vid2vid `vid2vid_model_D.py`, per-frame terms averaged over the clip's frames):
  G = GAN(D(l, x̃)) + FM + [GAN + FM on the hallucinated x̃_raw] + λ_T·‖x̃_t − warp(x̃_{t−1}, F_ref)‖₁,conf
      + λ_F·‖F − F_ref‖₁,conf + λ_T·‖warp(x_{t−1}, F) − x_t‖₁,conf + λ_W·‖w‖₁,conf [+ λ_feat·VGG]
      + Σ_scales (GAN + FM of the video D)
  D = ½(real + fake) for the image D (fake and raw) + Σ_scales ½(real + fake) for the video D
where ‖·‖₁,conf is vid2vid's MaskedL1 (mean of |conf·(a − b)|), F_ref/conf the DIS reference flow and
confidence (`flow.py`, computed in the input pipeline), GAN the LSGAN loss and FM feature matching (λ_feat).

Evaluation: held-out label videos generated in full, sequentially; PSNR of every frame against the real one and
the flow-warping error E_warp of the generated video (DIS flow on the outputs), for the model and the baseline
(`psnr_model`, `psnr_baseline`, `ewarp_model`, `ewarp_baseline`; `ewarp_gt` is the real videos' own E_warp).

Where the parts live: the rollout and whole-video generation in `sequence.py`, the cross-field config checks in
`config.check_experiment`, the reference flows in `flow.py`, the data sources (training stream, held-out videos)
in `tfvr.data.label2video`, the losses in `tfvr.losses` (`gan_feature_losses`, `flow_warp_losses`, `masked_l1`,
`VGGLoss`). This module wires them into the `Task` contract.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tfvr.losses import flow_warp_losses, gan_feature_losses
from tfvr.models.vid2vid.config import Vid2VidExperiment, check_experiment, size_multiple
from tfvr.models.vid2vid.discriminator import MultiscaleDiscriminator, VideoDiscriminator, stack_video_input
from tfvr.models.vid2vid.generator import Vid2VidGenerator
from tfvr.models.vid2vid.sequence import Synthesizer, all_label_windows, generate_sequence, label_windows
from tfvr.models.vid2vid.sequence import merge_frames as _merge_frames
from tfvr.training.task import OptimizerGroup, Task

__all__ = ["Vid2VidTask", "generate_sequence", "label_windows"]


def _watchable(v):
    """What `GradientTape.watch` accepts for a Keras variable (its backing tf.Variable)."""
    return getattr(v, "value", v)


class Vid2VidTask(Task):
    """vid2vid (Wang et al., NeurIPS 2018) on label-to-video clips, with its per-frame baseline."""

    autograph = False  # the train step has no Python control flow on tensors (faster traces)

    name = "vid2vid"
    experiment_cls = Vid2VidExperiment
    ema_models = ("generator",)  # and "baseline_g" when it is trained (set per instance)

    def __init__(self, config: Vid2VidExperiment):
        super().__init__(config)
        check_experiment(config)
        if config.loss.vgg_weights:
            from tfvr.losses.perceptual import VGGLoss

            self._vgg = VGGLoss(config.loss.vgg_weights)
        else:
            self._vgg = None
        if self.with_baseline:
            self.ema_models = ("generator", "baseline_g")
        self._synthesizer = Synthesizer()

    # -- derived settings --------------------------------------------------------------------------------------------
    @property
    def with_flow(self) -> bool:
        return not self.config.model.no_flow

    @property
    def with_video_d(self) -> bool:
        return self.config.disc.use_video_d and self.with_flow

    @property
    def with_baseline(self) -> bool:
        return bool(self.config.train_baseline and self.with_flow)

    def temporal_steps(self) -> list[int]:
        """Frame spacing of each temporal scale of the video D (1, K, K², …)."""
        d = self.config.disc
        return [d.n_frames_D ** s for s in range(d.n_scales_temporal)] if self.with_video_d else []

    def flow_steps(self) -> list[int]:
        """Frame distances the pipeline computes reference flows for."""
        return sorted({1, *self.temporal_steps()}) if self.with_flow else []

    def seq_len(self, step: int) -> int:
        s = self.config.sequence
        return min(s.max_frames, s.start_frames + s.grow_frames * (int(step) // max(s.grow_every, 1)))

    def stage(self, step):
        """"seq<L>" (L generated frames per clip), "seq<L>_fixglobal" while `fix_global_steps` trains only the
        finest generator scale."""
        fixed = int(step) < self.config.fix_global_steps
        return f"seq{self.seq_len(step)}" + ("_fixglobal" if fixed else "")

    @staticmethod
    def parse_stage(stage: str) -> tuple[int, bool]:
        """(generated frames per clip, whether the coarse scales are fixed) of a `stage` name."""
        fixed = stage.endswith("_fixglobal")
        return int(stage[3:len(stage) - len("_fixglobal") if fixed else None]), fixed

    # -- models ------------------------------------------------------------------------------------------------------
    def _label_channels(self) -> int:
        return self.config.model.label_nc + int(self.config.model.use_instance)

    def _image_d(self, name):
        d = self.config.disc
        kwargs = dict(input_nc=self._label_channels() + self.config.model.output_nc, ndf=d.ndf, n_layers=d.n_layers_D,
                      num_D=d.num_D, norm=d.norm, get_interm_feat=True)
        return MultiscaleDiscriminator(**kwargs, name=name)

    def build_models(self):
        mc, dc = self.config.model, self.config.disc
        gen = Vid2VidGenerator(**dataclasses.asdict(mc), name="generator")
        models = {"generator": gen, "image_d": self._image_d("image_d")}
        if self.with_video_d:
            kwargs = dict(n_frames_D=dc.n_frames_D, n_scales_temporal=dc.n_scales_temporal, output_nc=mc.output_nc,
                          ndf=dc.ndf, n_layers=dc.n_layers_D, num_D=dc.num_D, norm=dc.norm)
            models["video_d"] = VideoDiscriminator(**kwargs, name="video_d")
        if self.with_baseline:
            models["baseline_g"] = Vid2VidGenerator(**{**dataclasses.asdict(mc), "no_flow": True}, name="baseline_g")
            models["baseline_d"] = self._image_d("baseline_d")
        self._build(models)
        if self.config.init_from and not getattr(self, "restoring", False):
            from tfvr.models.vid2vid.init_from import init_from

            self.init_report = init_from(self.config.init_from, models, self.config)
        return models

    def _build(self, models):
        """Creates every variable of `models` (one call each on zeros)."""
        mc, dc = self.config.model, self.config.disc
        gen = models["generator"]
        size = max(gen.size_multiple * 2, 16)
        n = mc.n_frames_G
        labels = tf.zeros([1, n, size, size], tf.int32)
        prev = tf.zeros([1, n - 1, size, size, mc.output_nc])
        inst = labels if mc.use_instance else None
        models["generator"](labels, prev, inst)
        if "baseline_g" in models:
            models["baseline_g"](labels, None, inst)  # never sees previous frames: no image encoder weights
        for key in ("image_d", "baseline_d"):
            if key in models:
                models[key](tf.zeros([1, size, size, self._label_channels() + mc.output_nc]))
        if "video_d" in models:
            for s in range(dc.n_scales_temporal):
                models["video_d"](tf.zeros([1, size, size, models["video_d"].input_nc]), scale=s)

    def layer_groups(self, models):
        """`trainer.freeze` groups: one per model, plus "netG<s>" per spatial scale of the generator ("netG0" =
        the coarse, global generator; a permanent freeze, where `fix_global_steps` fixes the coarse scales for a
        while)."""
        groups = super().layer_groups(models)
        for s, net in enumerate(models["generator"].scale_models()):
            groups[f"netG{s}"] = list(net.trainable_variables)
        return groups

    @staticmethod
    def _d_variables(models) -> list:
        d_vars = list(models["image_d"].trainable_variables)
        if "video_d" in models:
            d_vars += list(models["video_d"].trainable_variables)
        return d_vars

    def optimizer_groups(self, models):
        c = self.config
        groups = [OptimizerGroup("g", list(models["generator"].trainable_variables), c.optim),
                  OptimizerGroup("d", self._d_variables(models), c.d_optim)]
        if "baseline_g" in models:
            groups += [OptimizerGroup("baseline_g", list(models["baseline_g"].trainable_variables), c.optim),
                       OptimizerGroup("baseline_d", list(models["baseline_d"].trainable_variables), c.d_optim)]
        return groups

    # -- data --------------------------------------------------------------------------------------------------------
    def add_reference_flows(self, batch: dict) -> dict:
        """Adds `flow<d>` [B, T−d, H, W, 2] and `conf<d>` [B, T−d, H, W, 1] for every needed distance d (DIS)."""
        from tfvr.models.vid2vid.flow import add_reference_flows

        return add_reference_flows(batch, self.flow_steps(), self.config.sequence.flow_preset)

    def build_train_dataset(self, input_context, seed):
        from tfvr.data.label2video import train_dataset

        ds = train_dataset(self.config.data, self.config.sequence_root, seed, input_context)
        # traced as written (no AutoGraph conversion: seconds per pipeline)
        return ds.map(tf.autograph.experimental.do_not_convert(self.add_reference_flows),
                      num_parallel_calls=tf.data.AUTOTUNE)

    # -- the step ----------------------------------------------------------------------------------------------------
    def _gan_losses(self, pred_real, pred_fake):
        """(G GAN, G FM, D loss) of one pair of discriminator outputs (`tfvr.losses.gan_feature_losses`)."""
        c = self.config
        return gan_feature_losses(pred_real, pred_fake, c.loss.gan_mode, c.disc.n_layers_D, c.loss.lambda_feat)

    def _image_d_losses(self, disc, cond, real, fakes):
        """Image D on labels ⊕ frame: (G GAN, G FM, D loss) summed over the fakes (final, raw), one D call per
        fake for both sides."""
        # float32 concatenations (under mixed precision cond may come in the compute dtype); D casts its input.
        f32 = lambda t: tf.cast(t, tf.float32)  # noqa: E731
        pred_real = disc(tf.concat([f32(cond), f32(real)], axis=-1), training=True)
        g_gan = g_fm = d_loss = 0.0
        for fake in fakes:
            gan, fm, d = self._gan_losses(pred_real, disc(tf.concat([f32(cond), f32(fake)], axis=-1), training=True))
            g_gan, g_fm, d_loss = g_gan + gan, g_fm + fm, d_loss + d
        return g_gan, g_fm, d_loss

    def _video_d_losses(self, video_d, batch, real, fake, g_loss, d_loss, logs):
        """Adds the video D's losses at every temporal scale the clip is long enough for to `g_loss` / `d_loss`:
        (G loss, D loss, the D variables used); logs `loss/gt<s>_gan`, `loss/gt<s>_feat`, `loss/d_video<s>`."""
        k, L = self.config.disc.n_frames_D, real.shape[1]
        used = []
        for s, d in enumerate(self.temporal_steps()):
            starts = list(range(0, L - (k - 1) * d))
            if not starts:  # the clip is still too short for this temporal scale
                continue
            used += list(video_d.nets[s].trainable_variables)
            idx = [[i + j * d for j in range(k)] for i in starts]
            fidx = [[i + j * d - d for j in range(1, k)] for i in starts]  # flow<d>[t-d] maps t to t-d
            flows = _merge_frames(tf.gather(batch[f"flow{d}"], fidx, axis=1))  # [B·n, k-1, H, W, 2]
            pred_real = video_d(stack_video_input(_merge_frames(tf.gather(real, idx, axis=1)), flows), scale=s,
                                training=True)
            pred_fake = video_d(stack_video_input(_merge_frames(tf.gather(fake, idx, axis=1)), flows), scale=s,
                                training=True)
            gt_gan, gt_fm, dt = self._gan_losses(pred_real, pred_fake)
            g_loss += gt_gan + gt_fm
            d_loss += dt
            logs.update({f"loss/gt{s}_gan": gt_gan, f"loss/gt{s}_feat": gt_fm, f"loss/d_video{s}": dt})
        return g_loss, d_loss, used

    def _model_losses(self, models, batch, seq, real, cond_all, real_all, logs):
        """The model's G and D losses on its generated clip `seq`, and the D variables they update."""
        c, lc = self.config, self.config.loss
        L = real.shape[1]
        fake = seq["img_final"]
        fakes = [_merge_frames(fake)]
        if lc.raw_gan and self.with_flow:
            fakes.append(_merge_frames(seq["img_raw"]))
        g_gan, g_fm, d_loss = self._image_d_losses(models["image_d"], cond_all, real_all, fakes)
        g_loss = g_gan + g_fm
        logs.update({"loss/g_gan": g_gan, "loss/g_feat": g_fm, "loss/d_image": d_loss})
        if self._vgg is not None:
            vgg = sum(self._vgg(f, real_all) for f in fakes) * lc.lambda_feat
            g_loss += vgg
            logs["loss/g_vgg"] = vgg
        if self.with_flow and L > 1:
            conf = batch["conf1"][:, :L - 1]
            fw = flow_warp_losses(real, fake, seq["flow"], seq["weight"], batch["flow1"][:, :L - 1], conf,
                                  lc.lambda_F, lc.lambda_T, lc.lambda_W)
            g_loss += fw["f_flow"] + fw["f_warp"] + fw["w"] + fw["g_warp"]
            logs.update({f"loss/{k}": v for k, v in fw.items()})
            logs["conf"] = tf.reduce_mean(conf)
        d_used = list(models["image_d"].trainable_variables)
        if self.temporal_steps():
            g_loss, d_loss, used = self._video_d_losses(models["video_d"], batch, real, fake, g_loss, d_loss, logs)
            d_used += used
        return g_loss, d_loss, d_used

    # No autograph: the step has no tensor-dependent Python control flow, and converting it and everything it
    # calls took about a third of the step's tracing time.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, batch, models, ctx):
        c = self.config
        L, fix_coarse = self.parse_stage(ctx.stage)
        gen = models["generator"]
        real = tf.cast(batch["frames"][:, :L], tf.float32) * 2.0 - 1.0
        labels = batch["labels"][:, :L]
        inst = batch["instances"][:, :L] if c.model.use_instance else None
        cond_all, _ = gen.encode_labels(_merge_frames(labels)[:, None],
                                        None if inst is None else _merge_frames(inst)[:, None])
        real_all = _merge_frames(real)
        logs = {}
        d_vars = self._d_variables(models)
        # fix_global_steps: only the finest scale is watched and updated (the coarse ones run outside the gradient)
        g_vars = list((gen.scale_models()[-1] if fix_coarse else gen).trainable_variables)
        if self.with_baseline:
            d_vars += list(models["baseline_d"].trainable_variables)
            g_vars += list(models["baseline_g"].trainable_variables)
        # Two tapes that each watch one side: the generator's frame loop is recorded (and differentiated) only on
        # the G tape, instead of a persistent tape building the loop's gradient for every gradient call.
        with tf.GradientTape(watch_accessed_variables=False) as tape_g, \
                tf.GradientTape(watch_accessed_variables=False) as tape_d:
            for v in g_vars:
                tape_g.watch(_watchable(v))
            for v in d_vars:
                tape_d.watch(_watchable(v))
            seq = generate_sequence(gen, labels, inst, c.sequence.bptt_frames, training=True, fix_coarse=fix_coarse,
                                    recompute=c.sequence.recompute_frames)
            g_loss, d_loss, d_used = self._model_losses(models, batch, seq, real, cond_all, real_all, logs)
            # The baseline's losses do not depend on the model's variables nor the reverse, so each pair shares
            # one gradient computation (the sums must be taken inside the tape).
            d_total, g_total, d_groups, g_groups = d_loss, g_loss, ["d"], ["g"]
            if self.with_baseline:
                b_loss, b_d = self._baseline_losses(models, labels, inst, cond_all, real_all)
                logs.update({"baseline/g": b_loss, "baseline/d": b_d})
                d_total, g_total = d_loss + b_d, g_loss + b_loss
                d_groups, g_groups = ["d", "baseline_d"], ["g", "baseline_g"]
                d_used += list(models["baseline_d"].trainable_variables)
        # Only the temporal scales the clip is long enough for are updated (the others have no gradient).
        ctx.minimize(tape_d, d_total, groups=d_groups, variables=d_used)
        ctx.minimize(tape_g, g_total, groups=g_groups, variables=g_vars if fix_coarse else None)
        logs["loss"] = g_loss
        logs["loss/d"] = d_loss
        return logs

    def _baseline_losses(self, models, labels, inst, cond_all, real_all):
        """The per-frame baseline: every frame independently from its label window (no previous frames, so the
        generator's image encoder is never used), image D only."""
        c = self.config
        n = c.model.n_frames_G
        iw = None if inst is None else all_label_windows(inst, n)
        fake = models["baseline_g"](all_label_windows(labels, n), None, iw, training=True)["img_final"]
        g_gan, g_fm, d_loss = self._image_d_losses(models["baseline_d"], cond_all, real_all, [fake])
        g_loss = g_gan + g_fm
        if self._vgg is not None:
            g_loss += self._vgg(fake, real_all) * c.loss.lambda_feat
        return g_loss, d_loss

    # -- evaluation --------------------------------------------------------------------------------------------------
    def eval_videos(self):
        """[(frames uint8 [T, H, W, 3], labels int32 [T, H, W], instances int32 [T, H, W])] held out
        (`tfvr.data.label2video.eval_videos`)."""
        from tfvr.data.label2video import eval_videos

        c = self.config
        return eval_videos(c.data, c.sequence_root, c.eval_videos, c.eval_frames, size_multiple(c.model),
                           what="vid2vid evaluation")

    def synthesize(self, gen: Vid2VidGenerator, labels, instances=None, recurrent: bool = True) -> np.ndarray:
        """Generates a whole video: uint8 [T, H, W, 3] (`sequence.Synthesizer`; `recurrent=False` generates
        every frame as a first frame, the per-frame baseline)."""
        return self._synthesizer(gen, labels, instances, recurrent=recurrent)

    def evaluate(self, models):
        from tfvr.metrics import psnr
        from tfvr.models.vid2vid.flow import warping_error

        scores = {"psnr_model": [], "ewarp_model": [], "ewarp_gt": []}
        if "baseline_g" in models:
            scores.update(psnr_baseline=[], ewarp_baseline=[])
        for frames, labels, instances in self.eval_videos():
            ins = instances if self.config.model.use_instance else None
            runs = [("model", models["generator"], True)]
            if "baseline_g" in models:
                runs.append(("baseline", models["baseline_g"], False))
            for key, gen, recurrent in runs:
                video = self.synthesize(gen, labels, ins, recurrent=recurrent)
                scores[f"psnr_{key}"].append(float(np.mean([psnr(v, g) for v, g in zip(video, frames)])))
                scores[f"ewarp_{key}"].append(warping_error(video))
            scores["ewarp_gt"].append(warping_error(frames))
        return {k: float(np.mean(v)) for k, v in scores.items() if v}

    def image_summaries(self, models, batch):
        from tfvr.data.synthetic import colorize_labels
        from tfvr.training import summaries

        # one clip, generated sequentially; its frames are the image batch (TensorBoard shows the first 4)
        L = min(self.config.sequence.max_frames, batch["labels"].shape[1])
        labels = np.asarray(batch["labels"][0, :L])
        inst = np.asarray(batch["instances"][0, :L]) if self.config.model.use_instance else None
        panels = [colorize_labels(labels), self.synthesize(models["generator"], labels, inst)]
        name = "labels|generated|real"
        if "baseline_g" in models:
            panels.append(self.synthesize(models["baseline_g"], labels, inst, recurrent=False))
            name = "labels|generated|baseline|real"
        panels.append(batch["frames"][0, :L])
        return {name: summaries.image_strip(*panels)}

    # -- export ------------------------------------------------------------------------------------------------------
    def export_module(self, models):
        from tfvr.models.vid2vid.export import Vid2VidModule

        return Vid2VidModule(models["generator"], model_config=dataclasses.asdict(self.config.model))

    def export_signatures(self, module):
        return module.signatures()

    def export_examples(self, module):
        return module.examples()
