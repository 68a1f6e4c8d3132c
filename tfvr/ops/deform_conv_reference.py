"""Modulated deformable convolution (DCNv2) in plain TensorFlow: the `reference` implementation.

No custom op: it runs in graph mode, under XLA (`jit_compile=True`) and in SavedModels that stock TF Serving loads,
and autodiff gives every gradient. Call it through `tfvr.ops.deform_conv.deform_conv2d`, which validates the
arguments, resolves the padding and documents the tensor layouts; this module only computes.

How: the input is zero-padded (1 row/column before, 2 after) and its 2×2 neighbourhoods are stacked once, so one
`tf.gather(batch_dims=1)` fetches all four bilinear corners of every sample. Sampling positions are clamped to
[-1, H] × [-1, W] first: beyond that every corner is zero padding (the sample reads 0, as in torchvision) and the
clamp also zeroes the position's gradient there, as torchvision's backward does. The mask is folded into the four
bilinear weights, and the sampled columns meet the kernel in one matmul (im2col).
"""

from __future__ import annotations

import tensorflow as tf


def deform_conv2d_reference(x, offset, mask, kernel, bias, strides, pads, dilations, offset_groups):
    """DCNv2 on NHWC tensors; arguments already validated (see `deform_conv2d`).

    Args:
      x: [N, H, W, C]. offset: [N, Ho, Wo, 2·G·K] (tfvr = torchvision layout). mask: [N, Ho, Wo, G·K] or None.
      kernel: [kh, kw, C, O]. bias: [O] or None. strides, pads (top, left), dilations: (row, column) ints.
      offset_groups: G. The output size (Ho, Wo) is read from `offset`.
    Returns:
      [N, Ho, Wo, O] in x's dtype.
    """
    kh, kw, cin, cout = kernel.shape
    k = kh * kw
    g = offset_groups
    cg = cin // g
    dtype = x.dtype
    sh, sw = strides
    pt, pl = pads
    dh, dw = dilations

    xs = tf.shape(x)
    n, h, w = xs[0], xs[1], xs[2]
    os_ = tf.shape(offset)
    ho, wo = os_[1], os_[2]

    # Positions in float32 whatever x's dtype: float16 cannot hold pixel coordinates of large frames exactly.
    off = tf.reshape(tf.cast(offset, tf.float32), [n, ho, wo, g, k, 2])
    off = tf.transpose(off, [0, 1, 2, 4, 3, 5])  # [n, ho, wo, k, g, 2]: columns come out in HWIO order
    ki = tf.range(k) // kw
    kj = tf.range(k) % kw
    base_y = tf.cast(tf.range(ho)[:, None] * sh - pt + ki[None, :] * dh, tf.float32)  # [ho, k]
    base_x = tf.cast(tf.range(wo)[:, None] * sw - pl + kj[None, :] * dw, tf.float32)  # [wo, k]
    py = base_y[None, :, None, :, None] + off[..., 0]
    px = base_x[None, None, :, :, None] + off[..., 1]
    py = tf.clip_by_value(py, -1.0, tf.cast(h, tf.float32))
    px = tf.clip_by_value(px, -1.0, tf.cast(w, tf.float32))
    y0 = tf.floor(py)
    x0 = tf.floor(px)
    ly = py - y0
    lx = px - x0
    hy = 1.0 - ly
    hx = 1.0 - lx
    corner_w = tf.stack([hy * hx, hy * lx, ly * hx, ly * lx], axis=-1)  # [n, ho, wo, k, g, 4]
    if mask is not None:
        m = tf.reshape(tf.cast(mask, tf.float32), [n, ho, wo, g, k])
        corner_w = corner_w * tf.transpose(m, [0, 1, 2, 4, 3])[..., None]
    corner_w = tf.cast(corner_w, dtype)

    # Padded grid: rows -1 .. H+1 of x live at rows 0 .. H+2; the 2×2 block starting at (y0, x0) sits at
    # (y0 + 1, x0 + 1) of the stacked grid, which is (H + 2) × (W + 2).
    wp = w + 2
    gi = tf.range(g)
    idx = ((tf.cast(y0, tf.int32) + 1) * wp + tf.cast(x0, tf.int32) + 1) * g + gi
    xp = tf.pad(x, [[0, 0], [1, 2], [1, 2], [0, 0]])
    xp = tf.reshape(xp, [n, h + 3, w + 3, g, cg])
    quad = tf.stack([xp[:, :-1, :-1], xp[:, :-1, 1:], xp[:, 1:, :-1], xp[:, 1:, 1:]], axis=4)  # [n,h+2,w+2,g,4,cg]
    quad = tf.reshape(quad, [n, -1, 4, cg])
    vals = tf.gather(quad, tf.reshape(idx, [n, -1]), batch_dims=1)  # [n, ho·wo·k·g, 4, cg]
    cols = tf.reduce_sum(vals * tf.reshape(corner_w, [n, -1, 4, 1]), axis=2)
    cols = tf.reshape(cols, [n * ho * wo, k * cin])
    y = tf.matmul(cols, tf.reshape(tf.cast(kernel, dtype), [k * cin, cout]))
    y = tf.reshape(y, [n, ho, wo, cout])
    if bias is not None:
        y = y + tf.cast(bias, dtype)
    return y
