"""STTN-I training: the GAN Task (generator + T-PatchGAN) for tfvr's trainer, and its experiment config.

The step follows the authors' `core/trainer.py`:

    masked = frames * (1 - m);  pred = G(masked, m);  comp = frames * (1 - m) + m * pred
    D step:  d_loss = (hinge(D(frames), real) + hinge(D(stop_grad(comp)), fake)) / 2      -> update D
    G step:  g_loss = hole_w * L1(pred*m, f*m) / mean(m) + valid_w * L1(pred*(1-m), f*(1-m)) / mean(1-m)
                      + adv_w * (-mean(D(comp)))       (D already updated, as the authors do)  -> update G

Frames are in [-1, 1] (the pipeline's [0, 1] mapped by x*2-1). PyTorch's Adam (`torch_adam`) lr 1e-4, beta=(0, 0.99)
for both networks, the discriminator with PyTorch-style spectral norm (`spectral_norm_impl="torch"`),
step decay 0.1 ** (min(step, 300k) // 150k) (`step` schedule, milestones (150000, 300000), gamma 0.1). One step
equals the authors' (tests/models/sttn_inpaint/test_train_parity.py).

Distributed correctness: every mean above is taken over the *global* batch. Each replica computes its share as
`sum over its elements / (all-replica element or mask count)` (one all-reduce of a few scalars) and the
gradients are summed over replicas (`loss_reduction="sum"`), so one step on N replicas equals one step on one
device with the same global batch, including the ratio losses (L1 / mean(m)), whose per-replica average would
not. The discriminator keeps clips apart by default (`model.discriminator.fold_batch_into_time=False`): the
authors fold each device's batch into one long clip, which makes D's input depend on the replica count.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from tfvr.config import Experiment
from tfvr.data.config import DataConfig
from tfvr.training.config import OptimConfig
from tfvr.training.task import OptimizerGroup, Task

from .config import ModelConfig, as_kwargs
from .discriminator import TPatchGANDiscriminator
from .generator import STTNInpaintGenerator


def _authors_optim() -> OptimConfig:
    # the authors' torch.optim.Adam (epsilon 1e-8 after the bias correction: "torch_adam")
    return OptimConfig(optimizer="torch_adam", learning_rate=1e-4, beta1=0.0, beta2=0.99, epsilon=1e-8, schedule="step",
                       milestones=(150_000, 300_000), gamma=0.1)


def _inpaint_data() -> DataConfig:
    return DataConfig(task="inpaint", num_frames=5, crop_size=96, random_frames_prob=0.5, batch_size=8,
                      rot90=False, vflip=False, temporal_reverse=False)


@dataclasses.dataclass
class LossConfig:
    """Weights of the generator's loss terms (the authors' configs: 1, 1, 0.01) and the GAN loss kind."""

    hole_weight: float = 1.0
    valid_weight: float = 1.0
    adversarial_weight: float = 0.01
    gan_loss: str = "hinge"


@dataclasses.dataclass
class STTNInpaintExperiment(Experiment):
    """`optim` is the generator's optimizer, `d_optim` the discriminator's (both the authors' Adam by default).

    The training crops (`data.crop_size`, "n" or "HxW") and the exported model size (`model.height` x `model.width`)
    must be multiples of 4 * max(patch_divisors) (48 by default) so the head patch sizes tile the feature map.
    """

    name: str = "sttn_inpaint"
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=_inpaint_data)
    optim: OptimConfig = dataclasses.field(default_factory=_authors_optim)
    d_optim: OptimConfig = dataclasses.field(default_factory=_authors_optim)
    losses: LossConfig = dataclasses.field(default_factory=LossConfig)
    # Evaluate once when training starts in this process (step 0 for a new run; the `on_train_start` hook, EMA
    # weights if on) and report it beside the final metrics in eval.json as `<metric>_start`: how much training
    # improved the held-out hole PSNR.
    eval_at_start: bool = False


def _all_sum(x):
    """Sum of a per-replica scalar over all replicas (identity outside a strategy)."""
    ctx = tf.distribute.get_replica_context()
    x = tf.cast(x, tf.float32)
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)


def _global_mean(x):
    """This replica's share of the all-replica mean of `x`: sum(x) / (all-replica element count)."""
    x = tf.cast(x, tf.float32)
    return tf.reduce_sum(x) / _all_sum(tf.cast(tf.size(x), tf.float32))


def _gan(cfg: LossConfig):
    """The authors' `AdversarialLoss(type=GAN_LOSS)` (tfvr.losses), reduced to this replica's share of the
    all-replica mean."""
    from tfvr.losses import AdversarialLoss

    return AdversarialLoss(cfg.gan_loss, mean=_global_mean)


def _hinge_d(real, fake, cfg: LossConfig | None = None):
    """This replica's shares of 0.5 * D-loss(real) and 0.5 * D-loss(fake): the authors' (real + fake) / 2
    (`losses.gan_loss`: hinge by default, nsgan, lsgan)."""
    adv = _gan(cfg or LossConfig())
    return 0.5 * adv(real, True, True), 0.5 * adv(fake, False, True)


def generator_losses(pred, frames, masks, gen_score, cfg: LossConfig):
    """(total, logs) for this replica: its share of each global loss term (sums over replicas to the global)."""
    pred = tf.cast(pred, tf.float32)
    err = tf.abs(pred - frames)
    channels = tf.cast(tf.shape(frames)[-1], tf.float32)
    # L1Loss(pred*m, f*m) / mean(m) = sum(|pred-f| m) / (C * sum(m)), all sums global.
    hole = tf.reduce_sum(err * masks) / tf.maximum(channels * _all_sum(tf.reduce_sum(masks)), 1.0)
    valid = tf.reduce_sum(err * (1.0 - masks)) / tf.maximum(channels * _all_sum(tf.reduce_sum(1.0 - masks)), 1.0)
    adv = _gan(cfg)(gen_score, True, False)  # hinge: -mean(D(fake)); nsgan / lsgan on the sigmoid output
    hole_term = cfg.hole_weight * hole
    valid_term = cfg.valid_weight * valid
    adv_term = cfg.adversarial_weight * adv
    total = hole_term + valid_term + adv_term
    return total, {"loss/hole": hole_term, "loss/valid": valid_term, "loss/gan": adv_term}


class STTNInpaintTask(Task):
    """STTN-I: generator "generator" (optimizer group "g") and discriminator "discriminator" (group "d")."""

    autograph = False  # the train step has no Python control flow on tensors (faster traces)

    name = "sttn_inpaint"
    experiment_cls = STTNInpaintExperiment
    ema_models = ("generator",)

    # -- models ------------------------------------------------------------------------------------------------
    def _check_size(self, h, w, what):
        m = 4 * max(self.config.model.generator.patch_divisors)
        if h % m or w % m:
            from tfvr.errors import ConfigError

            raise ConfigError(f"{what}: {w}x{h} (w x h) must be multiples of {m} for the head patch sizes "
                              f"(patch_divisors={tuple(self.config.model.generator.patch_divisors)})")

    def __init__(self, config):
        super().__init__(config)
        from tfvr.errors import ConfigError

        if config.data.task != "inpaint":
            raise ConfigError(f"data.task: STTN-I trains on task=inpaint, got {config.data.task!r}")
        from tfvr.losses.adversarial import KINDS

        if config.losses.gan_loss not in KINDS:
            raise ConfigError(f"losses.gan_loss: expected one of {', '.join(KINDS)} (the authors' AdversarialLoss "
                              f"types), got {config.losses.gan_loss!r}")
        want_sigmoid = config.losses.gan_loss != "hinge"
        if bool(config.model.discriminator.use_sigmoid) != want_sigmoid:
            raise ConfigError(f"model.discriminator.use_sigmoid={config.model.discriminator.use_sigmoid} does not "
                              f"match losses.gan_loss={config.losses.gan_loss!r}: the authors' discriminator ends in "
                              f"a sigmoid exactly when the loss is not hinge (set use_sigmoid={want_sigmoid})")
        self._start_metrics = None

    def build_models(self):
        cfg = self.config
        ch, cw = cfg.data.crop_hw  # "n" or "HxW" (the authors train at 240x432)
        self._check_size(ch, cw, "data.crop_size")
        self._check_size(cfg.model.height, cfg.model.width, "model.height x model.width")
        gen = STTNInpaintGenerator(**as_kwargs(cfg.model.generator), name="generator")
        disc = TPatchGANDiscriminator(**as_kwargs(cfg.model.discriminator), name="discriminator")
        t = cfg.data.num_frames
        x = tf.zeros([1, t, ch, cw, 3])
        gen((x, x[..., :1]))
        disc(x)
        return {"generator": gen, "discriminator": disc}

    def optimizer_groups(self, models):
        return [OptimizerGroup("g", list(models["generator"].trainable_variables), self.config.optim),
                OptimizerGroup("d", list(models["discriminator"].trainable_variables), self.config.d_optim)]

    # -- data --------------------------------------------------------------------------------------------------
    def build_train_dataset(self, input_context, seed):
        from tfvr.data import pipeline

        cfg = dataclasses.replace(self.config.data, seed=seed)
        return pipeline.build_dataset(cfg, "train", input_context)

    # -- the step ----------------------------------------------------------------------------------------------
    def train_step(self, batch, models, ctx):
        gen, disc = models["generator"], models["discriminator"]
        frames = tf.cast(batch["frames"], tf.float32) * 2.0 - 1.0
        masks = tf.cast(batch["masks"], tf.float32)
        with tf.GradientTape() as g_tape:
            pred = tf.cast(gen((frames * (1.0 - masks), masks), training=True), tf.float32)
            comp = frames * (1.0 - masks) + masks * pred
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    real_score = tf.cast(disc(frames, training=True), tf.float32)
                    fake_score = tf.cast(disc(tf.stop_gradient(comp), training=True), tf.float32)
                    d_real, d_fake = _hinge_d(real_score, fake_score, self.config.losses)
                    d_loss = d_real + d_fake
                ctx.minimize(d_tape, d_loss, groups="d", loss_reduction="sum")
            gen_score = tf.cast(disc(comp, training=True), tf.float32)
            g_loss, logs = generator_losses(pred, frames, masks, gen_score, self.config.losses)
        ctx.minimize(g_tape, g_loss, groups="g", loss_reduction="sum")
        # Logged values are averaged over replicas: log the global value (all-reduced share) on every replica.
        logs = {"loss": g_loss, "loss/dis": d_loss, "loss/dis_real": 2 * d_real, "loss/dis_fake": 2 * d_fake, **logs}
        return {k: _all_sum(v) for k, v in logs.items()}

    def on_train_start(self, trainer):
        """`eval_at_start`: the held-out metrics before this process trains (chief only, once per process)."""
        if self.config.eval_at_start and self._start_metrics is None and trainer.is_chief:
            self._start_metrics = trainer.evaluate()
            print("held-out metrics before training: " +
                  ", ".join(f"{k} {v:.2f}" for k, v in self._start_metrics.items()), flush=True)

    # -- evaluation (the Task contract; pooled PSNR through tfvr.metrics.mse_to_psnr) ---------------------------
    def build_eval_dataset(self):
        from tfvr.data import pipeline

        return pipeline.build_eval_dataset(self.config.data)

    def eval_step(self, batch, models):
        return inpainting_errors(models["generator"], batch)

    def reduce_aggregated(self, state):
        return pooled_psnr(state)

    def evaluate(self, models):
        """Hole PSNR (dB, over masked pixels only) and whole-frame PSNR of the composite, on held-out clips
        (plus the same before training, `*_start`, with `eval_at_start`)."""
        metrics = super().evaluate(models)
        if self._start_metrics is not None:
            metrics.update({f"{k}_start": v for k, v in self._start_metrics.items() if not k.endswith("_start")})
        return metrics

    def image_summaries(self, models, batch):
        """masked | output | composite | target, one row per clip (its first frame)."""
        from tfvr.training.summaries import image_strip

        frames = tf.cast(batch["frames"], tf.float32)
        masks = tf.cast(batch["masks"], tf.float32)
        pred = models["generator"](((frames * 2 - 1) * (1 - masks), masks))
        pred = (tf.cast(pred, tf.float32) + 1) / 2
        comp = frames * (1 - masks) + masks * pred
        masked = frames * (1 - masks) + masks * 0.5  # holes shown grey
        first = lambda x: x[:, 0]  # noqa: E731
        return {"inpaint": image_strip(first(masked), first(pred), first(comp), first(frames))}

    # -- export ------------------------------------------------------------------------------------------------
    def export_module(self, models):
        from .export import InpaintExportModule

        return InpaintExportModule(models["generator"], height=self.config.model.height,
                                   width=self.config.model.width)

    def export_examples(self, module):
        t, h, w = self.config.data.num_frames, self.config.model.height, self.config.model.width
        rng = np.random.default_rng(0)
        frames = rng.integers(0, 256, size=(t, h + 8, w + 4, 3), dtype=np.uint8)  # not the model size on purpose
        masks = np.zeros((t, h + 8, w + 4, 1), np.uint8)
        masks[:, h // 4: h // 2, w // 4: w // 2] = 255
        return {"serving_default": {"frames": frames, "masks": masks}}


def inpainting_errors(gen, batch) -> dict[str, float]:
    """One batch of {"frames" [0,1], "masks"}: the squared-error sums and pixel counts of the composite over the
    holes and over the whole frames (pixel values on the 8-bit scale: the output is rounded to uint8 levels, as
    a served model's output is)."""
    frames = tf.cast(batch["frames"], tf.float32)
    masks = tf.cast(batch["masks"], tf.float32)
    pred = gen(((frames * 2 - 1) * (1 - masks), masks))
    pred = tf.round(tf.clip_by_value((tf.cast(pred, tf.float32) + 1) / 2, 0, 1) * 255) / 255
    comp = frames * (1 - masks) + masks * pred
    se = tf.square(comp - frames).numpy()
    m = np.broadcast_to(masks.numpy(), se.shape)
    return {"hole_se": float((se * m).sum()), "hole_n": float(m.sum()), "all_se": float(se.sum()),
            "all_n": float(se.size)}


def pooled_psnr(state: dict) -> dict[str, float]:
    """{"psnr_hole", "psnr"} (dB, peak 1) from the aggregated `inpainting_errors` of every batch: one MSE over
    every hole pixel (every pixel) of the held-out set; nan without hole pixels."""
    from tfvr.metrics import mse_to_psnr

    def total(key):  # summed in batch order, as a running sum
        return sum(float(x) for a in state[key] for x in np.atleast_1d(a))

    def psnr(se, n):
        return float("nan") if n == 0 else mse_to_psnr(se / n, peak=1.0)

    return {"psnr_hole": psnr(total("hole_se"), total("hole_n")), "psnr": psnr(total("all_se"), total("all_n"))}


def evaluate_inpainting(gen, dataset, max_batches: int = 0) -> dict:
    """{"psnr_hole", "psnr"} over a dataset of {"frames" [0,1], "masks"} batches (`inpainting_errors`,
    `pooled_psnr`; what `STTNInpaintTask.evaluate` computes)."""
    state = {"hole_se": [], "hole_n": [], "all_se": [], "all_n": []}
    for i, batch in enumerate(dataset):
        if max_batches and i >= max_batches:
            break
        for k, v in inpainting_errors(gen, batch).items():
            state[k].append(v)
    return pooled_psnr(state)


__all__ = ["STTNInpaintExperiment", "STTNInpaintTask", "LossConfig", "evaluate_inpainting", "inpainting_errors",
           "pooled_psnr", "generator_losses"]
