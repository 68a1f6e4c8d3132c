"""Modulated deformable convolution (DCNv2) in plain TensorFlow: the `reference` implementation.

No custom op: it runs in graph mode, under XLA (`jit_compile=True`) and in SavedModels that stock TF Serving loads,
and it is differentiable (twice, too). Call it through `tfvr.ops.deform_conv.deform_conv2d`, which validates the
arguments, resolves the padding and documents the tensor layouts; this module only computes.

How: sampling positions are clamped to [-1, H] × [-1, W] and the input is zero-padded (1 row/column before, 2
after), so all four bilinear corners of every sample are valid indices: beyond the image every corner is padding
(the sample reads 0, as in torchvision) and the clamp also zeroes the position's gradient there, as torchvision's
backward does. The mask is folded into the four bilinear weights; the sampled columns [N·Ho·Wo, G·K·C/G] meet the
kernel (rows reordered from HWIO to (group, tap, channel), so offsets and masks never need a transpose) in one
matmul (im2col). The columns come from one of two equivalent formulations, both stock TF ops:
  - under XLA, one `tf.gather` of stacked 2×2 neighbourhoods, weighted and summed, left to autodiff (XLA fuses
    the weighting and compiles the scatter-add gradient well);
  - elsewhere, a sparse-dense matmul with four weights per row and a custom gradient (a transposed sparse matmul
    for x), because TF's own gather gradient (unsorted_segment_sum) is single-threaded and several times slower.
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

    xs = tf.shape(x)
    n, h, w = xs[0], xs[1], xs[2]
    os_ = tf.shape(offset)
    ho, wo = os_[1], os_[2]

    # Samples are ordered (n, i, j, group, tap), the order of the offset channels. Positions in float32 whatever
    # x's dtype: float16 cannot hold pixel coordinates of large frames exactly.
    off = tf.reshape(tf.cast(offset, tf.float32), [n, ho, wo, g, k, 2])
    taps = tf.range(k)
    base_y = tf.cast(tf.range(ho)[:, None] * strides[0] - pads[0] + (taps // kw)[None, :] * dilations[0], tf.float32)
    base_x = tf.cast(tf.range(wo)[:, None] * strides[1] - pads[1] + (taps % kw)[None, :] * dilations[1], tf.float32)
    py = tf.clip_by_value(base_y[None, :, None, None, :] + off[..., 0], -1.0, tf.cast(h, tf.float32))
    px = tf.clip_by_value(base_x[None, None, :, None, :] + off[..., 1], -1.0, tf.cast(w, tf.float32))
    y0 = tf.floor(py)
    x0 = tf.floor(px)
    ly = py - y0
    lx = px - x0
    hy = 1.0 - ly
    hx = 1.0 - lx
    if mask is not None:
        # Fold the mask into the weights of the near and far rows.
        m = tf.reshape(tf.cast(mask, tf.float32), [n, ho, wo, g, k])
        hy, ly = hy * m, ly * m
    corner_w = tf.stack([hy * hx, hy * lx, ly * hx, ly * lx], axis=-1)  # [n, ho, wo, g, k, 4]
    y0 = tf.cast(y0, tf.int32)
    x0 = tf.cast(x0, tf.int32)

    if in_xla_context():
        cols = _columns_gather(x, y0, x0, corner_w, g, cg)
    else:
        cols = _columns_sparse(x, y0, x0, corner_w, g, cg)
    cols = tf.reshape(cols, [n * ho * wo, g * k * cg])
    kernel = tf.reshape(tf.cast(kernel, dtype), [k, g, cg, cout])
    kernel = tf.reshape(tf.transpose(kernel, [1, 0, 2, 3]), [g * k * cg, cout])
    y = tf.reshape(tf.matmul(cols, kernel), [n, ho, wo, cout])
    if bias is not None:
        y = y + tf.cast(bias, dtype)
    return y


def in_xla_context() -> bool:
    """True while tracing a function that XLA will compile (jit_compile=True, or inside one)."""
    if tf.executing_eagerly():
        return False
    from tensorflow.python.ops import control_flow_util

    graph = tf.compat.v1.get_default_graph()
    while graph is not None:
        if control_flow_util.GraphOrParentsInXlaContext(graph) or getattr(graph, "_jit_compile", False):
            return True
        graph = getattr(graph, "outer_graph", None)
    return False


def _group_index(g):
    """The group index broadcast over samples [n, ho, wo, g, k]."""
    return tf.range(g)[:, None]


def _columns_gather(x, y0, x0, corner_w, g, cg):
    """Sampled columns [n·ho·wo·g·k, cg] by one gather of stacked 2×2 neighbourhoods (the XLA path)."""
    xs = tf.shape(x)
    n, h, w = xs[0], xs[1], xs[2]
    # Padded grid: rows -1 .. H+1 of x live at rows 0 .. H+2; the 2×2 block starting at (y0, x0) sits at
    # (y0 + 1, x0 + 1) of the stacked grid, which is (H + 2) × (W + 2).
    idx = ((y0 + 1) * (w + 2) + x0 + 1) * g + _group_index(g)
    xp = tf.pad(x, [[0, 0], [1, 2], [1, 2], [0, 0]])
    xp = tf.reshape(xp, [n, h + 3, w + 3, g, cg])
    quad = tf.stack([xp[:, :-1, :-1], xp[:, :-1, 1:], xp[:, 1:, :-1], xp[:, 1:, 1:]], axis=4)  # [n,h+2,w+2,g,4,cg]
    quad = tf.reshape(quad, [n, -1, 4, cg])
    vals = tf.gather(quad, tf.reshape(idx, [n, -1]), batch_dims=1)  # [n, ho·wo·g·k, 4, cg]
    return tf.reduce_sum(vals * tf.reshape(tf.cast(corner_w, x.dtype), [n, -1, 4, 1]), axis=2)


def _columns_sparse(x, y0, x0, corner_w, g, cg):
    """Sampled columns [n·ho·wo·g·k, cg] as a sparse-dense matmul (the non-XLA path): row m of the sparse matrix
    holds the four (mask-folded) bilinear weights of sample m at its four corner pixels of the zero-padded input.

    The point is the gradient. Autodiff of a gather ends in unsorted_segment_sum, single-threaded and ≈6× slower on
    CPU than the transposed sparse matmul the custom gradient uses for x; the weights' gradient is the four corner
    values dotted with the incoming gradient. All stock TF ops (TF Serving loads them), differentiable again.
    """
    xs = tf.shape(x)
    n, h, w, c = xs[0], xs[1], xs[2], xs[3]
    hp, wp = h + 3, w + 3
    dtype = x.dtype
    # Sparse matmul kernels are float32/64 only: half-precision inputs are sampled in float32.
    work = tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype
    batch = tf.reshape(tf.range(n), [-1, 1, 1, 1, 1])
    base = ((batch * hp + y0 + 1) * wp + x0 + 1) * g + _group_index(g)  # padded pixel of the (y0, x0) corner
    cols_idx = tf.reshape(base[..., None] + tf.stack([0, g, wp * g, (wp + 1) * g]), [-1, 4])  # [M, 4]
    m = tf.shape(cols_idx)[0]
    rows = tf.broadcast_to(tf.range(m)[:, None], [m, 4])
    indices = tf.reshape(tf.stack([rows, cols_idx], axis=-1), [-1, 2])  # int32: half the memory of int64
    a_shape = tf.cast(tf.stack([m, n * hp * wp * g]), tf.int64)

    def spmm(values, dense, adjoint_a=False):
        return tf.raw_ops.SparseTensorDenseMatMul(
            a_indices=indices, a_values=values, a_shape=a_shape, b=dense, adjoint_a=adjoint_a
        )

    @tf.custom_gradient
    def sample(x, corner_w):
        xg = tf.reshape(tf.cast(tf.pad(x, [[0, 0], [1, 2], [1, 2], [0, 0]]), work), [-1, cg])  # [n·hp·wp·g, cg]
        weights = tf.reshape(tf.cast(corner_w, work), [-1])
        cols = spmm(weights, xg)

        def grad(dcols):
            dcols = tf.cast(dcols, work)
            dx = tf.reshape(spmm(weights, dcols, adjoint_a=True), [n, hp, wp, c])[:, 1 : h + 1, 1 : w + 1]
            corner_vals = tf.gather(xg, cols_idx)  # [M, 4, cg]
            dweights = tf.linalg.matvec(corner_vals, dcols)
            return tf.cast(dx, dtype), tf.cast(tf.reshape(dweights, tf.shape(corner_w)), corner_w.dtype)

        return cols, grad

    return tf.cast(sample(x, corner_w), dtype)
