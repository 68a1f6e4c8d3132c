"""STTN-I's T-PatchGAN discriminator (the authors' `Discriminator` in `model/sttn.py`), channels-last."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfvr.ops.conv3d import conv3d


def _init():
    """N(0, 0.02), a new initializer per layer (see `tfvr.models.sttn_inpaint.generator._init`)."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


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

    **Spectral normalisation** (`spectral_norm_impl`): "torch" (default) is what the authors train with,
    `torch.nn.utils.spectral_norm` semantics (`SpectralNormConv3D`): the trainable kernel is the unnormalised
    `weight_orig`, every training call runs one power iteration on the stored (u, v) and convolves with
    `weight_orig / sigma`, sigma = u·(W v), and the gradient flows through sigma (u, v held constant). "keras" is
    `keras.layers.SpectralNormalization`, which *overwrites* the kernel with kernel / sigma in every training call
    and does not differentiate through sigma: a different training (checked against the authors' trainer by
    tests/models/sttn_inpaint/test_train_parity.py, which only the "torch" variant passes).

    Args:
        channels: base width (64).
        use_spectral_norm: spectrally normalise the first five convs (no bias); False builds the plain conv stack
            with biases (the layout of the golden parity file).
        spectral_norm_impl: "torch" (the authors' training) or "keras" (see above).
        use_sigmoid: apply a sigmoid to the output (non-hinge GAN losses).
        fold_batch_into_time: read a batch of clips as one long clip (the authors' behaviour).
    """

    def __init__(self, channels=64, use_spectral_norm=True, use_sigmoid=False, fold_batch_into_time=True,
                 spectral_norm_impl="torch", **kwargs):
        super().__init__(**kwargs)
        if spectral_norm_impl not in ("torch", "keras"):
            raise ValueError(f"spectral_norm_impl must be 'torch' or 'keras', got {spectral_norm_impl!r}")
        self.spectral_norm_impl = spectral_norm_impl
        self.fold_batch_into_time = bool(fold_batch_into_time)
        self.channels = int(channels)
        self.use_spectral_norm = bool(use_spectral_norm)
        self.use_sigmoid = bool(use_sigmoid)
        c = self.channels
        widths = [c, 2 * c, 4 * c, 4 * c, 4 * c, 4 * c]
        self.convs = []
        for i, f in enumerate(widths):
            sn = self.use_spectral_norm and i < 5
            if sn and spectral_norm_impl == "torch":
                self.convs.append(SpectralNormConv3D(f, name=f"sn_conv{i}"))
                continue
            conv = Conv3D(f, (3, 5, 5), strides=(1, 2, 2), padding="valid", use_bias=not sn,
                          kernel_initializer=_init(), bias_initializer="zeros", name=f"conv{i}")
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
                "spectral_norm_impl": self.spectral_norm_impl, "name": self.name}

    def conv_layer(self, i):
        """The i-th conv: a Conv3D (unwrapped from Keras' SpectralNormalization) or a `SpectralNormConv3D`."""
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
            if isinstance(conv, (keras.layers.SpectralNormalization, SpectralNormConv3D)):
                x = conv(x, training=training)
            else:
                x = conv(x)
            if i < 5:
                x = tf.nn.leaky_relu(x, alpha=0.2)
        if self.use_sigmoid:
            x = tf.sigmoid(x)
        return x


@keras.saving.register_keras_serializable(package="tfvr")
class Conv3D(keras.layers.Conv3D):
    """`keras.layers.Conv3D` computed by `tfvr.ops.conv3d.conv3d` (a sum of 2-D convs on CPU, where TensorFlow's
    Conv3D backward is 10-24x slower at the discriminator's sizes); same weights, same config."""

    def convolution_op(self, inputs, kernel):
        if self.data_format != "channels_last" or tuple(self.dilation_rate) != (1, 1, 1):
            return super().convolution_op(inputs, kernel)
        return conv3d(inputs, kernel, strides=self.strides, padding=self.padding.upper())


@keras.saving.register_keras_serializable(package="tfvr")
class SpectralNormConv3D(keras.layers.Layer):
    """A bias-free Conv3D, kernel (3, 5, 5), stride (1, 2, 2), "valid" padding, under PyTorch's spectral norm.

    `torch.nn.utils.spectral_norm(conv, n_power_iterations=1, eps=1e-12)` as the authors' `core/spectral_norm.py`
    has it: `kernel` (trainable) is `weight_orig`; `u` [out] and `v` [in·3·5·5] (non-trainable, torch's `weight_u` /
    `weight_v`, v in torch's (in, kd, kh, kw) order) start as normalised Gaussian vectors. A training call does
    `v = normalize(W^T u)`, `u = normalize(W v)` (W = weight_orig as an [out, in·75] matrix) without gradient,
    stores them, and convolves with `kernel / sigma`, sigma = u·(W v), differentiating through sigma; an
    inference call uses the stored (u, v) as they are.
    """

    def __init__(self, filters, kernel_size=(3, 5, 5), strides=(1, 2, 2), eps=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.strides = tuple(int(s) for s in strides)
        self.eps = float(eps)
        self.use_bias = False

    def build(self, input_shape):
        cin = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(*self.kernel_size, cin, self.filters), initializer=_init())
        n_in = cin * self.kernel_size[0] * self.kernel_size[1] * self.kernel_size[2]

        def unit(n):
            def init(shape, dtype=None):
                x = keras.random.normal(shape, dtype="float32")
                return x / tf.maximum(tf.norm(x), self.eps)
            return init

        self.u = self.add_weight(name="u", shape=(self.filters,), initializer=unit(self.filters), trainable=False,
                                 aggregation="mean")
        self.v = self.add_weight(name="v", shape=(n_in,), initializer=unit(n_in), trainable=False,
                                 aggregation="mean")
        self.built = True

    def weight_matrix(self, kernel=None):
        """The kernel as torch's [out, in·kd·kh·kw] matrix."""
        k = self.kernel if kernel is None else kernel
        return tf.reshape(tf.transpose(k, [4, 3, 0, 1, 2]), [self.filters, -1])

    def _normalize(self, x):
        return x / tf.maximum(tf.norm(x), self.eps)

    def call(self, x, training=False):
        kernel = tf.convert_to_tensor(self.kernel)
        w = self.weight_matrix(kernel)
        u, v = tf.convert_to_tensor(self.u), tf.convert_to_tensor(self.v)
        if training:
            w_const = tf.stop_gradient(w)
            v = self._normalize(tf.linalg.matvec(w_const, u, transpose_a=True))
            u = self._normalize(tf.linalg.matvec(w_const, v))
            self.u.assign(u)
            self.v.assign(v)
        u, v = tf.stop_gradient(u), tf.stop_gradient(v)
        sigma = tf.tensordot(u, tf.linalg.matvec(w, v), 1)
        k = tf.cast(kernel / sigma, x.dtype)
        return conv3d(x, k, strides=self.strides, padding="VALID")

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "eps": self.eps}
