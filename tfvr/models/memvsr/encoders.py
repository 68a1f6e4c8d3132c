"""Encoders / decoders of MemVSR's next-frame prediction (seed 004's `Unet_Down` / `Unet_Up` and ResNet pair).

Both encoders map a frame `[N, H, W, channels[0]]` to one feature map per level, level i at H/2^i with
`channels[i]` channels; the last one is what the memory stores and reads (its channel count is the seed's
`embed_size`, "the U-Net/ResNet's last dimension"). The decoders map the (memory-fused) deepest features back
to `[N, H, W, out_channels]`.

* U-Net: per level, a stride-2 3×3 conv + a 3×3 conv (LeakyReLU 0.2). The decoder goes up level by level
  (bilinear ×2 + 3×3 conv); `skip[i]` concatenates the encoder's level-i map (level 0 = the input frame) before
  a second 3×3 conv: the seed's per-level skip switches.
* ResNet: per level, a stride-2 3×3 conv + `res_blocks` residual blocks (`tfvr.layers.residual`); the decoder
  mirrors it without skips (the seed's action-recognition-style encoder/decoder).

The output head is zero-initialised when `zero_head=True`, so a model predicting a residual or a flow starts
exactly at "copy the last frame".

Reference: Ronneberger et al., "U-Net", MICCAI 2015; He et al., "Deep Residual Learning", CVPR 2016.
"""

import keras
import tensorflow as tf

from tfvr.layers.residual import ResidualBlockNoBN

__all__ = ["UNetEncoder", "UNetDecoder", "ResNetEncoder", "ResNetDecoder", "build_encoder_decoder"]


def _lrelu(x):
    return tf.nn.leaky_relu(x, 0.2)


def _conv(ch, strides=1, name=None, zeros=False):
    init = "zeros" if zeros else "glorot_uniform"
    return keras.layers.Conv2D(ch, 3, strides=strides, padding="same", kernel_initializer=init, name=name)


def _up2(x):
    s = tf.shape(x)
    return tf.image.resize(x, [2 * s[1], 2 * s[2]], method="bilinear")


class UNetEncoder(keras.layers.Layer):
    """U-Net contracting path.

    Args:
        channels: tuple of ints (image channels, level-1 channels, ...), e.g. (3, 32, 64, 128).

    Call: `[N, H, W, channels[0]]` (H, W multiples of 2^levels) → list of `[N, H/2^i, W/2^i, channels[i]]`,
    i = 1..levels.
    """

    def __init__(self, channels=(3, 32, 64, 128), **kwargs):
        super().__init__(**kwargs)
        self.channels = tuple(int(c) for c in channels)
        self.levels = len(self.channels) - 1
        for i in range(1, self.levels + 1):
            setattr(self, f"down_{i}", _conv(self.channels[i], 2, name=f"down_{i}"))
            setattr(self, f"conv_{i}", _conv(self.channels[i], name=f"conv_{i}"))

    def build(self, input_shape=None):
        for i in range(1, self.levels + 1):
            getattr(self, f"down_{i}").build((None, None, None, self.channels[i - 1]))
            getattr(self, f"conv_{i}").build((None, None, None, self.channels[i]))
        self.built = True

    def call(self, x):
        feats = []
        for i in range(1, self.levels + 1):
            x = _lrelu(getattr(self, f"conv_{i}")(_lrelu(getattr(self, f"down_{i}")(x))))
            feats.append(x)
        return feats

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


class UNetDecoder(keras.layers.Layer):
    """U-Net expanding path with per-level skip switches.

    Args:
        channels: the encoder's channels tuple.
        skip: tuple of bools, one per level: `skip[i]` concatenates the encoder's level-i map (level 0 = the
            input frame) at the matching resolution.
        out_channels: channels of the output.
        zero_head: zero-initialise the output conv.

    Call: `(deep [N, h, w, C], skips)` with `skips = [frame, level 1, ..., level L-1]` → `[N, H, W, out_channels]`.
    """

    def __init__(self, channels=(3, 32, 64, 128), skip=(True, True, True), out_channels=3, zero_head=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.channels = tuple(int(c) for c in channels)
        self.levels = len(self.channels) - 1
        self.skip = tuple(bool(s) for s in skip)
        if len(self.skip) != self.levels:
            raise ValueError(f"UNetDecoder: {len(self.skip)} skip switches for {self.levels} levels")
        self.out_channels = int(out_channels)
        self.zero_head = bool(zero_head)
        for i in range(self.levels, 0, -1):
            setattr(self, f"up_{i}", _conv(self._width(i), name=f"up_{i}"))
            setattr(self, f"merge_{i}", _conv(self._width(i), name=f"merge_{i}"))
        self.head = _conv(self.out_channels, name="head", zeros=self.zero_head)

    def _width(self, i):
        # stage i brings level i up to level i-1; at full resolution keep level 1's width (3 would be too thin)
        return self.channels[max(i - 1, 1)]

    def build(self, input_shape=None):
        prev = self.channels[-1]
        for i in range(self.levels, 0, -1):
            w = self._width(i)
            getattr(self, f"up_{i}").build((None, None, None, prev))
            extra = self.channels[i - 1] if self.skip[i - 1] else 0
            getattr(self, f"merge_{i}").build((None, None, None, w + extra))
            prev = w
        self.head.build((None, None, None, prev))
        self.built = True

    def call(self, deep, skips):
        x = deep
        for i in range(self.levels, 0, -1):
            x = _lrelu(getattr(self, f"up_{i}")(_up2(x)))
            if self.skip[i - 1]:
                x = tf.concat([x, tf.cast(skips[i - 1], x.dtype)], axis=-1)
            x = _lrelu(getattr(self, f"merge_{i}")(x))
        return self.head(x)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "skip": self.skip,
                "out_channels": self.out_channels, "zero_head": self.zero_head}


class ResNetEncoder(keras.layers.Layer):
    """Residual encoder: per level a stride-2 conv and `res_blocks` ResidualBlockNoBN.

    Args:
        channels: (image channels, level-1 channels, ...).
        res_blocks: residual blocks per level.

    Call: as `UNetEncoder`.
    """

    def __init__(self, channels=(3, 32, 64, 128), res_blocks=1, **kwargs):
        super().__init__(**kwargs)
        self.channels = tuple(int(c) for c in channels)
        self.levels = len(self.channels) - 1
        self.res_blocks = int(res_blocks)
        for i in range(1, self.levels + 1):
            setattr(self, f"down_{i}", _conv(self.channels[i], 2, name=f"down_{i}"))
            for j in range(self.res_blocks):
                setattr(self, f"res_{i}_{j}", ResidualBlockNoBN(self.channels[i], init_scale=0.1, name=f"res_{i}_{j}"))

    def build(self, input_shape=None):
        for i in range(1, self.levels + 1):
            getattr(self, f"down_{i}").build((None, None, None, self.channels[i - 1]))
            for j in range(self.res_blocks):
                getattr(self, f"res_{i}_{j}").build((None, None, None, self.channels[i]))
        self.built = True

    def call(self, x):
        feats = []
        for i in range(1, self.levels + 1):
            x = _lrelu(getattr(self, f"down_{i}")(x))
            for j in range(self.res_blocks):
                x = getattr(self, f"res_{i}_{j}")(x)
            feats.append(x)
        return feats

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "res_blocks": self.res_blocks}


class ResNetDecoder(keras.layers.Layer):
    """Residual decoder (no skips): per level bilinear ×2, a 3×3 conv and `res_blocks` ResidualBlockNoBN.

    Args: channels, res_blocks as `ResNetEncoder`; out_channels, zero_head as `UNetDecoder`.
    Call: `(deep, skips)` (skips ignored) → `[N, H, W, out_channels]`.
    """

    def __init__(self, channels=(3, 32, 64, 128), res_blocks=1, out_channels=3, zero_head=False, **kwargs):
        super().__init__(**kwargs)
        self.channels = tuple(int(c) for c in channels)
        self.levels = len(self.channels) - 1
        self.res_blocks = int(res_blocks)
        self.out_channels = int(out_channels)
        self.zero_head = bool(zero_head)
        for i in range(self.levels, 0, -1):
            w = self.channels[max(i - 1, 1)]
            setattr(self, f"up_{i}", _conv(w, name=f"up_{i}"))
            for j in range(self.res_blocks):
                setattr(self, f"res_{i}_{j}", ResidualBlockNoBN(w, init_scale=0.1, name=f"res_{i}_{j}"))
        self.head = _conv(self.out_channels, name="head", zeros=self.zero_head)

    def build(self, input_shape=None):
        prev = self.channels[-1]
        for i in range(self.levels, 0, -1):
            w = self.channels[max(i - 1, 1)]
            getattr(self, f"up_{i}").build((None, None, None, prev))
            for j in range(self.res_blocks):
                getattr(self, f"res_{i}_{j}").build((None, None, None, w))
            prev = w
        self.head.build((None, None, None, prev))
        self.built = True

    def call(self, deep, skips=None):
        x = deep
        for i in range(self.levels, 0, -1):
            x = _lrelu(getattr(self, f"up_{i}")(_up2(x)))
            for j in range(self.res_blocks):
                x = getattr(self, f"res_{i}_{j}")(x)
        return self.head(x)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "res_blocks": self.res_blocks,
                "out_channels": self.out_channels, "zero_head": self.zero_head}


def build_encoder_decoder(kind, channels, skip=(), res_blocks=1, out_channels=3, zero_head=False):
    """("unet" | "resnet", ...) → (encoder, decoder) layers named "encoder" / "decoder"."""
    if kind == "unet":
        return (UNetEncoder(channels, name="encoder"),
                UNetDecoder(channels, skip, out_channels, zero_head, name="decoder"))
    if kind == "resnet":
        return (ResNetEncoder(channels, res_blocks, name="encoder"),
                ResNetDecoder(channels, res_blocks, out_channels, zero_head, name="decoder"))
    raise ValueError(f"encoder must be 'unet' or 'resnet', got {kind!r}")
