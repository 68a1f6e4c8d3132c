"""Pixel losses: Charbonnier, L1, MSE, with an optional per-pixel weight (e.g. a hole mask); `pixel_loss(kind, ...)`
by name; vid2vid's `masked_l1`.

Reduction (all three):
- "mean" (default): the average over every element (batch, time, pixels, channels), like BasicSR's
  `reduction="mean"` and PyTorch's `L1Loss()`. This is what `StepContext.minimize(..., loss_reduction="mean")`
  expects.
- "sum": the sum over every element, like BasicSR's `reduction="sum"` (EDVR's published configs use
  `CharbonnierLoss(reduction="sum")`). Its scale grows with batch size and patch size; pass
  `loss_reduction="sum"` to `minimize` so the gradients are summed over replicas.
- "none": the element-wise loss, same shape as the inputs.
With `weight`, "mean" divides by the number of elements (BasicSR's `weight_reduce_loss`, not by the weight sum);
use `masked_mean` for an average over the weighted region only.

Charbonnier: `sqrt((pred - target)^2 + eps)`. `eps` is added under the square root, not squared: BasicSR's
default `eps=1e-12` adds 1e-6 per element to an exact match (the loss never reaches 0); the EDVR paper's
"epsilon = 1e-3" in `sqrt(x^2 + eps^2)` is `eps=1e-6` here.
Inputs are cast to float32 (mixed precision keeps the loss in float32).
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["charbonnier", "l1", "mse", "masked_mean", "masked_l1", "pixel_loss", "reduce"]


def reduce(x: tf.Tensor, reduction: str = "mean") -> tf.Tensor:
    if reduction == "mean":
        return tf.reduce_mean(x)
    if reduction == "sum":
        return tf.reduce_sum(x)
    if reduction == "none":
        return x
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _prep(pred, target, weight):
    pred = tf.cast(pred, tf.float32)
    target = tf.cast(target, tf.float32)
    weight = None if weight is None else tf.cast(weight, tf.float32)
    return pred, target, weight


def _elementwise(loss, weight, reduction: str) -> tf.Tensor:
    if weight is not None:
        loss = loss * weight
    return reduce(loss, reduction)


def charbonnier(pred, target, eps: float = 1e-12, reduction: str = "mean", weight=None) -> tf.Tensor:
    """Charbonnier loss `sqrt((pred - target)^2 + eps)` (BasicSR `CharbonnierLoss`; see the module docstring
    for `eps` and `reduction`). `weight` broadcasts against the inputs."""
    pred, target, weight = _prep(pred, target, weight)
    return _elementwise(tf.sqrt(tf.square(pred - target) + eps), weight, reduction)


def l1(pred, target, reduction: str = "mean", weight=None) -> tf.Tensor:
    """Mean (or sum) absolute error."""
    pred, target, weight = _prep(pred, target, weight)
    return _elementwise(tf.abs(pred - target), weight, reduction)


def mse(pred, target, reduction: str = "mean", weight=None) -> tf.Tensor:
    """Mean (or sum) squared error."""
    pred, target, weight = _prep(pred, target, weight)
    return _elementwise(tf.square(pred - target), weight, reduction)


PIXEL_LOSSES = ("l1", "l2", "mse", "charbonnier")


def pixel_loss(kind: str, pred, target, eps: float = 1e-6) -> tf.Tensor:
    """The mean pixel loss a config names: "l1", "l2" / "mse" or "charbonnier" (`eps` under the square root; 1e-6
    by default, the EDVR paper's epsilon 1e-3 squared). MemVSR's `nextframe.loss` is read with it."""
    if kind == "l1":
        return l1(pred, target)
    if kind in ("l2", "mse"):
        return mse(pred, target)
    if kind == "charbonnier":
        return charbonnier(pred, target, eps=eps)
    raise ValueError(f"pixel loss must be one of {PIXEL_LOSSES}, got {kind!r}")


def masked_l1(a, b, mask) -> tf.Tensor:
    """vid2vid's `MaskedL1Loss`: the mean over every element of |mask·a − mask·b| (mask broadcast over channels;
    not an average over the masked region, see `masked_mean` for that)."""
    mask = tf.cast(mask, tf.float32)
    return tf.reduce_mean(tf.abs(tf.cast(a, tf.float32) * mask - tf.cast(b, tf.float32) * mask))


def masked_mean(x, mask, eps: float = 1e-8) -> tf.Tensor:
    """sum(x * mask) / sum(mask broadcast to x) - an average over the masked region only."""
    x = tf.cast(x, tf.float32)
    mask = tf.broadcast_to(tf.cast(mask, tf.float32), tf.shape(x))
    return tf.reduce_sum(x * mask) / (tf.reduce_sum(mask) + eps)
