"""Adversarial losses: hinge (STTN-I), LSGAN (vid2vid), non-saturating BCE, and discriminator feature matching.

`discriminator_output` may be one tensor of logits/scores, or - for multi-scale discriminators that return
intermediate features (vid2vid / pix2pixHD) - a list with one entry per scale, each a list of feature maps whose
*last* element is the prediction; the loss is then summed over scales, as NVIDIA's `GANLoss` does.

Conventions (as the authors' code computes them):
- hinge, discriminator: `mean(relu(1 - D(real)))` and `mean(relu(1 + D(fake)))` (STTN-I `AdversarialLoss`
  with `is_disc=True`); generator: `-mean(D(fake))`.
- lsgan: `mean((D(x) - target)^2)` with target 1 for real, 0 for fake; the generator uses target 1.
- nsgan: binary cross-entropy with logits, targets 1 / 0.
`discriminator_loss` returns (real + fake) / 2 when `average=True` (STTN-I) and real + fake otherwise
(vid2vid's `loss_D_real + loss_D_fake` are summed with 0.5 each in the total: pass `average=True` there too).

`AdversarialLoss(kind)` is researchmm/STTN's `core/loss.py` `AdversarialLoss` one to one: its discriminator ends
in a sigmoid for every kind but hinge (`use_sigmoid = GAN_LOSS != 'hinge'`), so "nsgan" is `nn.BCELoss` on
probabilities (log clamped at -100 as torch does) and "lsgan" `nn.MSELoss` on probabilities — not the logits
forms above (vid2vid's LSGAN works on raw scores).
"""

from __future__ import annotations

from typing import Any, Sequence

import tensorflow as tf

__all__ = ["adversarial_loss", "generator_loss", "discriminator_loss", "feature_matching_loss", "gan_feature_losses",
           "AdversarialLoss"]

KINDS = ("hinge", "lsgan", "nsgan")


def _predictions(output: Any) -> list[tf.Tensor]:
    if isinstance(output, (list, tuple)):
        preds = []
        for item in output:
            preds.append(tf.cast(item[-1] if isinstance(item, (list, tuple)) else item, tf.float32))
        return preds
    return [tf.cast(output, tf.float32)]


def adversarial_loss(output: Any, target_is_real: bool, kind: str = "hinge", for_discriminator: bool = True) -> tf.Tensor:
    """Loss of one discriminator output against the real/fake target (summed over scales)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    total = tf.constant(0.0, tf.float32)
    for p in _predictions(output):
        if kind == "hinge":
            if for_discriminator:
                x = -p if target_is_real else p
                loss = tf.reduce_mean(tf.nn.relu(1.0 + x))
            else:
                loss = -tf.reduce_mean(p)
        elif kind == "lsgan":
            t = 1.0 if target_is_real else 0.0
            loss = tf.reduce_mean(tf.square(p - t))
        else:
            labels = tf.ones_like(p) if target_is_real else tf.zeros_like(p)
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=p))
        total = total + loss
    return total


def generator_loss(fake_output: Any, kind: str = "hinge") -> tf.Tensor:
    """The generator's adversarial loss on D(fake)."""
    return adversarial_loss(fake_output, True, kind, for_discriminator=False)


def discriminator_loss(real_output: Any, fake_output: Any, kind: str = "hinge", average: bool = True) -> tf.Tensor:
    """The discriminator's loss: real term + fake term, halved when `average` (STTN-I's (real + fake) / 2)."""
    real = adversarial_loss(real_output, True, kind, for_discriminator=True)
    fake = adversarial_loss(fake_output, False, kind, for_discriminator=True)
    total = real + fake
    return total * 0.5 if average else total


def feature_matching_loss(fake_features: Sequence[Sequence[tf.Tensor]], real_features: Sequence[Sequence[tf.Tensor]],
                          num_layers_d: int | None = None, weight: float = 10.0) -> tf.Tensor:
    """pix2pixHD / vid2vid discriminator feature matching.

    `fake_features[i]` / `real_features[i]`: the feature list of scale i (the last entry, the prediction, is not
    matched). Loss = sum_i sum_j (1 / num_D) * (4 / (n_layers_D + 1)) * weight * mean|fake_ij - stop_grad(real_ij)|,
    as NVIDIA's `loss_G_GAN_Feat` with `lambda_feat = weight`. `num_layers_d` defaults to
    len(features of a scale) - 2 (pix2pixHD's discriminator returns n_layers + 2 tensors).
    """
    num_d = len(fake_features)
    total = tf.constant(0.0, tf.float32)
    for fake_i, real_i in zip(fake_features, real_features):
        n_layers = num_layers_d if num_layers_d is not None else len(fake_i) - 2
        feat_w = 4.0 / (n_layers + 1)
        for f, r in zip(list(fake_i)[:-1], list(real_i)[:-1]):
            diff = tf.abs(tf.cast(f, tf.float32) - tf.stop_gradient(tf.cast(r, tf.float32)))
            total = total + (1.0 / num_d) * feat_w * weight * tf.reduce_mean(diff)
    return total


def gan_feature_losses(pred_real: Any, pred_fake: Any, kind: str, num_layers_d: int | None = None,
                       fm_weight: float = 10.0) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """vid2vid / pix2pixHD's three losses from one pair of discriminator outputs (multi-scale feature lists):
    (G adversarial on D(fake) with the real target, G feature matching, D loss ½(real + fake)).

    One D(fake) serves both sides: the D loss only updates D and the G losses only G (the caller's tapes and
    optimizer groups), so D(fake) need not be computed twice (vid2vid's `fake.detach()` pass).
    """
    g_gan = adversarial_loss(pred_fake, True, kind, for_discriminator=False)
    g_fm = feature_matching_loss(pred_fake, pred_real, num_layers_d, fm_weight)
    d_loss = 0.5 * (adversarial_loss(pred_real, True, kind, for_discriminator=True)
                    + adversarial_loss(pred_fake, False, kind, for_discriminator=True))
    return g_gan, g_fm, d_loss


class AdversarialLoss:
    """researchmm/STTN `AdversarialLoss(type=kind)`: `loss(outputs, is_real, is_disc)`.

    - hinge: discriminator `mean(relu(1 - D(real)))` / `mean(relu(1 + D(fake)))`; generator `mean(-D(fake))`.
    - nsgan: `BCELoss(p, label)` = -mean(label · log p + (1 - label) · log(1 - p)), each log clamped at -100;
      `p` = the discriminator's sigmoid output.
    - lsgan: `MSELoss(p, label)` = mean((p - label)²) on the sigmoid output.
    Labels: `target_real_label` (1) for is_real, `target_fake_label` (0) otherwise; the generator calls
    `loss(D(fake), True, False)`. `mean` is the reduction (default `tf.reduce_mean`; STTN-I passes its
    all-replica mean so that N replicas train like one device).
    """

    def __init__(self, kind: str = "nsgan", target_real_label: float = 1.0, target_fake_label: float = 0.0,
                 mean=None):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.real_label = float(target_real_label)
        self.fake_label = float(target_fake_label)
        self.mean = mean or tf.reduce_mean

    @property
    def needs_sigmoid(self) -> bool:
        """Whether the discriminator must end in a sigmoid (STTN: `use_sigmoid = GAN_LOSS != 'hinge'`)."""
        return self.kind != "hinge"

    def __call__(self, outputs, is_real: bool, is_disc: bool = False) -> tf.Tensor:
        x = tf.cast(outputs, tf.float32)
        if self.kind == "hinge":
            if is_disc:
                return self.mean(tf.nn.relu(1.0 + (-x if is_real else x)))
            return self.mean(-x)
        label = self.real_label if is_real else self.fake_label
        if self.kind == "lsgan":
            return self.mean(tf.square(x - label))
        log_p = tf.maximum(tf.math.log(x), -100.0)
        log_q = tf.maximum(tf.math.log(1.0 - x), -100.0)
        return self.mean(-(label * log_p + (1.0 - label) * log_q))
