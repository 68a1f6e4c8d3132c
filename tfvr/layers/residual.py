"""Residual blocks without batch normalisation (EDSR / EDVR style).

`ResidualBlockNoBN` is BasicSR's `basicsr.archs.arch_util.ResidualBlockNoBN`: conv3×3 → **ReLU** → conv3×3, added
to the identity (optionally scaled by `res_scale`). Its convolutions are initialised as BasicSR's
`default_init_weights(..., scale=0.1)` does: Kaiming-normal (fan-in, gain √2) multiplied by 0.1, zero bias, so a deep
stack starts close to the identity. Used by EDVR (feature extraction, reconstruction, predeblur) and reusable by any
family (STTN-R's ResNet head).

Weight names (for converters): the two convolutions are the attributes `conv1` and `conv2` (BasicSR's names).
"""

from __future__ import annotations

import keras


def kaiming_normal_scaled(scale: float = 1.0) -> keras.initializers.Initializer:
    """PyTorch's `kaiming_normal_` (a=0, fan_in, leaky_relu gain √2) multiplied by `scale`, as a Keras initializer.

    std = scale · √(2 / fan_in), untruncated normal. BasicSR's `default_init_weights(m, scale)`.
    """
    return keras.initializers.VarianceScaling(scale=2.0 * scale * scale, mode="fan_in", distribution="untruncated_normal")


@keras.saving.register_keras_serializable(package="tfvr")
class ResidualBlockNoBN(keras.layers.Layer):
    """Residual block without BN: `x + res_scale · conv2(ReLU(conv1(x)))`.

    Args:
        num_feat: int, channels in and out (the input must have `num_feat` channels).
        res_scale: float, scale of the residual branch (BasicSR default 1).
        init_scale: float, multiplier of the Kaiming-normal init of both convs (BasicSR: 0.1). Use 1.0 for
            PyTorch-default-like magnitude.
        kernel_size: int, spatial size of both convolutions (3 in BasicSR; "same" padding).

    Input `[..., H, W, num_feat]` (channels-last, any leading batch dims folded by the caller), output the same.
    Reference: Lim et al., "Enhanced Deep Residual Networks for Single Image Super-Resolution", CVPRW 2017;
    Wang et al., "EDVR", CVPRW 2019.
    """

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0, init_scale: float = 0.1, kernel_size: int = 3,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_feat = int(num_feat)
        self.res_scale = float(res_scale)
        self.init_scale = float(init_scale)
        self.kernel_size = int(kernel_size)
        # One initializer per conv: a Keras 3 initializer repeats its values on every call, so a shared one would
        # start conv1 and conv2 with the same kernel (BasicSR draws each conv's weights independently).
        common = dict(filters=self.num_feat, kernel_size=self.kernel_size, padding="same", bias_initializer="zeros")
        self.conv1 = keras.layers.Conv2D(name="conv1", kernel_initializer=kaiming_normal_scaled(self.init_scale),
                                         **common)
        self.conv2 = keras.layers.Conv2D(name="conv2", kernel_initializer=kaiming_normal_scaled(self.init_scale),
                                         **common)

    def build(self, input_shape):
        shape = tuple(input_shape)
        if shape[-1] is not None and shape[-1] != self.num_feat:
            raise ValueError(f"ResidualBlockNoBN(num_feat={self.num_feat}) got an input with {shape[-1]} channels")
        self.conv1.build(shape)
        self.conv2.build(shape[:-1] + (self.num_feat,))
        self.built = True

    def call(self, x):
        out = self.conv2(keras.ops.relu(self.conv1(x)))
        if self.res_scale != 1.0:
            out = out * self.res_scale
        return x + out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(num_feat=self.num_feat, res_scale=self.res_scale, init_scale=self.init_scale,
                      kernel_size=self.kernel_size)
        return config
