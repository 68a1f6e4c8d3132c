"""Channels-last Keras layers that compute exactly what PyTorch's `torch.nn` modules compute, one layer per module.

Used by vid2vid (its generator, discriminators and weight converter); any family porting `nn.Sequential` stacks
can use them. (EDVR's `TorchConv2D`, a Keras `Conv2D` with PyTorch padding, stays in `tfvr.models.edvr.model`.)

vid2vid's networks are `nn.Sequential` stacks whose state-dict keys are positional (`model_down_seg.4.weight`), so
every torch module, parameter-free ones included (padding, activations), gets a layer here and `Sequence` keeps
them at the same index. That makes the weight converter a walk over key paths (`convert.py`) instead of a table.

Where PyTorch and Keras disagree, these layers follow PyTorch:
- `Conv2d` pads explicitly and symmetrically (Keras "same" pads (0, 1) for a stride-2 3×3 conv on even sizes).
- `ConvTranspose2d` is a VALID transposed conv cropped by `padding` at the start: PyTorch places input i at
  output i·s − p + k; TF's "same" transposed conv at i·s + k.
- `BatchNorm2d`: eps 1e-5, running averages with PyTorch momentum 0.1 (Keras 0.9); synchronised across replicas
  under tf.distribute so a 2-replica step equals a 1-replica step on the same global batch.
- `InstanceNorm2d` is vid2vid's `InstanceNorm2d(affine=False, track_running_stats=True)`: per-sample statistics
  in training, but the *running* statistics at inference (what PyTorch does with tracked stats in eval mode).
- `AvgPool3x3s2` is `AvgPool2d(3, 2, padding=1, count_include_pad=False)`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

_EPS = 1e-5
_MOMENTUM = 0.1  # PyTorch convention: new = (1 - m) * old + m * batch

_FROZEN_STATS = [False]  # set while tracing a recomputation: the norm layers then leave their running stats alone


class frozen_running_stats:
    """`with frozen_running_stats(): ...`: calls traced inside do not update BatchNorm2d / InstanceNorm2d running
    statistics (a gradient-checkpointing recomputation of a forward that already updated them; the outputs in
    training mode use the batch statistics either way)."""

    def __enter__(self):
        self._old = _FROZEN_STATS[0]
        _FROZEN_STATS[0] = True

    def __exit__(self, *exc):
        _FROZEN_STATS[0] = self._old


class LazyBuild:
    """Mixin for containers: their sub-layers create their variables on the first call, so `build` has nothing to
    do (and Keras stops warning about "unbuilt state")."""

    def build(self, *args, **kwargs):
        self.built = True


def track_layers(owner, name: str, layers) -> None:
    """Makes the layers of a list attribute `owner.<name>` children of `owner` in TensorFlow's checkpoint object
    graph (`<name>_<i>`). Keras 3 keeps a list of layers in its own `TrackedList`, which `tf.train.Checkpoint`
    does not see: without this, a checkpoint of the model holds none of the list's variables (they were only
    saved through the optimizer's variable list, and BatchNorm statistics not at all). Keras' own tracking (its
    weights, `.weights.h5` layout) is unchanged."""
    for i, layer in enumerate(layers):
        owner._track_trackable(layer, name=f"{name}_{i}", overwrite=True)


class Sequence(LazyBuild, keras.layers.Layer):
    """`nn.Sequential`: applies `items` in order; `items[i]` is torch index i."""

    def __init__(self, items, **kwargs):
        super().__init__(**kwargs)
        self.items = list(items)
        track_layers(self, "items", self.items)

    def call(self, x, training=None):
        for layer in self.items:
            x = layer(x, training=training) if _takes_training(layer) else layer(x)
        return x


def _takes_training(layer) -> bool:
    return isinstance(layer, (BatchNorm2d, InstanceNorm2d, Sequence, ResnetBlock))


class Pad2d(keras.layers.Layer):
    """`nn.ReflectionPad2d` / `nn.ReplicationPad2d` / zero padding by `pad` pixels on each side."""

    _MODES = {"reflect": "REFLECT", "replicate": "SYMMETRIC_EDGE", "zero": "CONSTANT"}

    def __init__(self, pad: int, mode: str = "reflect", **kwargs):
        super().__init__(**kwargs)
        if mode not in self._MODES:
            raise ValueError(f"padding mode must be one of {sorted(self._MODES)}, got {mode!r}")
        self.pad, self.mode = int(pad), mode

    def call(self, x):
        p = self.pad
        if self.mode == "replicate":
            # tf.pad has no edge mode: repeat the border row/column p times.
            top, bottom = tf.repeat(x[:, :1], p, axis=1), tf.repeat(x[:, -1:], p, axis=1)
            x = tf.concat([top, x, bottom], axis=1)
            left, right = tf.repeat(x[:, :, :1], p, axis=2), tf.repeat(x[:, :, -1:], p, axis=2)
            return tf.concat([left, x, right], axis=2)
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode=self._MODES[self.mode])

    def get_config(self):
        return {**super().get_config(), "pad": self.pad, "mode": self.mode}


class Activation(keras.layers.Layer):
    """ReLU / LeakyReLU(slope) / Tanh / Sigmoid as a torch-indexed module."""

    def __init__(self, kind: str, slope: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        if kind not in ("relu", "leaky_relu", "tanh", "sigmoid"):
            raise ValueError(f"unknown activation {kind!r}")
        self.kind, self.slope = kind, float(slope)

    def call(self, x):
        if self.kind == "relu":
            return tf.nn.relu(x)
        if self.kind == "leaky_relu":
            # = leaky_relu for slope < 1; spelled out because grappler's LeakyRelu fusion fails on the GAN step's
            # gradient graph ("remapper failed" errors in the log)
            return tf.maximum(x, x * self.slope)
        return tf.tanh(x) if self.kind == "tanh" else tf.sigmoid(x)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "slope": self.slope}


def _torch_uniform(fan_in):
    bound = 1.0 / np.sqrt(max(fan_in, 1))
    return keras.initializers.RandomUniform(-bound, bound)


class Conv2d(keras.layers.Layer):
    """`nn.Conv2d(in, filters, kernel_size, stride, padding)` with symmetric zero padding.

    Weights: kernel [k, k, in, filters] (HWIO), bias [filters]. Init as vid2vid's `weights_init`: N(0, 0.02)
    kernel; bias as PyTorch's default, U(±1/√fan_in).
    """

    def __init__(self, filters: int, kernel_size: int, stride: int = 1, padding: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.stride, self.padding = int(filters), int(kernel_size), int(stride), int(padding)

    def build(self, input_shape):
        cin = int(input_shape[-1])
        k = self.kernel_size
        self.kernel = self.add_weight(
            name="kernel", shape=(k, k, cin, self.filters), initializer=keras.initializers.RandomNormal(0.0, 0.02)
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer=_torch_uniform(cin * k * k))

    def call(self, x):
        p = self.padding
        if p:
            # tf.pad, then a "VALID" conv: the same values as conv2d's explicit padding, which TensorFlow's CPU runs
            # outside oneDNN's fast path (measured: vid2vid's 4×4 discriminator convs, forward + backward, 1.5-1.9×
            # slower in float32 and 4-8× slower in bfloat16 with explicit padding; docs/performance.md, session 9)
            x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
        y = tf.nn.conv2d(x, tf.cast(self.kernel, x.dtype), strides=self.stride, padding="VALID")
        return tf.nn.bias_add(y, tf.cast(self.bias, x.dtype))

    def compute_output_shape(self, input_shape):
        def out(n):
            return None if n is None else (n + 2 * self.padding - self.kernel_size) // self.stride + 1

        return (input_shape[0], out(input_shape[1]), out(input_shape[2]), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "stride": self.stride, "padding": self.padding}


class ConvTranspose2d(keras.layers.Layer):
    """`nn.ConvTranspose2d(in, filters, kernel_size, stride, padding, output_padding)`.

    Output size (n − 1)·stride − 2·padding + kernel_size + output_padding, as PyTorch. Kernel [k, k, filters, in]
    (what `tf.nn.conv2d_transpose` takes); PyTorch's [in, filters, k, k] maps to it by a transpose, no flip.
    """

    def __init__(self, filters: int, kernel_size: int = 3, stride: int = 2, padding: int = 1, output_padding: int = 1,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.stride = int(filters), int(kernel_size), int(stride)
        self.padding, self.output_padding = int(padding), int(output_padding)

    def build(self, input_shape):
        cin = int(input_shape[-1])
        k = self.kernel_size
        self.kernel = self.add_weight(
            name="kernel", shape=(k, k, self.filters, cin), initializer=keras.initializers.RandomNormal(0.0, 0.02)
        )
        # PyTorch computes the default bound from weight.size(1) * k * k = filters * k * k for transposed convs.
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer=_torch_uniform(self.filters * k * k))

    def call(self, x):
        s, k, p = self.stride, self.kernel_size, self.padding
        shape = tf.shape(x)
        b, h, w = shape[0], shape[1], shape[2]
        full_h, full_w = (h - 1) * s + k, (w - 1) * s + k
        y = tf.nn.conv2d_transpose(
            x, tf.cast(self.kernel, x.dtype), output_shape=tf.stack([b, full_h, full_w, self.filters]),
            strides=s, padding="VALID",
        )
        # PyTorch's output o reads TF's o + p; output_padding may reach past TF's last row (there only the bias).
        extra = max(self.output_padding - p, 0)
        if extra:
            y = tf.pad(y, [[0, 0], [0, extra], [0, extra], [0, 0]])
        out_h = (h - 1) * s - 2 * p + k + self.output_padding
        out_w = (w - 1) * s - 2 * p + k + self.output_padding
        y = y[:, p : p + out_h, p : p + out_w]
        return tf.nn.bias_add(y, tf.cast(self.bias, x.dtype))

    def compute_output_shape(self, input_shape):
        def out(n):
            if n is None:
                return None
            return (n - 1) * self.stride - 2 * self.padding + self.kernel_size + self.output_padding

        return (input_shape[0], out(input_shape[1]), out(input_shape[2]), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "stride": self.stride, "padding": self.padding, "output_padding": self.output_padding}


class BatchNorm2d(keras.layers.Layer):
    """`nn.BatchNorm2d(affine=True)`: eps 1e-5, running averages with PyTorch momentum 0.1 and the *unbiased*
    batch variance (PyTorch's rule), inference with the running statistics.

    One replica: a single fused op (`FusedBatchNormV3` with `exponential_avg_factor`, which computes exactly
    PyTorch's update) - a GAN step calls dozens of these, and Keras' BatchNormalization adds ~50 graph ops each.
    Several replicas (tf.distribute): the batch statistics are all-reduced (synchronised BatchNorm), so a step on
    N replicas equals a step on one device with the same global batch.
    Weights: gamma, beta (trainable), moving_mean, moving_variance.
    """

    def __init__(self, epsilon: float = _EPS, momentum: float = _MOMENTUM, gamma_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.epsilon, self.momentum = float(epsilon), float(momentum)
        # vid2vid's weights_init: N(1, 0.02)
        self.gamma_initializer = keras.initializers.get(gamma_initializer or keras.initializers.RandomNormal(1.0, 0.02))

    def build(self, input_shape):
        c = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(c,), initializer=self.gamma_initializer)
        self.beta = self.add_weight(name="beta", shape=(c,), initializer="zeros")
        self.moving_mean = self.add_weight(name="moving_mean", shape=(c,), initializer="zeros", trainable=False,
                                           aggregation="mean")
        self.moving_variance = self.add_weight(name="moving_variance", shape=(c,), initializer="ones",
                                               trainable=False, aggregation="mean")

    def call(self, x, training=None):
        dtype = x.dtype
        x = tf.cast(x, tf.float32)
        gamma, beta = tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32)
        mm, mv = tf.cast(self.moving_mean, tf.float32), tf.cast(self.moving_variance, tf.float32)
        if not training:
            y = tf.nn.batch_normalization(x, mm, mv, beta, gamma, self.epsilon)
            return tf.cast(y, dtype)
        ctx = tf.distribute.get_replica_context()
        if ctx is None or ctx.num_replicas_in_sync == 1:
            y, new_mean, new_var, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=gamma, offset=beta, mean=mm, variance=mv, epsilon=self.epsilon,
                exponential_avg_factor=self.momentum, data_format="NHWC", is_training=True)
        else:
            # two passes (sum, then squared deviations), as the fused op: E[x²] − E[x]² loses digits
            count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
            total, n = ctx.all_reduce(tf.distribute.ReduceOp.SUM, [tf.reduce_sum(x, [0, 1, 2]), count])
            mean = total / n
            var = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(tf.square(x - mean), [0, 1, 2])) / n
            y = tf.nn.batch_normalization(x, mean, var, beta, gamma, self.epsilon)
            m = self.momentum
            new_mean = (1 - m) * mm + m * tf.stop_gradient(mean)
            new_var = (1 - m) * mv + m * tf.stop_gradient(var * n / tf.maximum(n - 1.0, 1.0))
        if not _FROZEN_STATS[0]:
            self.moving_mean.assign(new_mean)
            self.moving_variance.assign(new_var)
        return tf.cast(y, dtype)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "momentum": self.momentum}


class InstanceNorm2d(keras.layers.Layer):
    """`nn.InstanceNorm2d(affine=False, track_running_stats=True)` as vid2vid builds it.

    Training: normalise each sample and channel by its own spatial mean and (biased) variance, and update the
    running averages with the batch mean of the per-instance means and unbiased variances (PyTorch's rule).
    Inference: normalise with the running averages, as PyTorch does in eval mode when stats are tracked.
    """

    def __init__(self, epsilon: float = _EPS, momentum: float = _MOMENTUM, **kwargs):
        super().__init__(**kwargs)
        self.epsilon, self.momentum = float(epsilon), float(momentum)

    def build(self, input_shape):
        c = int(input_shape[-1])
        agg = "mean"
        self.moving_mean = self.add_weight(name="moving_mean", shape=(c,), initializer="zeros", trainable=False,
                                           aggregation=agg)
        self.moving_variance = self.add_weight(name="moving_variance", shape=(c,), initializer="ones",
                                               trainable=False, aggregation=agg)

    def call(self, x, training=None):
        if not training:
            mean = tf.cast(self.moving_mean, x.dtype)
            var = tf.cast(self.moving_variance, x.dtype)
            return (x - mean) * tf.math.rsqrt(var + self.epsilon)
        x32 = tf.cast(x, tf.float32)
        mean, var = tf.nn.moments(x32, axes=[1, 2], keepdims=True)
        n = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32)
        unbiased = var * n / tf.maximum(n - 1.0, 1.0)
        m = self.momentum
        if not _FROZEN_STATS[0]:
            self.moving_mean.assign((1 - m) * self.moving_mean + m * tf.reduce_mean(mean, axis=[0, 1, 2]))
            self.moving_variance.assign((1 - m) * self.moving_variance
                                        + m * tf.reduce_mean(unbiased, axis=[0, 1, 2]))
        return tf.cast((x32 - mean) * tf.math.rsqrt(var + self.epsilon), x.dtype)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "momentum": self.momentum}


def norm_layer(norm: str, name: str | None = None):
    """vid2vid's `get_norm_layer`: "batch" (default) or "instance"."""
    if norm == "batch":
        return BatchNorm2d(name=name)
    if norm == "instance":
        return InstanceNorm2d(name=name)
    raise ValueError(f"norm must be 'batch' or 'instance', got {norm!r}")


class ResnetBlock(LazyBuild, keras.layers.Layer):
    """pix2pixHD `ResnetBlock`: x + [pad, conv3×3, norm, ReLU, pad, conv3×3, norm](x).

    `conv_block` indices match PyTorch for reflect/replicate padding (1 conv, 2 norm, 5 conv, 6 norm); with
    zero padding PyTorch folds the padding into the conv, and so does this layer (1 conv, 2 norm, 4 conv, 5 norm).
    """

    TORCH_CHILDREN = ("conv_block",)

    def __init__(self, dim: int, padding_type: str = "reflect", norm: str = "batch", **kwargs):
        super().__init__(**kwargs)
        self.dim, self.padding_type, self.norm = int(dim), padding_type, norm
        items = []
        for second in (False, True):
            p = 0
            if padding_type in ("reflect", "replicate"):
                items.append(Pad2d(1, padding_type))
            elif padding_type == "zero":
                p = 1
            else:
                raise ValueError(f"padding_type must be reflect, replicate or zero, got {padding_type!r}")
            items += [Conv2d(dim, 3, padding=p), norm_layer(norm)]
            if not second:
                items.append(Activation("relu"))
        self.conv_block = Sequence(items, name="conv_block")

    def call(self, x, training=None):
        return x + self.conv_block(x, training=training)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "padding_type": self.padding_type, "norm": self.norm}


class AvgPool3x3s2(keras.layers.Layer):
    """`nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)`."""

    def call(self, x):
        pad = [[0, 0], [1, 1], [1, 1], [0, 0]]
        total = tf.nn.avg_pool2d(tf.pad(x, pad), 3, 2, "VALID")
        ones = tf.pad(tf.ones_like(x[:1, :, :, :1]), pad)
        count = tf.nn.avg_pool2d(ones, 3, 2, "VALID")
        return total / count


# --- state-dict helpers -------------------------------------------------------------------------------------------

def torch_params(layer) -> dict[str, object]:
    """A layer's PyTorch parameter names -> its Keras variables (only for layers that hold weights)."""
    if isinstance(layer, (Conv2d, ConvTranspose2d)):
        return {"weight": layer.kernel, "bias": layer.bias}
    if isinstance(layer, BatchNorm2d):
        return {"weight": layer.gamma, "bias": layer.beta, "running_mean": layer.moving_mean,
                "running_var": layer.moving_variance}
    if isinstance(layer, InstanceNorm2d):
        return {"running_mean": layer.moving_mean, "running_var": layer.moving_variance}
    return {}


def to_keras_array(layer, name: str, value: np.ndarray) -> np.ndarray:
    """A PyTorch parameter in the layout the Keras variable holds."""
    from tfvr.export.torch_state import conv2d_kernel, conv_transpose2d_kernel

    value = np.asarray(value, dtype=np.float32)
    if name == "weight" and isinstance(layer, Conv2d):
        return conv2d_kernel(value)
    if name == "weight" and isinstance(layer, ConvTranspose2d):
        return conv_transpose2d_kernel(value)
    return value


def to_torch_array(layer, name: str, value: np.ndarray) -> np.ndarray:
    """Inverse of `to_keras_array`."""
    value = np.asarray(value)
    if name == "weight" and isinstance(layer, (Conv2d, ConvTranspose2d)):
        return value.transpose(3, 2, 0, 1)  # HWIO -> OIHW; (kh, kw, out, in) -> (in, out, kh, kw)
    return value
