"""A tiny Task for the framework tests: a few-conv denoiser on generated data, and a 2-optimizer GAN variant.

`python -m tests.training.toy_train --workdir W ...` is its `train/<family>.py`, which the subprocess tests
(SIGKILL resume, SIGTERM, multi-worker, flagfile typos, tfvr export) use.
"""

import dataclasses
import os
import time

import numpy as np
import tensorflow as tf

import keras

from tfvr import losses, registry
from tfvr.config import Experiment
from tfvr.training.config import OptimConfig
from tfvr.training import summaries
from tfvr.training.task import MetricGuard, OptimizerGroup, Task


@dataclasses.dataclass
class ToyModelConfig:
    features: int = 8
    nan_at_step: int = -1          # make the loss NaN at this step ...
    nan_while_lr_above: float = 0.0  # ... only while the LR is above this (0: always)
    sleep_per_step: float = 0.0    # slow the step down (host side) for the kill tests
    guard_key_value: float = 0.0   # a fake logged metric "offset/fake" (for metric-guard tests)
    loss_reduction: str = "mean"   # "sum": BasicSR-style summed Charbonnier
    warmup_only_last_steps: int = 0  # a first stage where only the last conv trains (EDVR TSA-style)


@dataclasses.dataclass
class ToyDataConfig:
    batch_size: int = 4            # global batch
    size: int = 8
    noise: float = 0.1


@dataclasses.dataclass
class ToyExperiment(Experiment):
    model: ToyModelConfig = dataclasses.field(default_factory=ToyModelConfig)
    data: ToyDataConfig = dataclasses.field(default_factory=ToyDataConfig)


def make_denoiser(features: int) -> keras.Model:
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(features, 3, padding="same", activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(features, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.Conv2D(3, 3, padding="same", name="c3")(x)
    out = keras.layers.Add()([inp, keras.layers.Activation("linear", dtype="float32")(x)])
    return keras.Model(inp, out, name="denoiser")


def make_batch(seed: int, batch: int, size: int, noise: float):
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 1, (batch, size // 2, size // 2, 3)).astype(np.float32)
    clean = np.repeat(np.repeat(base, 2, axis=1), 2, axis=2)
    noisy = clean + rng.normal(0, noise, clean.shape).astype(np.float32)
    return {"lq": noisy, "gt": clean}


@registry.register_task
class ToyTask(Task):
    name = "toy_denoise"
    experiment_cls = ToyExperiment

    def build_models(self):
        m = make_denoiser(self.config.model.features)
        m(tf.zeros([1, 8, 8, 3]))
        return {"denoiser": m}

    def build_train_dataset(self, input_context, seed):
        d = self.config.data
        per_replica = input_context.get_per_replica_batch_size(d.batch_size)

        def gen(i):
            def f(i):
                b = make_batch(int(seed) * 7919 + int(i) * 31 + input_context.input_pipeline_id, per_replica, d.size,
                               d.noise)
                return b["lq"], b["gt"]

            lq, gt = tf.numpy_function(f, [i], [tf.float32, tf.float32])
            lq.set_shape([per_replica, d.size, d.size, 3])
            gt.set_shape([per_replica, d.size, d.size, 3])
            return {"lq": lq, "gt": gt}

        return tf.data.Dataset.range(1 << 40).map(gen)

    def train_step(self, batch, models, ctx):
        cfg = self.config.model
        with tf.GradientTape() as tape:
            out = models["denoiser"](batch["lq"], training=True)
            loss = losses.charbonnier(out, batch["gt"], eps=1e-6, reduction=cfg.loss_reduction)
            if cfg.nan_at_step >= 0:
                lr = tf.cast(ctx.optimizers["main"].learning_rate, tf.float32)
                hit = tf.equal(ctx.step, cfg.nan_at_step)
                if cfg.nan_while_lr_above > 0:
                    hit = tf.logical_and(hit, lr > cfg.nan_while_lr_above)
                loss = loss * tf.where(hit, tf.constant(np.nan, tf.float32), 1.0)
        subset = None
        if ctx.stage == "warmup":
            subset = models["denoiser"].get_layer("c3").trainable_variables
        ctx.minimize(tape, loss, variables=subset, loss_reduction=cfg.loss_reduction)
        logs = {"loss": loss, "loss/l1": losses.l1(out, batch["gt"])}
        if cfg.guard_key_value:
            logs["offset/fake"] = tf.constant(cfg.guard_key_value, tf.float32)
        if cfg.sleep_per_step:
            tf.py_function(lambda: time.sleep(cfg.sleep_per_step), [], [])
        return logs

    def stage(self, step):
        return "warmup" if step < self.config.model.warmup_only_last_steps else "train"

    def guards(self):
        return [MetricGuard("offset/", warn_above=50, rollback_above=100, lr_factor=0.5, max_failures=2)]

    def evaluate(self, models):
        b = make_batch(12345, 4, self.config.data.size, self.config.data.noise)
        out = models["denoiser"](b["lq"], training=False).numpy()
        mse = float(np.mean((np.clip(out, 0, 1) - b["gt"]) ** 2))
        return {"psnr": float(10 * np.log10(1.0 / max(mse, 1e-12)))}

    def image_summaries(self, models, batch):
        out = models["denoiser"](batch["lq"], training=False)
        flow = (batch["gt"][..., :2] - 0.5) * 4
        return {"strip": summaries.image_strip(batch["lq"], out, batch["gt"]),
                "flow": summaries.flow_to_color(flow)}

    def export_module(self, models):
        model = models["denoiser"]

        class Serving(tf.Module):
            def __init__(self):
                super().__init__()
                self.model = model

            @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="frames")])
            def serving_default(self, frames):
                x = tf.cast(frames, tf.float32) / 255.0
                y = self.model(x, training=False)
                return {"restored": tf.cast(tf.round(tf.clip_by_value(y, 0.0, 1.0) * 255.0), tf.uint8)}

        return Serving()


# ---------------------------------------------------------------------------------------------------------------
# GAN variant: generator = denoiser, discriminator = a small conv net; hinge loss; two optimizer groups.


@dataclasses.dataclass
class ToyGANExperiment(ToyExperiment):
    d_optim: OptimConfig = dataclasses.field(default_factory=lambda: OptimConfig(learning_rate=2e-4, beta1=0.5))


@registry.register_task
class ToyGANTask(ToyTask):
    name = "toy_gan"
    experiment_cls = ToyGANExperiment
    ema_models = ("generator",)

    def build_models(self):
        g = make_denoiser(self.config.model.features)
        inp = keras.Input((None, None, 3))
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inp)
        x = keras.layers.LeakyReLU(0.2)(x)
        x = keras.layers.Conv2D(1, 3, padding="same")(x)
        d = keras.Model(inp, x, name="disc")
        z = tf.zeros([1, 8, 8, 3])
        d(g(z))  # call every sub-model once inside the scope
        return {"generator": g, "discriminator": d}

    def optimizer_groups(self, models):
        return [OptimizerGroup("g", models["generator"].trainable_variables, self.config.optim),
                OptimizerGroup("d", models["discriminator"].trainable_variables, self.config.d_optim)]

    def train_step(self, batch, models, ctx):
        g, d = models["generator"], models["discriminator"]
        with tf.GradientTape(persistent=True) as tape:
            fake = g(batch["lq"], training=True)
            d_real = d(batch["gt"], training=True)
            d_fake_detached = d(tf.stop_gradient(fake), training=True)
            d_loss = losses.discriminator_loss(d_real, d_fake_detached, kind="hinge")
            g_adv = losses.generator_loss(d(fake, training=True), kind="hinge")
            g_pix = losses.l1(fake, batch["gt"])
            g_loss = g_pix + 0.01 * g_adv
        ctx.minimize(tape, d_loss, groups="d")
        ctx.minimize(tape, g_loss, groups="g")
        return {"loss": g_loss, "loss/d": d_loss, "loss/g_adv": g_adv}

    def evaluate(self, models):
        return ToyTask.evaluate(self, {"denoiser": models["generator"]})

    def image_summaries(self, models, batch):
        return ToyTask.image_summaries(self, {"denoiser": models["generator"]}, batch)

    def export_module(self, models):
        return ToyTask.export_module(self, {"denoiser": models["generator"]})

