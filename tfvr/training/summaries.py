"""TensorBoard helpers: image strips and the optical-flow colour wheel.

- `flow_to_color(flow, max_flow=None)`: the Middlebury colour coding (Baker et al., "A Database and Evaluation
  Methodology for Optical Flow"; the 55-colour wheel RY 15, YG 6, GC 4, CB 11, BM 13, MR 6 used by flowlib /
  flow_vis): hue = direction, saturation = magnitude / max_flow (per image when `max_flow` is None), white =
  no motion. Input `[..., H, W, 2]` (dx, dy) in pixels, or `[..., H, W, 3]` (u, v, z): only (u, v) is coded.
  Output float32 in [0, 1], same leading shape, 3 channels. Graph-mode friendly.
- `image_strip(*images, gap=2)`: concatenates `[N, H, W, C]` images side by side (input | warped | output |
  target), resizing each to the first one's H, W (nearest, so pixels stay visible), grey made RGB, clipped to
  [0, 1] (uint8 inputs are scaled by 1/255), with a `gap`-pixel white separator.
- `to_float_images(x)`: uint8 -> [0, 1] float32, float clipped.
- `write_images(writer, step, images, max_outputs)` / `write_scalars(writer, step, scalars, prefix)`.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import tensorflow as tf

__all__ = ["flow_to_color", "image_strip", "to_float_images", "make_colorwheel", "write_images", "write_scalars"]


def make_colorwheel() -> np.ndarray:
    """The 55 x 3 Middlebury colour wheel, values in [0, 255]."""
    ry, yg, gc, cb, bm, mr = 15, 6, 4, 11, 13, 6
    wheel = np.zeros((ry + yg + gc + cb + bm + mr, 3), np.float64)
    # (segment length, channel held at 255, channel that ramps, ramp rising?): red → yellow → green → cyan →
    # blue → magenta → red
    segments = ((ry, 0, 1, True), (yg, 1, 0, False), (gc, 1, 2, True), (cb, 2, 1, False), (bm, 2, 0, True),
                (mr, 0, 2, False))
    col = 0
    for n, full, ramp, rising in segments:
        up = np.floor(255 * np.arange(n) / n)
        wheel[col:col + n, full] = 255
        wheel[col:col + n, ramp] = up if rising else 255 - up
        col += n
    return wheel


def flow_to_color(flow, max_flow=None) -> tf.Tensor:
    flow = tf.convert_to_tensor(flow)
    flow = tf.cast(flow[..., :2], tf.float32)
    u, v = flow[..., 0], flow[..., 1]
    rad = tf.sqrt(u * u + v * v)
    if max_flow is None:
        # per image: the largest magnitude over H, W
        denom = tf.reduce_max(rad, axis=[-2, -1], keepdims=True)
    else:
        denom = tf.cast(max_flow, tf.float32)
    denom = tf.maximum(denom, 1e-5)
    u, v, rad = u / denom, v / denom, rad / denom
    wheel = tf.constant(make_colorwheel() / 255.0, tf.float32)
    ncols = wheel.shape[0]
    a = tf.atan2(-v, -u) / np.pi
    fk = (a + 1.0) / 2.0 * (ncols - 1)
    k0 = tf.cast(tf.floor(fk), tf.int32)
    k1 = k0 + 1
    k1 = tf.where(k1 == ncols, tf.zeros_like(k1), k1)
    f = (fk - tf.cast(k0, tf.float32))[..., None]
    col0 = tf.gather(wheel, k0)
    col1 = tf.gather(wheel, k1)
    col = (1.0 - f) * col0 + f * col1
    r = rad[..., None]
    inside = r <= 1.0
    col = tf.where(inside, 1.0 - r * (1.0 - col), col * 0.75)
    return tf.clip_by_value(col, 0.0, 1.0)


def to_float_images(x) -> tf.Tensor:
    x = tf.convert_to_tensor(x)
    if x.dtype == tf.uint8:
        return tf.cast(x, tf.float32) / 255.0
    return tf.clip_by_value(tf.cast(x, tf.float32), 0.0, 1.0)


def image_strip(*images, gap: int = 2) -> tf.Tensor:
    if not images:
        raise ValueError("image_strip needs at least one image batch")
    parts = []
    ref = to_float_images(images[0])
    h, w = tf.shape(ref)[1], tf.shape(ref)[2]
    for img in images:
        x = to_float_images(img)
        if x.shape.rank == 3:
            x = x[..., None]
        if x.shape[-1] == 1:
            x = tf.repeat(x, 3, axis=-1)
        x = x[..., :3]
        x = tf.image.resize(x, tf.stack([h, w]), method="nearest")
        if parts and gap:
            parts.append(tf.ones(tf.stack([tf.shape(x)[0], h, gap, 3]), tf.float32))
        parts.append(x)
    return tf.concat(parts, axis=2)


def write_images(writer, step: int, images: Mapping[str, tf.Tensor], max_outputs: int = 4, prefix: str = "") -> None:
    with writer.as_default(step=step):
        for name, img in images.items():
            tf.summary.image(prefix + name, to_float_images(img), max_outputs=max_outputs)


def write_scalars(writer, step: int, scalars: Mapping[str, float], prefix: str = "") -> None:
    with writer.as_default(step=step):
        for name, value in scalars.items():
            tf.summary.scalar(prefix + name, float(value))
