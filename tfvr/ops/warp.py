"""Differentiable dense warping: a bilinear backward warp by a 2-D flow and a trilinear spatio-temporal sampler.

Both ops are plain TensorFlow (`tf.gather(..., batch_dims=1)` on flattened images), so they run eagerly, inside
`tf.function`, under `jit_compile=True`, inside exported SavedModels (no custom op) and under `tf.distribute`.
H, W (and T) may be dynamic; shapes follow tfvr's conventions: channels-last, flows in **pixels** as (dx, dy).

Sampling convention (backward warp): output pixel (x, y) reads the input at (x + dx, y + dy), where pixel centres
are the integer coordinates 0..W-1 / 0..H-1. This is PyTorch `grid_sample(..., align_corners=True)` applied to the
normalised grid `2 * (p + flow) / (size - 1) - 1` (what BasicSR's `flow_warp` and vid2vid's `resample` do).

Border handling (`padding`):
- ``"border"``: the sampling coordinate is clamped to [0, W-1] × [0, H-1] *before* interpolation, so points outside
  the image read the nearest edge pixel and the gradient with respect to the flow is zero along a clamped axis.
  This is exactly `grid_sample(padding_mode="border", align_corners=True)`.
- ``"zeros"``: each of the bilinear corners that falls outside the image contributes zero (the image is treated as
  zero-padded), so a point half a pixel outside reads half of the edge pixel. This is
  `grid_sample(padding_mode="zeros", align_corners=True)` and the STTN paper's sum-over-existing-pixels formula.

The temporal coordinate of `spatio_temporal_sample` is always clamped to [0, T-1]: z is a continuous frame index,
z = 2.3 blends frames 2 and 3 with weights 0.7 / 0.3 (Kim et al., ECCV 2018, eq. 2).

Coordinates and interpolation weights are computed in float32 (float64 if the flow is float64) whatever the image
dtype, so float16/bfloat16 images under mixed precision lose no sub-pixel accuracy; the result has the images' dtype.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["backward_warp", "spatio_temporal_sample", "flow_grid"]

_PADDINGS = ("border", "zeros")


def flow_grid(height, width, dtype=tf.float32):
    """Pixel-centre coordinates: (x [H, W], y [H, W]) with x = column index and y = row index."""
    ys = tf.range(height, dtype=dtype)
    xs = tf.range(width, dtype=dtype)
    y, x = tf.meshgrid(ys, xs, indexing="ij")
    return x, y


def _coord_dtype(flow):
    flow = tf.convert_to_tensor(flow)
    # float64 stays float64 (gradient checks); everything else is promoted to float32.
    return tf.cast(flow, tf.float64 if flow.dtype == tf.float64 else tf.float32)


def _check_padding(padding: str) -> None:
    if padding not in _PADDINGS:
        raise ValueError(f"padding must be one of {_PADDINGS}, got {padding!r}")


def _corners(coord, size, padding):
    """Integer corner indices (clamped into range), their weights and validity for one axis.

    coord: float32 sampling coordinates; size: int32 scalar (the axis length).
    Returns (i0, i1, w0, w1) where i* are int32 indices in [0, size-1] and w* float32 weights that already
    include zero padding (weight 0 for a corner outside the image).
    """
    max_c = tf.cast(size - 1, coord.dtype)
    if padding == "border":
        coord = tf.clip_by_value(coord, 0.0, max_c)
    else:
        # Far-away points read only zeros; bounding them keeps the int32 cast from overflowing and changes nothing.
        coord = tf.clip_by_value(coord, -2.0, max_c + 2.0)
    c0 = tf.stop_gradient(tf.floor(coord))
    w1 = coord - c0
    w0 = 1.0 - w1
    i0 = tf.cast(c0, tf.int32)
    i1 = i0 + 1
    if padding == "zeros":
        w0 = w0 * tf.cast((i0 >= 0) & (i0 <= size - 1), coord.dtype)
        w1 = w1 * tf.cast((i1 >= 0) & (i1 <= size - 1), coord.dtype)
    i0 = tf.clip_by_value(i0, 0, size - 1)
    i1 = tf.clip_by_value(i1, 0, size - 1)
    return i0, i1, w0, w1


def backward_warp(images, flow, padding: str = "border", name: str | None = None):
    """Bilinear backward warp: ``out[b, y, x] = images[b, y + flow[b, y, x, 1], x + flow[b, y, x, 0]]``.

    Args:
      images: float tensor [B, H, W, C].
      flow: float tensor [B, H, W, 2] in pixels, channel 0 = dx (columns), channel 1 = dy (rows).
      padding: "border" (clamp coordinates, = grid_sample border/align_corners=True) or "zeros"
        (out-of-image corners read 0). See the module docstring.
    Returns:
      [B, H, W, C] with the images' dtype. Differentiable with respect to images and flow.
    """
    _check_padding(padding)
    with tf.name_scope(name or "backward_warp"):
        images = tf.convert_to_tensor(images)
        flow = _coord_dtype(flow)
        shape = tf.shape(images)
        b, h, w, c = shape[0], shape[1], shape[2], shape[3]
        gx, gy = flow_grid(h, w, flow.dtype)
        x = gx[None] + flow[..., 0]
        y = gy[None] + flow[..., 1]
        x0, x1, wx0, wx1 = _corners(x, w, padding)
        y0, y1, wy0, wy1 = _corners(y, h, padding)
        flat = tf.reshape(images, [b, h * w, c])

        def tap(yi, xi, weight):
            idx = tf.reshape(yi * w + xi, [b, h * w])
            vals = tf.gather(flat, idx, batch_dims=1)
            return vals * tf.cast(tf.reshape(weight, [b, h * w, 1]), images.dtype)

        out = tap(y0, x0, wy0 * wx0) + tap(y0, x1, wy0 * wx1) + tap(y1, x0, wy1 * wx0) + tap(y1, x1, wy1 * wx1)
        return tf.reshape(out, [b, h, w, c])


def spatio_temporal_sample(frames, flow, padding: str = "border", name: str | None = None):
    """Trilinear spatio-temporal sampler (STTN, Kim et al. ECCV 2018): one output frame from a stack of T frames.

    ``out[b, y, x] = Σ_{m,n,k} frames[b, k, n, m] · max(0, 1-|x+u-m|) · max(0, 1-|y+v-n|) · max(0, 1-|z-k|)``

    Args:
      frames: float tensor [B, T, H, W, C].
      flow: float tensor [B, H, W, 3] = (u, v, z): u, v in pixels (dx, dy as in `backward_warp`), z a continuous
        frame index, clamped to [0, T-1].
      padding: spatial border handling, "border" or "zeros" (see the module docstring).
    Returns:
      [B, H, W, C] with the frames' dtype. Differentiable with respect to frames, u, v and z.
    """
    _check_padding(padding)
    with tf.name_scope(name or "spatio_temporal_sample"):
        frames = tf.convert_to_tensor(frames)
        flow = _coord_dtype(flow)
        shape = tf.shape(frames)
        b, t, h, w, c = shape[0], shape[1], shape[2], shape[3], shape[4]
        gx, gy = flow_grid(h, w, flow.dtype)
        x = gx[None] + flow[..., 0]
        y = gy[None] + flow[..., 1]
        x0, x1, wx0, wx1 = _corners(x, w, padding)
        y0, y1, wy0, wy1 = _corners(y, h, padding)
        z0, z1, wz0, wz1 = _corners(flow[..., 2], t, "border")
        flat = tf.reshape(frames, [b, t * h * w, c])
        n = h * w

        def tap(zi, yi, xi, weight):
            idx = tf.reshape((zi * h + yi) * w + xi, [b, n])
            vals = tf.gather(flat, idx, batch_dims=1)
            return vals * tf.cast(tf.reshape(weight, [b, n, 1]), frames.dtype)

        out = 0
        for zi, wz in ((z0, wz0), (z1, wz1)):
            for yi, wy in ((y0, wy0), (y1, wy1)):
                for xi, wx in ((x0, wx0), (x1, wx1)):
                    out = out + tap(zi, yi, xi, wz * wy * wx)
        return tf.reshape(out, [b, h, w, c])
