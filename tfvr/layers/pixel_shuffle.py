"""Pixel shuffle (sub-pixel up-sampling) and the channel-order bridge to PyTorch.

`PixelShuffle(r)` is `tf.nn.depth_to_space` (NHWC): `[B, H, W, C·r²] → [B, rH, rW, C]`. TensorFlow and PyTorch read
the r² sub-pixel positions from the channels in a different order:

* PyTorch `nn.PixelShuffle(r)` (NCHW): output channel c at sub-pixel (i, j) is input channel `c·r² + i·r + j`;
* `tf.nn.depth_to_space` (NHWC): output channel c at sub-pixel (i, j) is input channel `(i·r + j)·C + c`.

So a PyTorch conv that feeds a PixelShuffle is converted by permuting its *output* channels with
`torch_to_depth_to_space_permutation(C·r², r)`: `kernel_tf[..., k] = kernel_torch[..., perm[k]]` (same for the bias).
`pixel_shuffle_torch_order` reproduces PyTorch's order directly (slower: reshape + transpose); the tests use it to
check the permutation.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def torch_to_depth_to_space_permutation(channels: int, scale: int) -> np.ndarray:
    """Index array `perm` (length `channels`) with `tf_channel[k] = torch_channel[perm[k]]` for pixel shuffle ×scale."""
    r2 = scale * scale
    if channels % r2:
        raise ValueError(f"{channels} channels are not divisible by scale² = {r2}")
    c_out = channels // r2
    k = np.arange(channels)
    sub, c = np.divmod(k, c_out)  # tf: k = sub·C + c
    return c * r2 + sub  # torch: c·r² + sub


def pixel_shuffle_torch_order(x, scale: int):
    """PyTorch `PixelShuffle(scale)` semantics on an NHWC tensor: `[B, H, W, C·r²] → [B, rH, rW, C]`."""
    b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    c = x.shape[-1] // (scale * scale)
    y = tf.reshape(x, [b, h, w, c, scale, scale])
    y = tf.transpose(y, [0, 1, 4, 2, 5, 3])  # b, h, i, w, j, c
    return tf.reshape(y, [b, h * scale, w * scale, c])


@keras.saving.register_keras_serializable(package="tfvr")
class PixelShuffle(keras.layers.Layer):
    """Sub-pixel up-sampling by `scale` in TensorFlow's `depth_to_space` channel order.

    Args:
        scale: int, up-sampling factor r. Input `[B, H, W, C·r²]`, output `[B, rH, rW, C]`.

    Reference: Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel
    Convolutional Neural Network", CVPR 2016. For weights trained with PyTorch's PixelShuffle, permute the preceding
    conv's output channels with `torch_to_depth_to_space_permutation`.
    """

    def __init__(self, scale: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)

    def call(self, x):
        return tf.nn.depth_to_space(x, self.scale)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        r = self.scale
        return (b, None if h is None else h * r, None if w is None else w * r, None if c is None else c // (r * r))

    def get_config(self):
        config = super().get_config()
        config.update(scale=self.scale)
        return config
