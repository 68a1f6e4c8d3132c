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
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tfvr import registry
from tfvr.errors import ConfigError
from tfvr.models.vid2vid.config import Vid2VidExperiment
from tfvr.models.vid2vid.discriminator import MultiscaleDiscriminator, VideoDiscriminator, stack_video_input
from tfvr.models.vid2vid.generator import Vid2VidGenerator
from tfvr.ops.warp import backward_warp
from tfvr.training.task import OptimizerGroup, Task


def masked_l1(a, b, mask):
    """vid2vid's `MaskedL1Loss`: mean over every element of |mask·a − mask·b| (mask broadcast over channels)."""
    mask = tf.cast(mask, tf.float32)
    return tf.reduce_mean(tf.abs(tf.cast(a, tf.float32) * mask - tf.cast(b, tf.float32) * mask))


def label_windows(labels, t: int, n_frames_G: int):
    """Labels t−(n−1)..t of a clip [B, T, ...] (indices before 0 repeat frame 0) → [B, n, ...]."""
    idx = [max(t - k, 0) for k in range(n_frames_G - 1, -1, -1)]
    return tf.gather(labels, idx, axis=1)


def generate_sequence(gen: Vid2VidGenerator, labels, instances=None, bptt_frames: int = 1, training=None):
    """Generates a clip frame by frame inside the graph (the T frames are unrolled: T is static).

    labels: int [B, T, H, W]; instances: int [B, T, H, W] or None. Frame 0 is generated from its labels alone
    (no previous frames: hallucinated image only); frame t from the labels t−n+1..t (indices before 0 repeat
    frame 0) and the outputs t−n+1..t−1 (zeros before frame 0). A previous output keeps its gradient only when it
    lies in the same window of `bptt_frames` frames as t (truncated BPTT).
    Returns {"img_final", "img_raw": [B, T, H, W, 3], "flow": [B, T − 1, H, W, 2], "weight": [B, T − 1, H, W, 1]}
    (flow and weight of frames 1 … T − 1; both None without flow).

    Unrolled rather than a `tf.while_loop`: synchronised BatchNorm all-reduces inside the generator, and
    tf.distribute cannot synchronise replicas inside a while loop's body.
    """
    n = gen.n_frames_G
    outs = []
    for t in range(labels.shape[1]):
        prev = None
        if t > 0:
            prev = []
            for k in range(n - 1, 0, -1):
                j = t - k
                if j < 0:
                    prev.append(tf.zeros_like(outs[0]["img_final"]))
                elif j // bptt_frames == t // bptt_frames:
                    prev.append(outs[j]["img_final"])
                else:
                    prev.append(tf.stop_gradient(outs[j]["img_final"]))
            prev = tf.stack(prev, axis=1)
        ins = None if instances is None else label_windows(instances, t, n)
        outs.append(gen(label_windows(labels, t, n), prev, ins, training=training))
    result = {k: tf.stack([tf.cast(o[k], tf.float32) for o in outs], axis=1) for k in ("img_final", "img_raw")}
    for k in ("flow", "weight"):
        result[k] = None if gen.no_flow or len(outs) < 2 else tf.stack([o[k] for o in outs[1:]], axis=1)
    return result


def _watchable(v):
    """What `GradientTape.watch` accepts for a Keras variable (its backing tf.Variable)."""
    return getattr(v, "value", v)


def _merge_frames(x):
    """[B, T, ...] → [B·T, ...]."""
    shape = tf.shape(x)
    return tf.reshape(x, tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0))


class _VGGLoss:
    """pix2pixHD's VGG19 feature loss (relu1_1 … relu5_1, weights 1/32 … 1) from *local* Keras VGG19 weights."""

    LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
    WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

    def __init__(self, path: str):
        import os

        import keras

        if not os.path.isfile(path):
            raise ConfigError(f"loss.vgg_weights: {path}: no such file (VGG19 weights are never downloaded)")
        base = keras.applications.VGG19(include_top=False, weights=None)
        base.load_weights(path)
        base.trainable = False
        self.net = keras.Model(base.input, [base.get_layer(n).output for n in self.LAYERS])

    def __call__(self, fake, real):
        from keras.applications.vgg19 import preprocess_input

        fx = self.net(preprocess_input((tf.cast(fake, tf.float32) + 1.0) * 127.5))
        rx = self.net(preprocess_input((tf.cast(real, tf.float32) + 1.0) * 127.5))
        return tf.add_n([w * tf.reduce_mean(tf.abs(f - tf.stop_gradient(r))) for w, f, r in zip(self.WEIGHTS, fx, rx)])


@registry.register_task
class Vid2VidTask(Task):
    """vid2vid (Wang et al., NeurIPS 2018) on label-to-video clips, with its per-frame baseline."""

    name = "vid2vid"
    experiment_cls = Vid2VidExperiment
    ema_models = ("generator",)  # and "baseline_g" when it is trained (set per instance)

    def __init__(self, config: Vid2VidExperiment):
        super().__init__(config)
        c = config
        if c.data.task != "label2video":
            raise ConfigError(f"data.task={c.data.task!r}: vid2vid trains on task=label2video clips")
        s = c.sequence
        if not 1 <= s.start_frames <= s.max_frames <= c.data.num_frames:
            raise ConfigError(f"sequence: need 1 <= start_frames ({s.start_frames}) <= max_frames ({s.max_frames}) "
                              f"<= data.num_frames ({c.data.num_frames})")
        if s.start_frames < 2 and not c.model.no_flow:
            raise ConfigError("sequence.start_frames must be >= 2 with flow (the first frame has no flow)")
        if s.bptt_frames < 1:
            raise ConfigError("sequence.bptt_frames must be >= 1")
        mult = 2 ** (c.model.n_downsampling + c.model.n_scales_spatial - 1)
        if any(d % mult for d in c.data.crop_hw):
            raise ConfigError(f"data.crop_size={c.data.crop_size} must be a multiple of {mult} (both sides) "
                              "(2**(model.n_downsampling + model.n_scales_spatial - 1))")
        from tfvr.losses.adversarial import KINDS

        if c.loss.gan_mode not in KINDS:
            raise ConfigError(f"loss.gan_mode={c.loss.gan_mode!r}: expected one of {KINDS}")
        self._vgg = _VGGLoss(c.loss.vgg_weights) if c.loss.vgg_weights else None
        if self.with_baseline:
            self.ema_models = ("generator", "baseline_g")
        self._step_fns = {}

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
        return f"seq{self.seq_len(step)}"

    # -- models ------------------------------------------------------------------------------------------------------
    def _label_channels(self) -> int:
        return self.config.model.label_nc + int(self.config.model.use_instance)

    def _image_d(self, name):
        d = self.config.disc
        return MultiscaleDiscriminator(self._label_channels() + self.config.model.output_nc, d.ndf, d.n_layers_D,
                                       d.num_D, d.norm, True, name=name)

    def build_models(self):
        mc, dc = self.config.model, self.config.disc
        gen = Vid2VidGenerator(**dataclasses.asdict(mc), name="generator")
        models = {"generator": gen, "image_d": self._image_d("image_d")}
        if self.with_video_d:
            models["video_d"] = VideoDiscriminator(dc.n_frames_D, dc.n_scales_temporal, mc.output_nc, dc.ndf,
                                                   dc.n_layers_D, dc.num_D, dc.norm, name="video_d")
        if self.with_baseline:
            models["baseline_g"] = Vid2VidGenerator(**{**dataclasses.asdict(mc), "no_flow": True}, name="baseline_g")
            models["baseline_d"] = self._image_d("baseline_d")
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
        return models

    def optimizer_groups(self, models):
        c = self.config
        d_vars = list(models["image_d"].trainable_variables)
        if "video_d" in models:
            d_vars += list(models["video_d"].trainable_variables)
        groups = [OptimizerGroup("g", list(models["generator"].trainable_variables), c.optim),
                  OptimizerGroup("d", d_vars, c.d_optim)]
        if "baseline_g" in models:
            groups += [OptimizerGroup("baseline_g", list(models["baseline_g"].trainable_variables), c.optim),
                       OptimizerGroup("baseline_d", list(models["baseline_d"].trainable_variables), c.d_optim)]
        return groups

    # -- data --------------------------------------------------------------------------------------------------------
    def add_reference_flows(self, batch: dict) -> dict:
        """Adds `flow<d>` [B, T−d, H, W, 2] and `conf<d>` [B, T−d, H, W, 1] for every needed distance d (DIS)."""
        from tfvr.models.vid2vid.flow import reference_flows

        frames = tf.cast(batch["frames"], tf.float32) * 2.0 - 1.0
        out = dict(batch)
        for d in self.flow_steps():
            out[f"flow{d}"], out[f"conf{d}"] = reference_flows(frames, d, self.config.sequence.flow_preset)
        return out

    def build_train_dataset(self, input_context, seed):
        c = self.config
        if c.sequence_root:
            from tfvr.data.layouts import cityscapes

            ds = cityscapes.build_dataset(c.sequence_root, "train", num_frames=c.data.num_frames,
                                          crop_size=c.data.crop_size, batch_size=c.data.batch_size, seed=int(seed),
                                          hflip=c.data.hflip, input_context=input_context)
        else:
            from tfvr.data import pipeline

            ds = pipeline.build_dataset(dataclasses.replace(c.data, seed=int(seed)), "train", input_context)
        return ds.map(self.add_reference_flows, num_parallel_calls=tf.data.AUTOTUNE)

    # -- the step ----------------------------------------------------------------------------------------------------
    def _gan(self, output, real: bool, for_d: bool):
        from tfvr.losses import adversarial_loss

        return adversarial_loss(output, real, self.config.loss.gan_mode, for_discriminator=for_d)

    def _fm(self, fake_feats, real_feats):
        from tfvr.losses import feature_matching_loss

        return feature_matching_loss(fake_feats, real_feats, self.config.disc.n_layers_D, self.config.loss.lambda_feat)

    def _image_d_losses(self, disc, cond, real, fakes):
        """Image D on labels ⊕ frame: (G GAN, G FM, D loss) summed over the fakes (final, raw).

        One D call per fake serves both losses: the D loss only updates D ("d" group) and the G loss only G, so
        D(fake) need not be computed twice (vid2vid's `fake.detach()` pass).
        """
        # float32 concatenations (under mixed precision cond may come in the compute dtype); D casts its input.
        f32 = lambda t: tf.cast(t, tf.float32)  # noqa: E731
        pred_real = disc(tf.concat([f32(cond), f32(real)], axis=-1), training=True)
        g_gan = g_fm = d_loss = 0.0
        for fake in fakes:
            pred_fake = disc(tf.concat([f32(cond), f32(fake)], axis=-1), training=True)
            g_gan += self._gan(pred_fake, True, False)
            g_fm += self._fm(pred_fake, pred_real)
            d_loss += 0.5 * (self._gan(pred_real, True, True) + self._gan(pred_fake, False, True))
        return g_gan, g_fm, d_loss

    # No autograph: the step has no tensor-dependent Python control flow, and converting it and everything it
    # calls took about a third of the step's tracing time.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, batch, models, ctx):
        c = self.config
        lc = c.loss
        L = int(ctx.stage[3:])
        gen = models["generator"]
        real = tf.cast(batch["frames"][:, :L], tf.float32) * 2.0 - 1.0
        labels = batch["labels"][:, :L]
        inst = batch["instances"][:, :L] if c.model.use_instance else None
        cond_all, _ = gen.encode_labels(_merge_frames(labels)[:, None],
                                        None if inst is None else _merge_frames(inst)[:, None])
        real_all = _merge_frames(real)
        logs = {}
        d_vars = list(models["image_d"].trainable_variables)
        if "video_d" in models:
            d_vars += list(models["video_d"].trainable_variables)
        g_vars = list(models["generator"].trainable_variables)
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
            seq = generate_sequence(gen, labels, inst, c.sequence.bptt_frames, training=True)
            fake = seq["img_final"]
            fake_all = _merge_frames(fake)
            fakes = [fake_all]
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
                flow = _merge_frames(seq["flow"])
                weight = _merge_frames(seq["weight"])
                flow_ref = _merge_frames(batch["flow1"][:, :L - 1])
                conf = _merge_frames(batch["conf1"][:, :L - 1])
                real_prev, real_cur = _merge_frames(real[:, :-1]), _merge_frames(real[:, 1:])
                fake_prev, fake_cur = _merge_frames(fake[:, :-1]), _merge_frames(fake[:, 1:])
                f_flow = masked_l1(flow, flow_ref, conf) * lc.lambda_F
                f_warp = masked_l1(backward_warp(real_prev, flow), real_cur, conf) * lc.lambda_T
                w_reg = masked_l1(weight, tf.zeros_like(weight), conf) * lc.lambda_W
                g_warp = masked_l1(fake_cur, tf.stop_gradient(backward_warp(fake_prev, flow_ref)), conf) * lc.lambda_T
                g_loss += f_flow + f_warp + w_reg + g_warp
                logs.update({"loss/f_flow": f_flow, "loss/f_warp": f_warp, "loss/w": w_reg, "loss/g_warp": g_warp,
                             "conf": tf.reduce_mean(conf)})
            d_used = list(models["image_d"].trainable_variables)
            for s, d in enumerate(self.temporal_steps()):
                k = c.disc.n_frames_D
                starts = list(range(0, L - (k - 1) * d))
                if not starts:  # the clip is still too short for this temporal scale
                    continue
                d_used += list(models["video_d"].nets[s].trainable_variables)
                idx = [[i + j * d for j in range(k)] for i in starts]
                fidx = [[i + j * d - d for j in range(1, k)] for i in starts]  # flow<d>[t-d] maps t to t-d
                flows = tf.gather(batch[f"flow{d}"], fidx, axis=1)  # [B, n, k-1, H, W, 2]
                vid_real = stack_video_input(_merge_frames(tf.gather(real, idx, axis=1)), _merge_frames(flows))
                vid_fake = stack_video_input(_merge_frames(tf.gather(fake, idx, axis=1)), _merge_frames(flows))
                pred_real = models["video_d"](vid_real, scale=s, training=True)
                pred_fake = models["video_d"](vid_fake, scale=s, training=True)
                gt_gan = self._gan(pred_fake, True, False)
                gt_fm = self._fm(pred_fake, pred_real)
                dt = 0.5 * (self._gan(pred_real, True, True) + self._gan(pred_fake, False, True))
                g_loss += gt_gan + gt_fm
                d_loss += dt
                logs.update({f"loss/gt{s}_gan": gt_gan, f"loss/gt{s}_feat": gt_fm, f"loss/d_video{s}": dt})
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
        ctx.minimize(tape_g, g_total, groups=g_groups)
        logs["loss"] = g_loss
        logs["loss/d"] = d_loss
        return logs

    def _baseline_losses(self, models, labels, inst, cond_all, real_all):
        """The per-frame baseline: every frame independently from its label window (no previous frames, so the
        generator's image encoder is never used), image D only."""
        c = self.config
        gen = models["baseline_g"]
        n, L = c.model.n_frames_G, labels.shape[1]
        windows = _merge_frames(tf.stack([label_windows(labels, t, n) for t in range(L)], axis=1))
        iw = None if inst is None else _merge_frames(tf.stack([label_windows(inst, t, n) for t in range(L)], axis=1))
        fake = gen(windows, None, iw, training=True)["img_final"]
        g_gan, g_fm, d_loss = self._image_d_losses(models["baseline_d"], cond_all, real_all, [fake])
        g_loss = g_gan + g_fm
        if self._vgg is not None:
            g_loss += self._vgg(fake, real_all) * c.loss.lambda_feat
        return g_loss, d_loss

    # -- evaluation --------------------------------------------------------------------------------------------------
    def eval_videos(self):
        """[(frames uint8 [T, H, W, 3], labels int32 [T, H, W], instances int32 [T, H, W])] held out."""
        c = self.config
        mult = 2 ** (c.model.n_downsampling + c.model.n_scales_spatial - 1)
        vids = []
        if c.sequence_root:
            from tfvr.data.layouts import cityscapes

            for seq in cityscapes.list_sequences(c.sequence_root, "val"):
                n = min(len(seq.labels), c.eval_frames)
                f, lab, ins = cityscapes.load_sequence(seq, n)
                vids.append((f, lab, ins))
        elif c.eval_videos > 0:
            from tfvr.data import synthetic
            from tfvr.data.synthetic_records import EVAL_SEED_OFFSET

            s = c.data.synthetic
            for j in range(c.eval_videos):
                v = synthetic.generate(s.seed + EVAL_SEED_OFFSET + j, c.eval_frames, s.height, s.width, cuts=0,
                                       blur=False)
                vids.append((v.frames, v.labels, v.instances))
        else:
            from tfvr.data import pipeline

            for batch in pipeline.build_eval_dataset(c.data):
                for i in range(batch["frames"].shape[0]):
                    f = np.clip(np.rint(batch["frames"][i].numpy() * 255), 0, 255).astype(np.uint8)
                    vids.append((f, batch["labels"][i].numpy(), batch["instances"][i].numpy()))
        out = []
        for f, lab, ins in vids:
            h, w = f.shape[1] // mult * mult, f.shape[2] // mult * mult
            out.append((f[:, :h, :w], lab[:, :h, :w], ins[:, :h, :w]))
        if not out:
            from tfvr.errors import UserError

            raise UserError("vid2vid evaluation: no held-out videos (eval_videos = 0 and the val split is empty)")
        return out

    def _step_fn(self, gen):
        key = id(gen)
        if key not in self._step_fns:
            first = tf.function(lambda lab, ins: gen(lab, None, ins, training=False))
            later = tf.function(lambda lab, prev, ins: gen(lab, prev, ins, training=False))
            self._step_fns[key] = (first, later)
        return self._step_fns[key]

    def synthesize(self, gen: Vid2VidGenerator, labels, instances=None, recurrent: bool = True) -> np.ndarray:
        """Generates a whole video (eager loop over frames, traced step functions): uint8 [T, H, W, 3].

        `recurrent=False` generates every frame as a first frame (the per-frame baseline).
        """
        first, later = self._step_fn(gen)
        labels = tf.convert_to_tensor(labels, tf.int32)[None]
        instances = None if instances is None else tf.convert_to_tensor(instances, tf.int32)[None]
        n, t_len = gen.n_frames_G, labels.shape[1]
        zeros = tf.zeros([1, labels.shape[2], labels.shape[3], gen.output_nc])
        frames = []
        for t in range(t_len):
            ins = None if instances is None or not gen.use_instance else label_windows(instances, t, n)
            lab = label_windows(labels, t, n)
            if t == 0 or not recurrent:
                out = first(lab, ins)
            else:
                prev = [frames[t - k] if t - k >= 0 else zeros for k in range(n - 1, 0, -1)]
                out = later(lab, tf.stack(prev, axis=1), ins)
            frames.append(out["img_final"])
        video = tf.concat(frames, axis=0)
        return np.clip(np.rint((video.numpy() + 1.0) * 127.5), 0, 255).astype(np.uint8)

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
