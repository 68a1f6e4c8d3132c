"""Smoothness regularisers for flows and images.

`total_variation(x)`: anisotropic L1 total variation over the two spatial axes of a channels-last tensor
`[..., H, W, C]`: mean |x[..., i+1, j, :] - x[..., i, j, :]| + mean |x[..., i, j+1, :] - x[..., i, j, :]|
(each term averaged over its own elements; "sum" sums them instead). `p=2` squares the differences.
`flow_smoothness(flow)` is the same applied to a flow `[..., H, W, 2]` (or (u, v, z) `[..., H, W, 3]`), the
regulariser STTN-R puts on its spatio-temporal flow; an optional `image` makes it edge-aware (differences
weighted by exp(-edge_weight * |image gradient|), averaged over channels).
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["total_variation", "flow_smoothness"]


def _diffs(x):
    dy = x[..., 1:, :, :] - x[..., :-1, :, :]
    dx = x[..., :, 1:, :] - x[..., :, :-1, :]
    return dy, dx


def total_variation(x, reduction: str = "mean", p: int = 1) -> tf.Tensor:
    x = tf.cast(x, tf.float32)
    dy, dx = _diffs(x)
    f = tf.abs if p == 1 else tf.square
    if reduction == "mean":
        return tf.reduce_mean(f(dy)) + tf.reduce_mean(f(dx))
    if reduction == "sum":
        return tf.reduce_sum(f(dy)) + tf.reduce_sum(f(dx))
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def flow_smoothness(flow, image=None, edge_weight: float = 10.0, reduction: str = "mean", p: int = 1) -> tf.Tensor:
    """TV of a flow `[..., H, W, 2|3]`; with `image` `[..., H, W, C]` (same leading shape) edge-aware."""
    if image is None:
        return total_variation(flow, reduction=reduction, p=p)
    flow = tf.cast(flow, tf.float32)
    image = tf.cast(image, tf.float32)
    fdy, fdx = _diffs(flow)
    idy, idx = _diffs(image)
    wy = tf.exp(-edge_weight * tf.reduce_mean(tf.abs(idy), axis=-1, keepdims=True))
    wx = tf.exp(-edge_weight * tf.reduce_mean(tf.abs(idx), axis=-1, keepdims=True))
    f = tf.abs if p == 1 else tf.square
    ty, tx = f(fdy) * wy, f(fdx) * wx
    if reduction == "mean":
        return tf.reduce_mean(ty) + tf.reduce_mean(tx)
    if reduction == "sum":
        return tf.reduce_sum(ty) + tf.reduce_sum(tx)
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
