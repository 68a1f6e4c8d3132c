"""`ModulatedDeformConv2D`: EDVR's DCNv2Pack as a Keras layer (offsets and mask predicted from a guide tensor)."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tfvr.ops.deform_conv import IMPLS, _pair, deform_conv2d

# BasicSR's DCNv2Pack logs a warning when mean |offset| exceeds this (legacy EDVR used 100): the offsets diverged.
OFFSET_WARN_THRESHOLD = 50.0


@keras.saving.register_keras_serializable(package="tfvr")
class ModulatedDeformConv2D(keras.layers.Layer):
    """Modulated deformable convolution with learned offsets and mask: BasicSR's `DCNv2Pack`.

    `layer(x, guide)`: a conv (`offset_kernel`, kernel_size × kernel_size, zero-initialised so training starts
    from a plain convolution) maps `guide` to 3·G·K channels; the first two thirds are the offsets (tfvr's layout
    = torchvision's, as BasicSR's `cat(o1, o2)`), the last third through a sigmoid is the mask; then
    `tfvr.ops.deform_conv2d(x, offset, mask, kernel, bias, ...)`. Main kernel uniform(±1/√(C·K)) and bias zero, as
    BasicSR's `ModulatedDeformConv.init_weights`.

    Weight conversion from BasicSR: `conv_offset.weight` (OIHW) → `offset_kernel` by transpose(2, 3, 1, 0),
    `conv_offset.bias` → `offset_bias`, `weight` → `kernel` by the same transpose, `bias` → `bias`. No channel
    permutation.

    Divergence guard: after every call, `offset_mean_abs` (a non-trainable, on-read-synchronised scalar variable;
    across replicas its read is the mean) holds mean |offset| of that call. `offset_magnitudes(model)` collects
    them for a whole model; BasicSR warns above `OFFSET_WARN_THRESHOLD` (50).

    Args:
      filters: output channels O.
      kernel_size: int or (kh, kw).
      strides, dilation_rate: int or pair, used by both the offset conv and the deformable conv.
      padding: int or pair (zero padding both sides, as PyTorch), or "same" / "valid".
      deformable_groups: offset groups G (must divide the input channels).
      use_bias: whether the deformable conv has a bias.
      impl: "auto", "reference" or "kernel" (see `tfvr.ops.deform_conv`).
      offset_dtype: None (the layer's compute dtype) or "float32": the dtype of the offset-and-mask conv and so of
        the sampling positions. `tfvr.export.precision` sets "float32" for reduced-precision exports (offsets of
        tens of pixels lose ~0.05 px in bfloat16); the deformable conv itself stays in the compute dtype.

    Reference: Zhu et al., "Deformable ConvNets v2: More Deformable, Better Results", CVPR 2019; Wang et al.,
    "EDVR: Video Restoration with Enhanced Deformable Convolutional Networks", CVPRW 2019.
    """

    def __init__(
        self,
        filters: int,
        kernel_size=3,
        strides=1,
        padding="same",
        dilation_rate=1,
        deformable_groups: int = 8,
        use_bias: bool = True,
        impl: str = "auto",
        offset_dtype: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if offset_dtype not in (None, "float32"):
            raise ValueError(f"ModulatedDeformConv2D: offset_dtype must be None or 'float32', got {offset_dtype!r}")
        self.offset_dtype = offset_dtype
        if impl not in IMPLS:
            raise ValueError(f"ModulatedDeformConv2D: impl must be one of {IMPLS}, got {impl!r}")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = padding.lower() if isinstance(padding, str) else _pair(padding, "padding")
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        self.deformable_groups = int(deformable_groups)
        self.use_bias = bool(use_bias)
        self.impl = impl
        self.offset_mean_abs = None

    def build(self, x_shape, guide_shape=None):
        cin = x_shape[-1]
        guide_c = (guide_shape or x_shape)[-1]
        kh, kw = self.kernel_size
        k = kh * kw
        if cin % self.deformable_groups:
            raise ValueError(
                f"ModulatedDeformConv2D: deformable_groups={self.deformable_groups} must divide the {cin} input "
                "channels"
            )
        self.offset_kernel = self.add_weight(
            name="offset_kernel", shape=(kh, kw, guide_c, 3 * self.deformable_groups * k), initializer="zeros"
        )
        self.offset_bias = self.add_weight(
            name="offset_bias", shape=(3 * self.deformable_groups * k,), initializer="zeros"
        )
        stdv = 1.0 / math.sqrt(cin * k)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(kh, kw, cin, self.filters),
            initializer=keras.initializers.RandomUniform(-stdv, stdv),
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None
        )
        # On-read synchronised like a metric's variable: each replica writes its own copy without an all-reduce,
        # a cross-replica read returns the mean. (add_weight cannot set the synchronisation.)
        self.offset_mean_abs = keras.Variable(
            0.0,
            dtype="float32",
            trainable=False,
            autocast=False,
            aggregation="mean",
            synchronization="on_read",
            name="offset_mean_abs",
        )

    def _offset_conv_input(self, guide):
        """(guide, conv2d padding): symmetric integer padding is applied with `tf.pad` and the conv runs "VALID"
        (conv2d's explicit padding has the same values, but TensorFlow's CPU backward of it leaves oneDNN: ~50×
        slower in bfloat16, ~10 % in float32 at EDVR's sizes; docs/performance.md, session 9)."""
        if isinstance(self.padding, str):
            return guide, self.padding.upper()
        ph, pw = self.padding
        if ph or pw:
            guide = tf.pad(guide, [[0, 0], [ph, ph], [pw, pw], [0, 0]])
        return guide, "VALID"

    def call(self, x, guide):
        gk = self.deformable_groups * self.kernel_size[0] * self.kernel_size[1]
        if self.offset_dtype is not None:
            guide = tf.cast(guide, self.offset_dtype)
        guide, padding = self._offset_conv_input(guide)
        out = tf.nn.conv2d(
            guide,
            tf.cast(self.offset_kernel, guide.dtype),
            strides=self.strides,
            padding=padding,
            dilations=self.dilation_rate,
        )
        out = out + tf.cast(self.offset_bias, out.dtype)
        offset = out[..., : 2 * gk]
        mask = tf.sigmoid(out[..., 2 * gk :])
        self.offset_mean_abs.assign(tf.reduce_mean(tf.abs(tf.cast(offset, tf.float32))))
        return deform_conv2d(
            x,
            offset,
            mask,
            tf.cast(self.kernel, x.dtype),
            None if self.bias is None else tf.cast(self.bias, x.dtype),
            strides=self.strides,
            padding=self.padding,
            dilations=self.dilation_rate,
            offset_groups=self.deformable_groups,
            impl=self.impl,
        )

    def compute_output_shape(self, x_shape, guide_shape=None):
        out = []
        for axis in (0, 1):
            size = x_shape[1 + axis]
            k, s, d = self.kernel_size[axis], self.strides[axis], self.dilation_rate[axis]
            if size is None:
                out.append(None)
            elif self.padding == "same":
                out.append(-(-size // s))
            else:
                p = 0 if self.padding == "valid" else self.padding[axis]
                out.append((size + 2 * p - (k - 1) * d - 1) // s + 1)
        return (x_shape[0], out[0], out[1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            deformable_groups=self.deformable_groups,
            use_bias=self.use_bias,
            impl=self.impl,
            offset_dtype=self.offset_dtype,
        )
        return config


def offset_magnitudes(model) -> dict[str, float]:
    """{layer path: mean |offset| of its last call} for every `ModulatedDeformConv2D` inside `model`."""
    found = {}
    for layer in model._flatten_layers(include_self=True, recursive=True):  # noqa: SLF001 — Keras has no public walk
        if isinstance(layer, ModulatedDeformConv2D) and layer.offset_mean_abs is not None:
            found[layer.path] = float(layer.offset_mean_abs.numpy())
    return found
