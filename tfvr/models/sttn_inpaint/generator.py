"""STTN-I generator: frame encoder -> spatial-temporal transformer (multi-scale patch attention) -> decoder.

Zeng, Fu, Chao, "Learning Joint Spatial-Temporal Transformations for Video Inpainting", ECCV 2020; computed as the
authors' `model/sttn.py` (researchmm/STTN) computes it, channels-last.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tfvr.models.saving import PresetMixin
from tfvr.ops.winograd import conv2d_winograd, conv2d_winograd_cc, winograd_cc_usable


def _init():
    """The authors' init_weights('normal', 0.02), a new initializer per layer. Keras 3 initializers seeded with an int
    or None repeat their values on every call and take their seed when constructed: one module-level instance gave
    every same-shape kernel the same values, drawn from a seed picked at import (before `trainer.seed` was set), so
    two runs with one seed started from different weights."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def _space_to_phases(x):
    """[N, H, W, C] (H, W even) -> [4N, H/2, W/2, C]: the 4 sub-grids of every other pixel, phase-major."""
    n, h, w, c = tf.shape(x)[0], x.shape[1], x.shape[2], x.shape[3] or tf.shape(x)[3]
    x = tf.reshape(x, [n, h // 2, 2, w // 2, 2, c])
    return tf.reshape(tf.transpose(x, [0, 2, 4, 1, 3, 5]), [n * 4, h // 2, w // 2, c])


def _phases_to_space(x, n):
    h, w, c = x.shape[1], x.shape[2], x.shape[3] or tf.shape(x)[3]
    x = tf.reshape(x, [n, 2, 2, h, w, c])
    return tf.reshape(tf.transpose(x, [0, 3, 1, 4, 2, 5]), [n, h * 2, w * 2, c])


CONV_IMPLS = ("auto", "direct", "winograd", "winograd_cc")


def use_winograd(impl, kernel_shape, strides=1, dilation=1, h=None, w=None, dtype=tf.float32) -> bool:
    """Whether `conv2d` computes this conv by the XLA-compiled TF-ops Winograd F(4x4, 3x3) (`tfvr.ops.winograd.
    conv2d_winograd`): only with impl "winograd", for every 3x3 stride-1 conv on a map of static size (2-dilated ones on
    their 4 sub-grids). Measured x1.15-1.45 on the 256 -> 256 convs but x1.04-1.07 on the whole window
    (docs/performance.md, helper wino15); "auto" uses the compiled transforms instead (`use_winograd_cc`)."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r}")
    if impl != "winograd" or tuple(kernel_shape[:2]) != (3, 3) or strides != 1 or not h or not w:
        return False
    return dilation in (1, 2)


def use_winograd_cc(impl, kernel_shape, strides=1, dilation=1, h=None, w=None, dtype=tf.float32) -> bool:
    """Whether `conv2d` computes this conv by Winograd F(4x4, 3x3) with the compiled transforms
    (`tfvr.ops.winograd.conv2d_winograd_cc`: input and output transforms one C++ pass each, bias and LeakyReLU fused,
    the 36 GEMMs one oneDNN batched matmul per chunk of tiles).

    Only where the compiled ops can run (`tfvr.ops.winograd.winograd_cc_usable`: library built and loaded, no GPU
    visible, not inside an XLA compile or a SavedModel trace, not inside the DCN `implementation("reference")`
    override) on float32 (16-bit floats stay direct: F(4x4) loses ~5 % of the output's scale there), 3x3, stride 1,
    dilation 1 or 2, static height and width. Then "winograd_cc": every such conv; "auto" (the default): those with
    at least 64 input and 64 output channels, where bench/winograd.py measured it faster than oneDNN's direct conv
    on this project's 2-core AVX2 CPU (STTN-I at 432x240: the 24 transformer convs x1.95-2.0, enc3 x1.9, dec0 x1.6,
    dec1 x1.5, enc1 and dec2 (64 -> 64) x1.2; docs/performance.md, "C++ Winograd transforms"); not dec3 (64 -> 3:
    the transforms would cost more than its 1.8 GFLOP). Elsewhere, and whenever the compiled ops cannot run, the
    direct conv (the same function).
    """
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r}")
    if impl not in ("auto", "winograd_cc") or tuple(kernel_shape[:2]) != (3, 3) or strides != 1 or not h or not w:
        return False
    if dilation not in (1, 2) or tf.as_dtype(dtype) != tf.float32:
        return False
    if impl == "auto" and (kernel_shape[2] is None or kernel_shape[2] < 64 or kernel_shape[3] < 64):
        return False
    return winograd_cc_usable()


def conv2d(x, kernel, bias, strides=1, padding="SAME", dilation=1, impl="direct", lrelu=False):
    """`keras.layers.Conv2D`'s arithmetic, faster on CPU: `tf.nn.bias_add` (a BiasAdd that TensorFlow's remapper
    fuses into the conv and a following LeakyRelu, where Keras's `x + bias` costs its own pass over the tensor),
    and a 2-dilated 'same' conv on an even-sized map as a plain conv on its 4 sub-grids (every other pixel): the
    same products and sums as the dilated conv - bit-identical here - without the dilated kernel's slower path.
    `impl`: see `use_winograd` and `use_winograd_cc` (the same function by Winograd F(4x4, 3x3): 4x fewer
    multiplications, float32 results within about 1e-5 of the output's scale). `lrelu`: LeakyReLU(0.2) after the
    bias (fused into the compiled Winograd output transform; on the other paths the same `tf.nn.leaky_relu` that
    callers applied before)."""
    kernel = tf.cast(kernel, x.dtype)
    h, w = x.shape[1], x.shape[2]
    bias = tf.cast(bias, x.dtype)
    if padding == "SAME" and use_winograd_cc(impl, kernel.shape, strides, dilation, h, w, x.dtype):
        # gradient: that of the direct path below (custom_gradient), so training is unchanged
        return conv2d_winograd_cc(x, kernel, bias, dilation=dilation, lrelu=lrelu, alpha=0.2,
                                  direct=lambda a, k: _conv2d_tf(a, k, None, 1, "SAME", dilation, "direct"))
    y = _conv2d_tf(x, kernel, bias, strides, padding, dilation, impl)
    return _lrelu(y) if lrelu else y


def _conv2d_tf(x, kernel, bias, strides, padding, dilation, impl):
    h, w = x.shape[1], x.shape[2]
    sub = dilation == 2 and strides == 1 and padding == "SAME" and h and w and h % 2 == 0 and w % 2 == 0
    winograd = padding == "SAME" and use_winograd(impl, kernel.shape, strides, dilation, h, w, x.dtype)

    def add_bias(y):
        return y if bias is None else tf.nn.bias_add(y, bias)

    if sub:
        n = tf.shape(x)[0]
        phases = _space_to_phases(x)
        if winograd:
            return _phases_to_space(conv2d_winograd(phases, kernel, bias=bias), n)
        return _phases_to_space(add_bias(tf.nn.conv2d(phases, kernel, 1, "SAME")), n)
    if winograd and dilation == 1:
        return conv2d_winograd(x, kernel, padding, bias=bias)  # bias added inside its XLA computation
    return add_bias(tf.nn.conv2d(x, kernel, strides, padding, dilations=dilation))


@keras.saving.register_keras_serializable(package="tfvr")
class FastConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` (same weights, names and config, plus `conv_impl`) computed by `conv2d` above."""

    def __init__(self, *args, conv_impl="auto", **kwargs):
        super().__init__(*args, **kwargs)
        use_winograd(conv_impl, (1, 1))  # validates
        self.conv_impl = conv_impl

    def call(self, inputs, lrelu=False):
        """`lrelu=True`: LeakyReLU(0.2) of the result (fused where the conv runs as compiled Winograd)."""
        return conv2d(inputs, self.kernel, self.bias, self.strides[0], self.padding.upper(), self.dilation_rate[0],
                      impl=self.conv_impl, lrelu=lrelu)

    def get_config(self):
        return {**super().get_config(), "conv_impl": self.conv_impl}


def _conv(filters, kernel_size=3, strides=1, padding="same", dilation_rate=1, name=None, conv_impl="auto"):
    return FastConv2D(
        filters, kernel_size, strides=strides, padding=padding, dilation_rate=dilation_rate,
        kernel_initializer=_init(), bias_initializer="zeros", name=name, conv_impl=conv_impl,
    )


def _lrelu(x):
    return tf.nn.leaky_relu(x, alpha=0.2)


def resize_bilinear_align_corners(x, size):
    """PyTorch's `F.interpolate(..., mode='bilinear', align_corners=True)` on NHWC."""
    return tf.raw_ops.ResizeBilinear(images=x, size=size, align_corners=True, half_pixel_centers=False)


def derive_patch_sizes(feat_h: int, feat_w: int, divisors) -> tuple:
    """Per-head (w, h) patch sizes for a feature map: (feat_w / d, feat_h / d) for each divisor d.

    With the released divisors (1, 3, 6, 12) and the 432x240 reference (feature map 108x60) this gives exactly
    the released (108,60), (36,20), (18,10), (9,5). The released code hard-codes those sizes, so other resolutions
    need new ones (researchmm/STTN issue #13, where a user rescales them with the image and reports that the
    weights still load: the patch size is not a weight). Keeping the released ratios keeps every head's share of
    the frame, hence the behaviour the weights were trained for, at any size whose feature map each d divides.
    """
    sizes = []
    for d in divisors:
        if feat_w % d or feat_h % d:
            raise ValueError(
                f"STTN-I: feature map {feat_w}x{feat_h} (w x h) is not divisible by patch divisor {d}; use frames "
                f"whose width and height are multiples of {4 * max(divisors)} (the encoder downsamples by 4)."
            )
        sizes.append((feat_w // d, feat_h // d))
    return tuple(sizes)


class MultiScalePatchAttention(keras.layers.Layer):
    """Multi-head attention whose heads attend over patches of different sizes (STTN's matching + attending).

    Q/K/V are 1x1 convs; head i takes channel slice i and cuts every frame into (pw, ph) patches; each patch of each
    frame is one token whose vector is the patch's pixels x channels; scores are scaled by sqrt(d_k * pw * ph).
    Heads are concatenated, then a 3x3 conv + LeakyReLU(0.2).
    """

    def __init__(self, channels, num_heads, mask_attention=False, conv_impl="auto", **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.num_heads = num_heads
        self.mask_attention = mask_attention
        self.query = _conv(channels, 1, name="query")
        self.key = _conv(channels, 1, name="key")
        self.value = _conv(channels, 1, name="value")
        self.out = _conv(channels, 3, name="output", conv_impl=conv_impl)

    def build(self, input_shape):
        shape = (None, None, None, self.channels)
        for layer in (self.query, self.key, self.value, self.out):
            layer.build(shape)
        self.built = True

    def call(self, x, masks, batch, patch_sizes):
        # x: [B*T, h, w, C]; masks: [B*T, h, w, 1] at feature resolution (1 = hole).
        bt, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        t = bt // batch
        d_k = self.channels // self.num_heads
        # Q, K and V in one 1x1 conv (one pass over x): their kernels and biases side by side
        qkv = conv2d(x, tf.concat([tf.cast(c.kernel, x.dtype) for c in (self.query, self.key, self.value)], -1),
                     tf.concat([tf.cast(c.bias, x.dtype) for c in (self.query, self.key, self.value)], -1))
        parts = tf.split(qkv, 3 * self.num_heads, axis=-1)
        qs, ks, vs = parts[:self.num_heads], parts[self.num_heads:2 * self.num_heads], parts[2 * self.num_heads:]
        outputs = []
        for (pw, ph), q, k, v in zip(patch_sizes, qs, ks, vs):
            out_h, out_w = h // ph, w // pw
            n = t * out_h * out_w

            def tokens(z, depth):
                z = tf.reshape(z, [batch, t, out_h, ph, out_w, pw, depth])
                z = tf.transpose(z, [0, 1, 2, 4, 3, 5, 6])
                return tf.reshape(z, [batch, n, ph * pw * depth])

            q_, k_, v_ = tokens(q, d_k), tokens(k, d_k), tokens(v, d_k)
            # Scores and softmax in float32 whatever the compute dtype (mixed precision: the matmuls stay in it).
            scores = tf.cast(tf.matmul(q_, k_, transpose_b=True), tf.float32) / math.sqrt(d_k * pw * ph)
            if self.mask_attention:
                # A key patch is a hole when more than half of it is masked; no query may attend to it.
                hole = tf.reduce_mean(tf.cast(tokens(masks, 1), tf.float32), axis=-1) > 0.5  # [B, N]
                scores = tf.where(hole[:, tf.newaxis, :], tf.constant(-1e9, scores.dtype), scores)
            # As released (mask_attention=False) the hole mask never reaches the scores: the authors'
            # `scores.masked_fill(m, -1e9)` is not in place and its result is dropped.
            p = tf.cast(tf.nn.softmax(scores, axis=-1), v_.dtype)
            y = tf.matmul(p, v_)
            y = tf.reshape(y, [batch, t, out_h, out_w, ph, pw, d_k])
            y = tf.transpose(y, [0, 1, 2, 4, 3, 5, 6])
            outputs.append(tf.reshape(y, [bt, h, w, d_k]))
        return self.out(tf.concat(outputs, axis=-1), lrelu=True)


class TransformerBlock(keras.layers.Layer):
    """`x += attention(x)`, `x += FFN(x)` with FFN = dilated 3x3 conv + LReLU + 3x3 conv + LReLU; no norm."""

    def __init__(self, channels, num_heads, mask_attention=False, conv_impl="auto", **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.attention = MultiScalePatchAttention(channels, num_heads, mask_attention, conv_impl, name="attention")
        self.ffn1 = _conv(channels, 3, dilation_rate=2, name="ffn1", conv_impl=conv_impl)
        self.ffn2 = _conv(channels, 3, name="ffn2", conv_impl=conv_impl)

    def build(self, input_shape):
        shape = (None, None, None, self.channels)
        self.attention.build(shape)
        self.ffn1.build(shape)
        self.ffn2.build(shape)
        self.built = True

    def call(self, x, masks, batch, patch_sizes):
        x = x + self.attention(x, masks, batch=batch, patch_sizes=patch_sizes)
        return x + self.ffn2(self.ffn1(x, lrelu=True), lrelu=True)


@keras.saving.register_keras_serializable(package="tfvr")
class STTNInpaintGenerator(PresetMixin, keras.Model):
    """STTN-I inpainting generator (Zeng, Fu, Chao, ECCV 2020), as the authors' `model/sttn.py` computes it.

    Input `(masked_frames, masks)`: `masked_frames` [B, T, H, W, 3] in [-1, 1] with holes zeroed
    (`frames * (1 - masks)`), `masks` [B, T, H, W, 1] (1 = hole). Output [B, T, H, W, 3] in [-1, 1] (tanh, not
    composited). H and W must be multiples of 4 and the feature map (H/4, W/4) divisible by every patch divisor:
    multiples of 48 with the default heads (the release runs at 432x240).

    Attention mask: **as released, the hole mask never affects attention** (the authors' `masked_fill` result is
    discarded), and `mask_attention=False` (the default) reproduces that so the released weights behave as released.
    `mask_attention=True` is the corrected variant: key patches more than half hole get score -1e9. It is a different
    model; the released weights were not trained for it.

    Head patch sizes: derived from the feature map as (feat_w / d, feat_h / d) for d in `patch_divisors`, which
    gives the released (108,60), (36,20), (18,10), (9,5) at 432x240 and scales them with the frame at other sizes
    (researchmm/STTN issue #13).

    Args:
        channels: transformer width (256).
        num_blocks: transformer blocks (8).
        patch_divisors: tuple of ints, one head each; channels are split evenly over heads.
        mask_attention: bool, see above.
        conv_impl: "auto" (default), "direct", "winograd_cc" or "winograd": how the 3x3 convs are computed (same
            weights, same function; float32 outputs within ~2e-5 of the output's scale where Winograd runs, against
            ~3e-7 direct). "auto": Winograd F(4x4, 3x3) with the compiled transforms
            (`tfvr.ops.winograd.conv2d_winograd_cc`) for the float32 convs with >= 64 channels in and out, where it
            was measured faster (`use_winograd_cc`), the direct conv for the rest, for other dtypes, and wherever the
            compiled ops cannot run (library not built, GPU, XLA, SavedModel export); "direct": never Winograd;
            "winograd_cc": the compiled Winograd for every float32 stride-1 3x3 conv; "winograd": the XLA-compiled
            TF-ops Winograd for every stride-1 3x3 conv (`use_winograd`). Gradients are always the direct conv's.
    """

    # `STTNInpaintGenerator.from_preset(name)`: the authors' generator (256 channels, 8 blocks, patch divisors
    # 1/3/6/12: the class defaults) and the demo's (train/configs/sttn_inpaint_demo.flags); the released
    # checkpoint of `tfvr.presets` (family "sttn_inpaint") is the authors' architecture.
    presets = {
        "sttn_inpaint": dict(),
        "sttn_inpaint_demo": dict(channels=32, num_blocks=2),
    }
    preset_family = "sttn_inpaint"

    def example_inputs(self):
        """One call on zeros (frames and masks, sides a multiple of 4 x lcm(patch divisors)) creating every variable."""
        size = 4 * math.lcm(*self.patch_divisors)
        return [(((tf.zeros([1, 2, size, size, 3]), tf.zeros([1, 2, size, size, 1])),), {})]

    def __init__(self, channels=256, num_blocks=8, patch_divisors=(1, 3, 6, 12), mask_attention=False,
                 conv_impl="auto", **kwargs):
        super().__init__(**kwargs)
        use_winograd(conv_impl, (1, 1))  # validates
        self.conv_impl = conv_impl
        self.channels = int(channels)
        self.num_blocks = int(num_blocks)
        self.patch_divisors = tuple(int(d) for d in patch_divisors)
        self.mask_attention = bool(mask_attention)
        num_heads = len(self.patch_divisors)
        if self.channels % num_heads:
            raise ValueError(f"channels={channels} must split evenly over {num_heads} heads")
        self.num_heads = num_heads
        self.enc = [
            _conv(64, 3, strides=2, padding="valid", name="enc0"),
            _conv(64, 3, name="enc1", conv_impl=conv_impl),
            _conv(128, 3, strides=2, padding="valid", name="enc2"),
            _conv(self.channels, 3, name="enc3", conv_impl=conv_impl),
        ]
        self.blocks = [TransformerBlock(self.channels, num_heads, self.mask_attention, conv_impl, name=f"block{i}")
                       for i in range(self.num_blocks)]
        self.dec = [_conv(128, 3, name="dec0", conv_impl=conv_impl), _conv(64, 3, name="dec1", conv_impl=conv_impl),
                    _conv(64, 3, name="dec2", conv_impl=conv_impl), _conv(3, 3, name="dec3", conv_impl=conv_impl)]

    def build(self, input_shape=None):
        # Weights do not depend on the frame size: build everything from channel counts alone.
        chans = [3, 64, 64, 128]
        for layer, c in zip(self.enc, chans):
            layer.build((None, None, None, c))
        for block in self.blocks:
            block.build((None, None, None, self.channels))
        for layer, c in zip(self.dec, [self.channels, 128, 64, 64]):
            layer.build((None, None, None, c))
        self.built = True

    def build_for_weights(self):
        """Creates every weight (they do not depend on the frame size), e.g. before `load_weights`."""
        if not self.built:
            self.build()

    def get_config(self):
        return {
            "channels": self.channels,
            "num_blocks": self.num_blocks,
            "patch_divisors": self.patch_divisors,
            "mask_attention": self.mask_attention,
            "conv_impl": self.conv_impl,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["patch_divisors"] = tuple(config.get("patch_divisors", (1, 3, 6, 12)))
        return cls(**config)

    # -- the three stages, exposed separately for the authors' inference scheme (encode all frames once) --
    def head_patch_sizes(self, feat_h: int, feat_w: int) -> tuple:
        return derive_patch_sizes(feat_h, feat_w, self.patch_divisors)

    def encode(self, frames):
        """[N, H, W, 3] (masked, in [-1, 1]) -> [N, H/4, W/4, C]."""
        x = frames
        for i, layer in enumerate(self.enc):
            if layer.strides[0] == 2:  # PyTorch's symmetric padding=1; Keras 'same' pads stride-2 convs unevenly
                x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
            x = layer(x, lrelu=True)
        return x

    def transform(self, feats, masks, batch=1):
        """Transformer on [B*T, h, w, C] features with [B*T, H, W, 1] full-size masks (downsampled here)."""
        fh, fw = feats.shape[1], feats.shape[2]
        if fh is None or fw is None:
            raise ValueError("STTN-I needs a static frame size (the patch sizes depend on it)")
        patch_sizes = self.head_patch_sizes(int(fh), int(fw))
        # F.interpolate(scale_factor=1/4), mode 'nearest': source pixel floor(4 * i).
        small = masks[:, ::4, ::4, :][:, :fh, :fw, :]
        x = feats
        for block in self.blocks:
            x = block(x, small, batch=batch, patch_sizes=patch_sizes)
        return x

    def decode(self, feats):
        """[N, h, w, C] -> [N, 4h, 4w, 3] in [-1, 1]."""
        x = feats
        for i, layer in enumerate(self.dec):
            if i in (0, 2):
                size = tf.shape(x)[1:3] * 2
                x = resize_bilinear_align_corners(x, size)
            x = layer(x, lrelu=i < 3)
        return tf.tanh(x)

    def call(self, inputs):
        masked_frames, masks = inputs
        masked_frames = tf.convert_to_tensor(masked_frames)
        masks = tf.cast(tf.convert_to_tensor(masks), masked_frames.dtype)
        shape = tf.shape(masked_frames)
        b, t = shape[0], shape[1]
        h, w = masked_frames.shape[2], masked_frames.shape[3]
        if h is None or w is None:
            raise ValueError("STTN-I needs a static frame size (the patch sizes depend on it)")
        if h % 4 or w % 4:
            raise ValueError(f"STTN-I: frame size {w}x{h} (w x h) must be a multiple of 4")
        # -1, not b * t: a static batch and length give a static frame count (the compiled Winograd path sizes its
        # buffers from it)
        frames = tf.reshape(masked_frames, [-1, h, w, masked_frames.shape[-1] or 3])
        masks = tf.reshape(masks, [-1, h, w, 1])
        feats = self.encode(frames)
        feats = self.transform(feats, masks, batch=b)
        out = self.decode(feats)
        return tf.reshape(out, [b, t, h, w, 3])
