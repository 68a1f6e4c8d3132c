"""A 3-D convolution with temporal stride 1 as a sum of 2-D convolutions (`conv3d`).

TensorFlow's CPU `Conv3D` backward (`Conv3DBackpropInputV2` / `Conv3DBackpropFilterV2`) is not oneDNN's: at the
sizes STTN-I's T-PatchGAN discriminator trains at it is 10-24x slower than the same arithmetic done as 2-D
convolutions, which are (measured on a 2-core AMD EPYC, `bench/conv3d.py`; docs/performance.md). A VALID conv with a
kernel of extent kt in time and temporal stride 1 is

    out[:, t] = sum_i conv2d(x[:, t + i], kernel[i])        t = 0 .. T - kt

so it is computed as kt 2-D convolutions over the frames folded into the batch, added up; the gradient is then the
2-D convolutions' gradients. Same arithmetic, another summation order (relative differences ~1e-6 in float32).

`TFVR_CONV3D_IMPL=conv3d|conv2d` (environment, read when a function is traced) overrides what "auto" picks, e.g.
to time both in a training run (`bench/conv3d.py --train-steps N`).
"""

from __future__ import annotations

import os

import tensorflow as tf

IMPLS = ("auto", "conv3d", "conv2d")


def _use_conv2d(impl: str, temporal_stride: int) -> bool:
    if impl not in IMPLS:
        raise ValueError(f"conv3d impl must be one of {IMPLS}, got {impl!r}")
    if temporal_stride != 1 or impl == "conv3d":
        return False
    if impl == "auto":
        impl = os.environ.get("TFVR_CONV3D_IMPL", "auto") or "auto"
        if impl not in IMPLS:
            from tfvr.errors import ConfigError

            raise ConfigError(f"TFVR_CONV3D_IMPL: {impl!r} is not one of {', '.join(IMPLS)}")
        if impl == "conv3d":
            return False
    if impl == "conv2d":
        return True
    # "auto": the decomposition on CPU (where TF's Conv3D backward is slow); cuDNN's 3-D convolution on a GPU
    return not tf.config.list_logical_devices("GPU")


def conv3d(x, kernel, strides=(1, 1, 1), padding="VALID", impl: str = "auto"):
    """`tf.nn.conv3d(x, kernel, [1, *strides, 1], padding)` for channels-last `x` [B, T, H, W, C] and `kernel`
    [kt, kh, kw, C, K].

    Args:
        strides: (st, sh, sw).
        padding: "VALID" or "SAME" (SAME pads time by (kt - 1) // 2 before and the rest after, as TF does).
        impl: "conv2d" (the sum of 2-D convs; only for st == 1, else conv3d), "conv3d" (`tf.nn.conv3d`), or "auto"
            (conv2d unless a GPU is visible).
    """
    st, sh, sw = (int(s) for s in strides)
    if not _use_conv2d(impl, st):
        return tf.nn.conv3d(x, kernel, strides=[1, st, sh, sw, 1], padding=padding)
    kernel = tf.convert_to_tensor(kernel)
    kt = int(kernel.shape[0])
    if padding == "SAME" and kt > 1:
        x = tf.pad(x, [[0, 0], [(kt - 1) // 2, kt // 2], [0, 0], [0, 0], [0, 0]])
    shape = tf.shape(x)
    t_out = shape[1] - kt + 1
    frames = lambda i: tf.reshape(x[:, i:i + t_out], [-1, shape[2], shape[3], x.shape[-1]])  # noqa: E731
    out = None
    for i in range(kt):
        y = tf.nn.conv2d(frames(i), kernel[i], strides=[1, sh, sw, 1], padding=padding)
        out = y if out is None else out + y
    ys = tf.shape(out)
    return tf.reshape(out, [shape[0], t_out, ys[1], ys[2], kernel.shape[-1]])


__all__ = ["IMPLS", "conv3d"]
