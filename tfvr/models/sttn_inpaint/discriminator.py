"""STTN-I's T-PatchGAN discriminator (the authors' `Discriminator` in `model/sttn.py`), channels-last."""

from __future__ import annotations

import keras
import tensorflow as tf

_INIT = keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


@keras.saving.register_keras_serializable(package="tfvr")
class TPatchGANDiscriminator(keras.Model):
    """Temporal PatchGAN (Chang et al. 2019) as used by STTN-I (Zeng, Fu, Chao, ECCV 2020).

    Six Conv3D, kernel (3, 5, 5), stride (1, 2, 2), channels c-2c-4c-4c-4c-4c (c = 64); the first is zero-padded
    by 1 in every dimension, the others by (1, 2, 2); LeakyReLU(0.2) after all but the last. With
    `use_spectral_norm` the first five convs are wrapped in Keras's `keras.layers.SpectralNormalization` and have
    no bias (as the authors' convs under SN); the last is a plain conv with a bias.

    **The batch is folded into time** by default, as the authors do: the input `[B, T, H, W, 3]` is read as one
    clip of B·T frames (`[1, B·T, H, W, 3]`), so the temporal kernels also straddle the boundary between clips.
    What D sees then depends on how many clips one device holds (the authors fold each GPU's share of the batch),
    so a training step is not the same on 1 and 2 replicas; `fold_batch_into_time=False` keeps clips apart
    (`[B, T, ...]` as B clips, each zero-padded in time), which makes the step independent of the replica count.
    A rank-4 input `[N, H, W, 3]` is one clip of N frames either way. Output: `[1, B·T, H', W', 4c]` folded, or
    `[B, T, H', W', 4c]` (H' ≈ H/32; `sigmoid` applied only with `use_sigmoid`, i.e. not for the hinge loss).

    Args:
        channels: base width (64).
        use_spectral_norm: wrap the first five convs in SpectralNormalization (training); False builds the plain
            conv stack with biases (the layout of the golden parity file).
        use_sigmoid: apply a sigmoid to the output (non-hinge GAN losses).
        fold_batch_into_time: read a batch of clips as one long clip (the authors' behaviour).
    """

    def __init__(self, channels=64, use_spectral_norm=True, use_sigmoid=False, fold_batch_into_time=True, **kwargs):
        super().__init__(**kwargs)
        self.fold_batch_into_time = bool(fold_batch_into_time)
        self.channels = int(channels)
        self.use_spectral_norm = bool(use_spectral_norm)
        self.use_sigmoid = bool(use_sigmoid)
        c = self.channels
        widths = [c, 2 * c, 4 * c, 4 * c, 4 * c, 4 * c]
        self.convs = []
        for i, f in enumerate(widths):
            sn = self.use_spectral_norm and i < 5
            conv = keras.layers.Conv3D(f, (3, 5, 5), strides=(1, 2, 2), padding="valid", use_bias=not sn,
                                       kernel_initializer=_INIT, bias_initializer="zeros", name=f"conv{i}")
            if sn:
                conv = keras.layers.SpectralNormalization(conv, name=f"sn_conv{i}")
            self.convs.append(conv)
        self._in_channels = [3] + widths[:-1]

    def build(self, input_shape=None):
        for conv, cin in zip(self.convs, self._in_channels):
            conv.build((None, None, None, None, cin))
        self.built = True

    def build_for_weights(self):
        """Creates every weight (they do not depend on the frame size), e.g. before `load_weights`."""
        if not self.built:
            self.build()

    def get_config(self):
        return {"channels": self.channels, "use_spectral_norm": self.use_spectral_norm,
                "use_sigmoid": self.use_sigmoid, "fold_batch_into_time": self.fold_batch_into_time,
                "name": self.name}

    def conv_layer(self, i):
        """The i-th Conv3D (unwrapped from SpectralNormalization when wrapped)."""
        conv = self.convs[i]
        return conv.layer if isinstance(conv, keras.layers.SpectralNormalization) else conv

    def call(self, frames, training=False):
        x = tf.convert_to_tensor(frames)
        shape = tf.shape(x)
        if x.shape.rank == 5 and not self.fold_batch_into_time:
            pass
        elif x.shape.rank == 5:
            x = tf.reshape(x, [1, shape[0] * shape[1], shape[2], shape[3], x.shape[-1] or 3])
        elif x.shape.rank == 4:
            x = x[tf.newaxis]
        else:
            raise ValueError(f"TPatchGANDiscriminator expects [B, T, H, W, C] or [N, H, W, C], got rank {x.shape.rank}")
        for i, conv in enumerate(self.convs):
            pad = [[0, 0], [1, 1], [1, 1], [1, 1], [0, 0]] if i == 0 else [[0, 0], [1, 1], [2, 2], [2, 2], [0, 0]]
            x = tf.pad(x, pad)
            if isinstance(conv, keras.layers.SpectralNormalization):
                x = conv(x, training=training)
            else:
                x = conv(x)
            if i < 5:
                x = tf.nn.leaky_relu(x, alpha=0.2)
        if self.use_sigmoid:
            x = tf.sigmoid(x)
        return x
