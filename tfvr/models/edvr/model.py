"""EDVR: Video Restoration with Enhanced Deformable Convolutional Networks (Wang et al., CVPRW 2019).

A Keras port that computes exactly what BasicSR 1.4.2's `basicsr/archs/edvr_arch.py` computes (golden parity tests
in tests/models/edvr/), channels-last:

    frames [B, T, H, W, C] in [0, 1] → feature extraction (conv_first + LReLU(0.1), or PredeblurModule + 1×1)
    → `num_extract_block` ResidualBlockNoBN → pyramid L2/L3 (stride-2 conv + conv, each LReLU)
    → PCDAlignment of every frame to the centre frame → TSAFusion (or a 1×1 conv without TSA)
    → `num_reconstruct_block` ResidualBlockNoBN → upconv1 + PixelShuffle(2) + LReLU → upconv2 (→ 64·4)
    + PixelShuffle(2) + LReLU → conv_hr + LReLU → conv_last → + base
    base = bilinear ×4 (align_corners=False) of the centre frame (what the released code does, not bicubic);
    with hr_in, base = the centre frame and the output has the input size.

Differences from BasicSR, all invisible at parity:
* Any H, W: the input is padded at the bottom/right to a multiple of 4 (16 with `hr_in`) with `pad_mode` and the
  output cropped back (BasicSR asserts the multiple; xinntao/EDVR#12, #120).
* PCD aligns all T frames in one batched pass (frames folded into the batch) instead of a Python loop, and the
  reference-frame half of the convs over cat([neighbour, reference]) runs once per clip instead of once per frame.
* PixelShuffle is `tf.nn.depth_to_space`; the converter permutes upconv1/upconv2 output channels
  (tfvr.layers.pixel_shuffle).
* Convs that BasicSR leaves at PyTorch's default init use the same weight distribution (uniform ±1/√fan_in) but
  zero biases. ResidualBlockNoBN: Kaiming ×0.1 (as BasicSR); DCN offset convs: zero (as BasicSR).

`EDVR.torch_layer_map()` lists {BasicSR state-dict prefix: Keras layer}; `tfvr.models.edvr.convert` uses it.
`EDVR.dcn_layers()` lists the deformable convs by BasicSR name, for the offset guard.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from tfvr.layers.pixel_shuffle import PixelShuffle
from tfvr.layers.residual import ResidualBlockNoBN
from tfvr.models.edvr.presets import PRESETS as _PRESETS
from tfvr.models.saving import PresetMixin
from tfvr.ops.deform_conv_reference import in_xla_context
from tfvr.ops.padding import pad_to_multiple

# EDVR's `pad_mode` values -> tfvr.ops.padding modes (its "reflect" folds back for pads longer than the frame).
_PAD_MODES = {"reflect": "reflect_fold", "replicate": "replicate", "zeros": "zeros"}

LRELU_SLOPE = 0.1


def lrelu(x):
    return tf.nn.leaky_relu(x, alpha=LRELU_SLOPE)


def torch_default_init():
    """PyTorch's default `Conv2d` weight init: uniform(±1/√fan_in) (kaiming_uniform with a=√5)."""
    return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")



def with_attributes(config: dict, layer, *names: str) -> dict:
    """`config` (a Keras base get_config) plus the constructor arguments `names`, read off `layer`."""
    config.update({n: getattr(layer, n) for n in names})
    return config

@keras.saving.register_keras_serializable(package="tfvr")
class TorchConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` with PyTorch's symmetric zero padding (`padding=p` pixels on every side).

    Keras "same" pads a stride-2 conv on even inputs at the bottom/right only, PyTorch pads both sides: the outputs
    are shifted by one pixel. This layer pads explicitly, then convolves "valid".

    Args:
        filters, kernel_size, strides: as `keras.layers.Conv2D`.
        torch_padding: int, pixels of zero padding on each side (PyTorch's `padding`).
    """

    def __init__(self, filters, kernel_size, strides=1, torch_padding=0, **kwargs):
        kwargs.pop("padding", None)
        kwargs.setdefault("kernel_initializer", torch_default_init())
        super().__init__(filters, kernel_size, strides=strides, padding="valid", **kwargs)
        self.torch_padding = int(torch_padding)

    def _padded(self, shape):
        p = 2 * self.torch_padding
        return tuple(shape[:1]) + tuple(None if s is None else s + p for s in shape[1:3]) + tuple(shape[3:])

    def build(self, input_shape):
        super().build(self._padded(input_shape))

    def call(self, inputs):
        if self.torch_padding:
            p = self.torch_padding
            inputs = tf.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]])
        return super().call(inputs)

    def compute_output_shape(self, input_shape):
        return super().compute_output_shape(self._padded(input_shape))

    def get_config(self):
        config = super().get_config()
        config.pop("padding", None)
        config["torch_padding"] = self.torch_padding
        return config


def conv(filters, kernel_size=3, strides=1, name=None):
    """A conv with PyTorch's `padding = kernel_size // 2` (plain "same" when the stride is 1)."""
    if strides == 1:
        return keras.layers.Conv2D(filters, kernel_size, padding="same", kernel_initializer=torch_default_init(),
                                   name=name)
    return TorchConv2D(filters, kernel_size, strides=strides, torch_padding=kernel_size // 2, name=name)


def upsample2x(x):
    """`nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False)` (TF2 resize uses half-pixel centres)."""
    shape = tf.shape(x)
    y = tf.image.resize(x, [2 * shape[1], 2 * shape[2]], method="bilinear")
    return tf.cast(y, x.dtype)


def max_pool_3s2p1(x):
    """`nn.MaxPool2d(3, stride=2, padding=1)` (pads with -inf)."""
    x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=float("-inf"))
    return tf.nn.max_pool2d(x, 3, 2, "VALID")


def avg_pool_3s2p1(x):
    """`nn.AvgPool2d(3, stride=2, padding=1)` with PyTorch's default count_include_pad=True (always / 9)."""
    x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    return tf.nn.avg_pool2d(x, 3, 2, "VALID")


def _conv_cat_ref(conv, x, ref, num_frames):
    """`conv(cat([x, ref], -1))` for a stride-1 "same" Conv2D; with `num_frames` = T, x is [B·T, h, w, c] and ref
    [B, h, w, c'] (one reference per item, shared by its T frames): conv(x, K_x) + conv(ref, K_ref) broadcast."""
    if num_frames is None:
        return conv(tf.concat([x, ref], -1))
    c = x.shape[-1]
    kernel = tf.cast(conv.kernel, x.dtype)
    y = tf.nn.conv2d(x, kernel[:, :, :c], 1, "SAME")
    y_ref = tf.nn.conv2d(ref, kernel[:, :, c:], 1, "SAME") + tf.cast(conv.bias, x.dtype)
    shape = tf.shape(y)
    y = tf.reshape(y, [-1, num_frames, shape[1], shape[2], conv.filters]) + y_ref[:, None]
    return tf.reshape(y, shape)


def _feature_shape(channels):
    return (None, None, None, channels)


def _build_dcn(layer, nf):
    if not layer.built:
        layer.build(_feature_shape(nf), _feature_shape(nf))
        layer.built = True


def _dcn(num_feat, deformable_groups, impl, name, mode="dcn"):
    if mode == "conv":  # dcn_mode="conv": a plain 3x3 conv in the DCN's place (its `kernel`/`bias` = the DCN's)
        return conv(num_feat, name=name)
    from tfvr.layers.deform_conv import ModulatedDeformConv2D

    return ModulatedDeformConv2D(num_feat, 3, padding=1, deformable_groups=deformable_groups, impl=impl, name=name)


DCN_MODES = ("dcn", "conv")


def _check_dcn_mode(dcn_mode):
    if dcn_mode not in DCN_MODES:
        raise ValueError(f"dcn_mode must be one of {DCN_MODES}, got {dcn_mode!r}")


def sequential_chunks(total, size, fn, dtype, element_shape, axis=0):
    """concat([fn(0, size), fn(size, 2·size), ..., fn(.., total)], axis), one chunk computed at a time (a
    `tf.while_loop` with `parallel_iterations=1`), so the working set is one chunk's whatever `total`; `total` and
    `size` may be tensors. fn(start, stop) returns a `dtype` tensor of `element_shape` (its rank; None for unknown
    sizes) holding the chunk along `axis`."""
    n = (total + size - 1) // size
    rank = len(element_shape)
    front = [axis] + [a for a in range(rank) if a != axis]  # TensorArray.concat joins along axis 0
    back = [front.index(a) for a in range(rank)]

    def body(i, parts):
        start = i * size
        return i + 1, parts.write(i, tf.transpose(fn(start, tf.minimum(total, start + size)), front))

    shape = tf.TensorShape([element_shape[a] for a in front])
    parts = tf.TensorArray(dtype, size=n, infer_shape=False, element_shape=shape)
    _, parts = tf.while_loop(lambda i, _: i < n, body, [tf.constant(0), parts], parallel_iterations=1)
    return tf.transpose(parts.concat(), back)


@keras.saving.register_keras_serializable(package="tfvr")
class PCDAlignment(keras.layers.Layer):
    """Pyramid, Cascading and Deformable alignment (3 levels + a cascading DCN).

    Args:
        num_feat: int, feature channels.
        deformable_groups: int, offset groups per DCN.
        dcn_impl: "auto" | "reference" | "kernel" (tfvr.ops.deform_conv).
        dcn_mode: "dcn" (BasicSR) or "conv": each of the four DCN packs is a plain 3x3 conv with the DCN's main
            `kernel`/`bias` (BasicSR names `*.dcn_pack.l*.weight/bias`, `cas_dcnpack.weight/bias`) and the offset
            branch is gone: no `offset_conv*` / `cas_offset_conv*` and no DCN `conv_offset`, so the reference
            features are not used here (the reference frame enters at fusion). Seed 001's "DCN -> plain conv" step.

    Call: `nbr_feats` and `ref_feats`, lists [L1, L2, L3] of `[N, H/2^l, W/2^l, num_feat]` (N = frames folded into
    the batch); returns the aligned L1 features `[N, H, W, num_feat]`. Offset inputs are `cat([nbr, ref])`;
    up-sampled offsets are multiplied by 2; no LReLU on the L1 pyramid output (before the cascade).
    """

    def __init__(self, num_feat=64, deformable_groups=8, dcn_impl="auto", dcn_mode="dcn", **kwargs):
        super().__init__(**kwargs)
        _check_dcn_mode(dcn_mode)
        self.num_feat = int(num_feat)
        self.deformable_groups = int(deformable_groups)
        self.dcn_impl = dcn_impl
        self.dcn_mode = dcn_mode
        nf, g = self.num_feat, self.deformable_groups
        offsets = dcn_mode == "dcn"
        for i in (3, 2, 1):
            if offsets:
                setattr(self, f"offset_conv1_l{i}", conv(nf, name=f"offset_conv1_l{i}"))
                setattr(self, f"offset_conv2_l{i}", conv(nf, name=f"offset_conv2_l{i}"))
                if i < 3:
                    setattr(self, f"offset_conv3_l{i}", conv(nf, name=f"offset_conv3_l{i}"))
            if i < 3:
                setattr(self, f"feat_conv_l{i}", conv(nf, name=f"feat_conv_l{i}"))
            setattr(self, f"dcn_pack_l{i}", _dcn(nf, g, dcn_impl, f"dcn_pack_l{i}", dcn_mode))
        if offsets:
            self.cas_offset_conv1 = conv(nf, name="cas_offset_conv1")
            self.cas_offset_conv2 = conv(nf, name="cas_offset_conv2")
        self.cas_dcnpack = _dcn(nf, g, dcn_impl, "cas_dcnpack", dcn_mode)

    def build(self, nbr_feats_shape=None, ref_feats_shape=None):
        # Explicit, so Keras never has to trace `call` (two list inputs) to find the variables.
        nf = self.num_feat
        one, two = _feature_shape(nf), _feature_shape(2 * nf)
        if self.dcn_mode == "conv":
            for i in (3, 2, 1):
                if i < 3:
                    getattr(self, f"feat_conv_l{i}").build(two)
                getattr(self, f"dcn_pack_l{i}").build(one)
            self.cas_dcnpack.build(one)
            self.built = True
            return
        for i in (3, 2, 1):
            getattr(self, f"offset_conv1_l{i}").build(two)
            getattr(self, f"offset_conv2_l{i}").build(one if i == 3 else two)
            if i < 3:
                getattr(self, f"offset_conv3_l{i}").build(one)
                getattr(self, f"feat_conv_l{i}").build(two)
            _build_dcn(getattr(self, f"dcn_pack_l{i}"), nf)
        self.cas_offset_conv1.build(two)
        self.cas_offset_conv2.build(one)
        _build_dcn(self.cas_dcnpack, nf)
        self.built = True

    def call(self, nbr_feats, ref_feats, num_frames=None):
        # num_frames=None: BasicSR's interface (ref_feats have the batch of nbr_feats). num_frames=T: nbr_feats are
        # [B·T, ...] (frame-major within each item) and ref_feats [B, ...], used for all T frames of an item. Then
        # the convs over cat([x, ref]) split their kernel and convolve the reference part once per item, not T
        # times - the same function, with less work and no repeated reference tensors.
        up_offset = up_feat = None
        feat = None
        if self.dcn_mode == "conv":  # the pyramid and cascade without offsets: plain convs, same feature path
            for i in (3, 2, 1):
                feat = getattr(self, f"dcn_pack_l{i}")(nbr_feats[i - 1])
                if i < 3:
                    feat = getattr(self, f"feat_conv_l{i}")(tf.concat([feat, up_feat], -1))
                if i > 1:
                    up_feat = upsample2x(lrelu(feat))
            return lrelu(self.cas_dcnpack(feat))
        for i in (3, 2, 1):
            nbr, ref = nbr_feats[i - 1], ref_feats[i - 1]
            offset = lrelu(_conv_cat_ref(getattr(self, f"offset_conv1_l{i}"), nbr, ref, num_frames))
            if i == 3:
                offset = lrelu(getattr(self, f"offset_conv2_l{i}")(offset))
            else:
                offset = lrelu(getattr(self, f"offset_conv2_l{i}")(tf.concat([offset, up_offset], -1)))
                offset = lrelu(getattr(self, f"offset_conv3_l{i}")(offset))
            feat = getattr(self, f"dcn_pack_l{i}")(nbr, offset)
            if i < 3:
                feat = getattr(self, f"feat_conv_l{i}")(tf.concat([feat, up_feat], -1))
            if i > 1:
                feat = lrelu(feat)
                up_offset = upsample2x(offset) * 2.0  # offsets are in pixels: double them with the resolution
                up_feat = upsample2x(feat)
        offset = lrelu(_conv_cat_ref(self.cas_offset_conv1, feat, ref_feats[0], num_frames))
        offset = lrelu(self.cas_offset_conv2(offset))
        return lrelu(self.cas_dcnpack(feat, offset))

    def pack_layers(self) -> dict:
        """{BasicSR name: layer} of the four packs: the DCNs, or with dcn_mode="conv" the plain convs instead."""
        return {"dcn_pack.l3": self.dcn_pack_l3, "dcn_pack.l2": self.dcn_pack_l2, "dcn_pack.l1": self.dcn_pack_l1,
                "cas_dcnpack": self.cas_dcnpack}

    def dcn_layers(self) -> dict:
        """The deformable convs ({} with dcn_mode="conv")."""
        return self.pack_layers() if self.dcn_mode == "dcn" else {}

    def torch_layer_map(self) -> dict:
        m = {}
        for i in (3, 2, 1):
            for base in ("offset_conv1", "offset_conv2", "offset_conv3", "dcn_pack", "feat_conv"):
                layer = getattr(self, f"{base}_l{i}", None)
                if layer is not None:
                    m[f"{base}.l{i}"] = layer
        if self.dcn_mode == "dcn":
            m.update(cas_offset_conv1=self.cas_offset_conv1, cas_offset_conv2=self.cas_offset_conv2)
        m["cas_dcnpack"] = self.cas_dcnpack
        return m

    def get_config(self):
        return with_attributes(super().get_config(), self, "num_feat", "deformable_groups", "dcn_impl", "dcn_mode")


@keras.saving.register_keras_serializable(package="tfvr")
class TSAFusion(keras.layers.Layer):
    """Temporal and Spatial Attention fusion.

    Args:
        num_feat: int, feature channels C.
        num_frame: int, frames T.
        center_frame_idx: int, the reference frame.

    Call: aligned features `[B, T, H, W, C]` (H, W multiples of 4) → fused `[B, H, W, C]`.
    Temporal: `sigmoid(Σ_c emb_t · emb_ref)` weights each frame; `feat_fusion` 1×1 + LReLU. Spatial: a 2-level
    max+avg-pool pyramid, bilinear ×2 up-sampling; output `feat · sigmoid(attn) · 2 + attn_add`.
    """

    # every conv of the module: name -> kernel size (BasicSR's TSAFusion)
    _KERNELS = {"temporal_attn1": 3, "temporal_attn2": 3, "feat_fusion": 1, "spatial_attn1": 1, "spatial_attn2": 1,
                "spatial_attn3": 3, "spatial_attn4": 1, "spatial_attn5": 3, "spatial_attn_l1": 1,
                "spatial_attn_l2": 3, "spatial_attn_l3": 3, "spatial_attn_add1": 1, "spatial_attn_add2": 1}
    _NAMES = tuple(_KERNELS)

    def __init__(self, num_feat=64, num_frame=5, center_frame_idx=2, **kwargs):
        super().__init__(**kwargs)
        self.num_feat = int(num_feat)
        self.num_frame = int(num_frame)
        self.center_frame_idx = int(center_frame_idx)
        nf = self.num_feat
        for n, k in self._KERNELS.items():  # created in this order (the weights' order)
            setattr(self, n, conv(nf, k, name=n))

    def build(self, aligned_shape=None):
        nf, tnf = _feature_shape(self.num_feat), _feature_shape(self.num_frame * self.num_feat)
        self.temporal_attn1.build(nf)
        self.temporal_attn2.build(nf)
        self.feat_fusion.build(tnf)
        self.spatial_attn1.build(tnf)
        self.spatial_attn2.build(_feature_shape(2 * self.num_feat))
        self.spatial_attn_l2.build(_feature_shape(2 * self.num_feat))
        for name in ("spatial_attn3", "spatial_attn4", "spatial_attn5", "spatial_attn_l1", "spatial_attn_l3",
                     "spatial_attn_add1", "spatial_attn_add2"):
            getattr(self, name).build(nf)
        self.built = True

    def call(self, aligned):
        shape = tf.shape(aligned)
        b, t, h, w = shape[0], self.num_frame, shape[2], shape[3]
        c = self.num_feat
        emb_ref = self.temporal_attn1(aligned[:, self.center_frame_idx])  # [B, H, W, C]
        emb = self.temporal_attn2(tf.reshape(aligned, [b * t, h, w, c]))
        emb = tf.reshape(emb, [b, t, h, w, c])
        corr = tf.sigmoid(tf.reduce_sum(emb * emb_ref[:, None], axis=-1, keepdims=True))  # [B, T, H, W, 1]
        weighted = aligned * corr
        # Frame-major channel concatenation, the order of PyTorch's view(b, t*c, h, w).
        weighted = tf.reshape(tf.transpose(weighted, [0, 2, 3, 1, 4]), [b, h, w, t * c])

        feat = lrelu(self.feat_fusion(weighted))

        attn = lrelu(self.spatial_attn1(weighted))
        attn = lrelu(self.spatial_attn2(tf.concat([max_pool_3s2p1(attn), avg_pool_3s2p1(attn)], -1)))
        attn_level = lrelu(self.spatial_attn_l1(attn))
        attn_level = tf.concat([max_pool_3s2p1(attn_level), avg_pool_3s2p1(attn_level)], -1)
        attn_level = lrelu(self.spatial_attn_l2(attn_level))
        attn_level = upsample2x(lrelu(self.spatial_attn_l3(attn_level)))

        attn = lrelu(self.spatial_attn3(attn)) + attn_level
        attn = lrelu(self.spatial_attn4(attn))
        attn = self.spatial_attn5(upsample2x(attn))
        attn_add = self.spatial_attn_add2(lrelu(self.spatial_attn_add1(attn)))
        return feat * tf.sigmoid(attn) * 2.0 + attn_add

    def torch_layer_map(self) -> dict:
        return {n: getattr(self, n) for n in self._NAMES}

    def get_config(self):
        return with_attributes(super().get_config(), self, "num_feat", "num_frame", "center_frame_idx")


@keras.saving.register_keras_serializable(package="tfvr")
class PredeblurModule(keras.layers.Layer):
    """Pre-deblurring module (EDVR's deblurring track).

    Args:
        num_in_ch: int, image channels.
        num_feat: int, feature channels.
        hr_in: bool, two extra stride-2 convs (the input is high resolution; features come out at 1/4 size).

    Call: images `[N, H, W, num_in_ch]` → features `[N, H', W', num_feat]` (H' = H, or H/4 with hr_in).
    Residual blocks: L3 ×1, L2 ×2, L1 ×5 with the up-sampled L2 result added after L1 block 2.
    """

    def __init__(self, num_in_ch=3, num_feat=64, hr_in=False, **kwargs):
        super().__init__(**kwargs)
        self.num_in_ch = int(num_in_ch)
        self.num_feat = int(num_feat)
        self.hr_in = bool(hr_in)
        nf = self.num_feat
        self.conv_first = conv(nf, name="conv_first")
        if self.hr_in:
            self.stride_conv_hr1 = conv(nf, strides=2, name="stride_conv_hr1")
            self.stride_conv_hr2 = conv(nf, strides=2, name="stride_conv_hr2")
        self.stride_conv_l2 = conv(nf, strides=2, name="stride_conv_l2")
        self.stride_conv_l3 = conv(nf, strides=2, name="stride_conv_l3")
        self.resblock_l3 = ResidualBlockNoBN(nf, name="resblock_l3")
        self.resblock_l2_1 = ResidualBlockNoBN(nf, name="resblock_l2_1")
        self.resblock_l2_2 = ResidualBlockNoBN(nf, name="resblock_l2_2")
        for i in range(5):
            setattr(self, f"resblock_l1_{i}", ResidualBlockNoBN(nf, name=f"resblock_l1_{i}"))

    @property
    def resblock_l1(self) -> list:
        # Blocks are attributes, not a list: Keras 3 lists of layers are not tf.train.Checkpoint dependencies.
        return [getattr(self, f"resblock_l1_{i}") for i in range(5)]

    def build(self, x_shape=None):
        nf = _feature_shape(self.num_feat)
        self.conv_first.build(_feature_shape(self.num_in_ch))
        for layer in self.torch_layer_map().values():
            if layer is not self.conv_first:
                layer.build(nf)
        self.built = True

    def call(self, x):
        feat_l1 = lrelu(self.conv_first(x))
        if self.hr_in:
            feat_l1 = lrelu(self.stride_conv_hr1(feat_l1))
            feat_l1 = lrelu(self.stride_conv_hr2(feat_l1))
        feat_l2 = lrelu(self.stride_conv_l2(feat_l1))
        feat_l3 = lrelu(self.stride_conv_l3(feat_l2))
        feat_l3 = upsample2x(self.resblock_l3(feat_l3))
        feat_l2 = self.resblock_l2_1(feat_l2) + feat_l3
        feat_l2 = upsample2x(self.resblock_l2_2(feat_l2))
        for block in self.resblock_l1[:2]:
            feat_l1 = block(feat_l1)
        feat_l1 = feat_l1 + feat_l2
        for block in self.resblock_l1[2:]:
            feat_l1 = block(feat_l1)
        return feat_l1

    def torch_layer_map(self) -> dict:
        names = ["conv_first", "stride_conv_l2", "stride_conv_l3", "resblock_l3", "resblock_l2_1", "resblock_l2_2"]
        if self.hr_in:
            names[1:1] = ["stride_conv_hr1", "stride_conv_hr2"]
        m = {n: getattr(self, n) for n in names}
        m.update({f"resblock_l1.{i}": blk for i, blk in enumerate(self.resblock_l1)})
        return m

    def get_config(self):
        return with_attributes(super().get_config(), self, "num_in_ch", "num_feat", "hr_in")


@keras.saving.register_keras_serializable(package="tfvr")
class EDVR(PresetMixin, keras.Model):
    """EDVR video restoration network (×4 super-resolution, or same-size deblurring with `hr_in`).

    Args: exactly the fields of `tfvr.models.edvr.config.EDVRConfig` (BasicSR's `EDVR(...)` kwargs + `dcn_impl`,
    `pad_mode`, `dcn_mode`).

    Call: frames `[B, T, H, W, num_in_ch]` float in [0, 1] (T = num_frame, any H, W) → the restored centre frame
    `[B, s·H, s·W, num_out_ch]` (s = 4, or 1 with hr_in), not clipped.

    Reference: Wang, Chan, Yu, Dong, Loy, "EDVR: Video Restoration with Enhanced Deformable Convolutional
    Networks", CVPR Workshops 2019; code: XPixelGroup/BasicSR `basicsr/archs/edvr_arch.py`.
    """

    # `EDVR.from_preset("edvr_m")` ...: BasicSR's configurations (tfvr/models/edvr/presets.py), and the released
    # checkpoints of `tfvr.presets` (family "edvr"; their kwargs are BasicSR's, i.e. this constructor's).
    presets = _PRESETS
    preset_family = "edvr"

    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_frame=5, deformable_groups=8,
                 num_extract_block=5, num_reconstruct_block=10, center_frame_idx=None, hr_in=False,
                 with_predeblur=False, with_tsa=True, dcn_impl="auto", pad_mode="reflect", dcn_mode="dcn", **kwargs):
        super().__init__(**kwargs)
        _check_dcn_mode(dcn_mode)
        if hr_in and not with_predeblur:
            raise ValueError("EDVR(hr_in=True) needs with_predeblur=True (BasicSR's EDVR cannot run without it: "
                             "the features would stay at full resolution)")
        if num_in_ch != num_out_ch:
            raise ValueError(f"EDVR adds the centre frame to its output, so num_in_ch ({num_in_ch}) must equal "
                             f"num_out_ch ({num_out_ch})")
        if pad_mode not in ("reflect", "replicate", "zeros"):
            raise ValueError(f"pad_mode must be 'reflect', 'replicate' or 'zeros', got {pad_mode!r}")
        self.num_in_ch = int(num_in_ch)
        self.num_out_ch = int(num_out_ch)
        self.num_feat = int(num_feat)
        self.num_frame = int(num_frame)
        self.deformable_groups = int(deformable_groups)
        self.num_extract_block = int(num_extract_block)
        self.num_reconstruct_block = int(num_reconstruct_block)
        self.center_frame_idx = None if center_frame_idx is None else int(center_frame_idx)
        self.center = self.num_frame // 2 if center_frame_idx is None else int(center_frame_idx)
        if not 0 <= self.center < self.num_frame:
            raise ValueError(f"center_frame_idx {self.center} is outside 0..{self.num_frame - 1}")
        self.hr_in = bool(hr_in)
        self.with_predeblur = bool(with_predeblur)
        self.with_tsa = bool(with_tsa)
        self.dcn_impl = dcn_impl
        self.pad_mode = pad_mode
        self.dcn_mode = dcn_mode
        self.scale = 1 if self.hr_in else 4
        self.size_multiple = 16 if self.hr_in else 4
        nf = self.num_feat

        if self.with_predeblur:
            self.predeblur = PredeblurModule(self.num_in_ch, nf, hr_in=self.hr_in, name="predeblur")
            self.conv_1x1 = conv(nf, 1, name="conv_1x1")
        else:
            self.conv_first = conv(nf, name="conv_first")
        # Blocks are attributes, not lists: Keras 3 lists of layers are not tf.train.Checkpoint dependencies
        # (a model-only checkpoint would silently miss them).
        for i in range(self.num_extract_block):
            setattr(self, f"feature_extraction_{i}", ResidualBlockNoBN(nf, name=f"feature_extraction_{i}"))
        self.conv_l2_1 = conv(nf, strides=2, name="conv_l2_1")
        self.conv_l2_2 = conv(nf, name="conv_l2_2")
        self.conv_l3_1 = conv(nf, strides=2, name="conv_l3_1")
        self.conv_l3_2 = conv(nf, name="conv_l3_2")
        self.pcd_align = PCDAlignment(nf, self.deformable_groups, dcn_impl=dcn_impl, dcn_mode=dcn_mode,
                                      name="pcd_align")
        if self.with_tsa:
            self.fusion = TSAFusion(nf, self.num_frame, self.center, name="fusion")
        else:
            self.fusion = conv(nf, 1, name="fusion")
        for i in range(self.num_reconstruct_block):
            setattr(self, f"reconstruction_{i}", ResidualBlockNoBN(nf, name=f"reconstruction_{i}"))
        self.upconv1 = conv(nf * 4, name="upconv1")
        self.upconv2 = conv(64 * 4, name="upconv2")
        self.pixel_shuffle = PixelShuffle(2, name="pixel_shuffle")
        self.conv_hr = conv(64, name="conv_hr")
        self.conv_last = conv(self.num_out_ch, name="conv_last")

    @property
    def feature_extraction(self) -> list:
        return [getattr(self, f"feature_extraction_{i}") for i in range(self.num_extract_block)]

    @property
    def reconstruction(self) -> list:
        return [getattr(self, f"reconstruction_{i}") for i in range(self.num_reconstruct_block)]

    def build(self, input_shape=None):
        self._build_trunk()
        self._build_alignment()
        self.built = True

    def _build_trunk(self):
        """Weights of every stage but the alignment: feature extraction, fusion, reconstruction."""
        nf = _feature_shape(self.num_feat)
        if self.with_predeblur:
            self.predeblur.build(_feature_shape(self.num_in_ch))
            self.conv_1x1.build(nf)
        else:
            self.conv_first.build(_feature_shape(self.num_in_ch))
        for layer in (*self.feature_extraction, *self.reconstruction, self.upconv1):
            layer.build(nf)
        if self.with_tsa:
            self.fusion.build()
        else:
            self.fusion.build(_feature_shape(self.num_frame * self.num_feat))
        self.upconv2.build(nf)
        self.conv_hr.build(_feature_shape(64))
        self.conv_last.build(_feature_shape(64))

    def _build_alignment(self):
        """Weights of the alignment stage: the L2/L3 pyramid convs and PCD."""
        nf = _feature_shape(self.num_feat)
        for layer in (self.conv_l2_1, self.conv_l2_2, self.conv_l3_1, self.conv_l3_2):
            layer.build(nf)
        self.pcd_align.build()

    # ------------------------------------------------------------------------------------------------ stages
    # call() = pad -> extract -> align -> memory_read (identity here) -> fuse -> reconstruct -> crop. Subclasses
    # override one stage (MemEDVR: align without PCD, and the memory read) instead of copying the forward pass.
    def call(self, x, training=None):
        return self.run_stages(x, training=training)[0]

    def run_stages(self, x, training=None):
        """The forward pass; returns (output [B, s·H, s·W, C], the extra value `memory_read` returned)."""
        x = tf.convert_to_tensor(x)
        x_in = x  # the caller's dtype (float32 from the serving graph): the residual's base is added in float32
        if x.dtype != self.compute_dtype:
            x = tf.cast(x, self.compute_dtype)
        shape = tf.shape(x)
        b, h0, w0 = shape[0], shape[2], shape[3]
        x = pad_to_multiple(x, self.size_multiple, axes=(2, 3), mode=_PAD_MODES[self.pad_mode])
        feat_l1 = self.extract(x)
        aligned = self.align(feat_l1, b, training=training)
        aligned, extra = self.memory_read(aligned)
        # The residual's base comes from the input as given (float32 from the serving graph), not its 16-bit cast.
        c = self.center
        x_center = pad_to_multiple(tf.cast(x_in[:, c:c + 1], tf.float32), self.size_multiple, axes=(2, 3),
                                   mode=_PAD_MODES[self.pad_mode])[:, 0]
        out = self.reconstruct(self.fuse(aligned), x_center, training=training)
        return out[:, : self.scale * h0, : self.scale * w0], extra

    def extract(self, x):
        """Padded frames [B, T, H, W, C] -> per-frame L1 features [B·T, h, w, nf] (h = H/4 with hr_in)."""
        shape = tf.shape(x)
        frames = tf.reshape(x, [shape[0] * self.num_frame, shape[2], shape[3], self.num_in_ch])
        if self.with_predeblur:
            feat_l1 = self.conv_1x1(self.predeblur(frames))
        else:
            feat_l1 = lrelu(self.conv_first(frames))
        for block in self.feature_extraction:
            feat_l1 = block(feat_l1)
        return feat_l1

    def align(self, feat_l1, b, training=None):
        """L1 features [B·T, h, w, nf] -> every frame aligned to the centre one by PCD, [B, T, h, w, nf]. Outside
        training the frames go through PCD in groups of `align_chunk_pixels` (see there)."""
        t = self.num_frame
        feat_l2 = lrelu(self.conv_l2_2(lrelu(self.conv_l2_1(feat_l1))))
        feat_l3 = lrelu(self.conv_l3_2(lrelu(self.conv_l3_1(feat_l2))))
        clips, refs = [], []
        for f in (feat_l1, feat_l2, feat_l3):
            fs = tf.shape(f)
            clip = tf.reshape(f, [b, t, fs[1], fs[2], self.num_feat])
            clips.append(clip)
            refs.append(clip[:, self.center])

        if training or self.align_chunk_pixels is None or in_xla_context():
            return self.per_clip(self.pcd_align([feat_l1, feat_l2, feat_l3], refs, num_frames=t), b)
        fs = tf.shape(feat_l1)
        k = tf.maximum(1, self.align_chunk_pixels // (fs[1] * fs[2]))

        def chunk(f0, f1):
            # Frames f0..f1-1 of every item aligned to its centre frame in one batched pass: [B·k, ...] against the
            # B centre frames (PCDAlignment convolves the reference half of its cat([nbr, ref]) convs once per item).
            nbr = [tf.reshape(c[:, f0:f1], tf.concat([[-1], tf.shape(c)[2:]], 0)) for c in clips]
            y = self.pcd_align(nbr, refs, num_frames=f1 - f0)
            return tf.reshape(y, [b, f1 - f0, fs[1], fs[2], self.num_feat])

        out = sequential_chunks(t, k, chunk, self.pcd_align.compute_dtype, [None, None, None, None, self.num_feat],
                                axis=1)
        out.set_shape([None, t, *feat_l1.shape[1:3], self.num_feat])
        return out

    def per_clip(self, feat, b):
        """[B·T, h, w, nf] -> [B, T, h, w, nf]."""
        fs = tf.shape(feat)
        return tf.reshape(feat, [b, self.num_frame, fs[1], fs[2], self.num_feat])

    def memory_read(self, aligned):
        """Hook between alignment and fusion: returns (features, extra). EDVR: (aligned, None)."""
        return aligned, None

    def fuse(self, aligned):
        """Aligned features [B, T, h, w, nf] -> fused [B, h, w, nf] (TSA or a 1x1 conv)."""
        if self.with_tsa:
            return self.fusion(aligned)
        s = tf.shape(aligned)
        return self.fusion(tf.reshape(tf.transpose(aligned, [0, 2, 3, 1, 4]),
                                      [s[0], s[2], s[3], self.num_frame * self.num_feat]))

    def reconstruct(self, feat, x_center, training=None):
        """Fused features [B, h, w, nf] + the padded float32 centre frame -> the restored frame, float32 (x4 up
        unless hr_in). Outside training the x4 tail runs in row strips (`tail_strip_pixels`)."""
        out = feat
        for block in self.reconstruction:
            out = block(out)
        if training or self.tail_strip_pixels is None or in_xla_context():
            out = self.tail(out)
        else:
            out = self.tail_in_strips(out, self.tail_strip_pixels)
        if self.hr_in:
            base = x_center
        else:
            fs = tf.shape(feat)
            base = tf.image.resize(x_center, [4 * fs[1], 4 * fs[2]], method="bilinear")
        # The final residual add in float32 (a 16-bit sum would round the output to ~1/256); output float32.
        return tf.cast(out, tf.float32) + tf.cast(base, tf.float32)

    # Inference in pieces (tests/models/edvr/test_inference_chunks.py: the output equals the one-pass graph's;
    # training and XLA always take the one pass). EDVR-M at 180x320 -> 720x1280, float32, live tensors
    # (TensorFlow's allocator statistics) and process peak RSS: one pass 1,040 MB / 2.1-2.3 GB, with frame groups
    # 522 MB / 1.3-1.5 GB at the same speed (docs/performance.md, "Session 10").
    #
    # PCD on all T frames at once (frames folded into the batch) is what training uses; outside training, frames
    # go through it in groups of max(1, align_chunk_pixels // (h w)) (h, w: the L1 feature map), one group at a
    # time: one frame at a time from 256x256 up. None: all frames in one pass.
    align_chunk_pixels: int | None = 1 << 16
    # The x4 tail (upconv1 ... conv_last) holds the largest single tensors: 236 MB per 64-channel map at a
    # 720x1280 output (its live peak there is 519 MB, like one frame of PCD). Outside training it runs in horizontal
    # strips of at most this many output pixels, one strip at a time, each with TAIL_HALO rows of the neighbouring
    # strips, so its working set stops growing with the frame past about 1024x1024 (a 720p output is one strip: the
    # halo would cost ~5 % and save nothing there). None: the whole frame at once.
    tail_strip_pixels: int | None = 1 << 20
    # Rows (at the tail's input resolution) that the four 3x3 convs reach across a strip edge: upconv1 one, upconv2
    # one at 2x (half a row here, rounded up), conv_hr and conv_last one each at 4x (half a row together).
    TAIL_HALO = 2

    def tail(self, feat):
        """Reconstructed features [B, h, w, nf] -> the x4 residual [B, 4h, 4w, num_out_ch] (compute dtype)."""
        out = lrelu(self.pixel_shuffle(self.upconv1(feat)))
        out = lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = lrelu(self.conv_hr(out))
        return self.conv_last(out)

    def tail_in_strips(self, feat, strip_pixels: int):
        """`tail(feat)` computed strip by strip (`sequential_chunks`): strips of max(1, strip_pixels // (16 w))
        rows of `feat`, each run with TAIL_HALO rows more on each side where the frame has them (the convs' zero
        padding is then right at the frame's edges), the halo's output cropped."""
        s = tf.shape(feat)
        h, w = s[1], s[2]
        halo = self.TAIL_HALO

        def strip(r0, r1):
            s0, s1 = tf.maximum(0, r0 - halo), tf.minimum(h, r1 + halo)
            return self.tail(feat[:, s0:s1])[:, 4 * (r0 - s0): 4 * (r1 - s0)]

        rows = tf.maximum(1, strip_pixels // (16 * w))
        out = sequential_chunks(h, rows, strip, self.conv_last.compute_dtype, [None, None, None, self.num_out_ch],
                                axis=1)
        static = feat.shape
        out.set_shape([static[0], None if static[1] is None else 4 * static[1],
                       None if static[2] is None else 4 * static[2], self.num_out_ch])
        return out

    def build_for_weights(self):
        """Creates every weight (they do not depend on H, W); returns self."""
        if not self.built:
            self.build((None, self.num_frame, None, None, self.num_in_ch))
        return self

    @contextlib.contextmanager
    def dcn_impl_override(self, impl: str):
        """Within the block every DCN of the model uses `impl` (e.g. "reference" while tracing an export, so the
        SavedModel holds no custom op and loads in stock TF Serving), whatever `dcn_impl` the model was built with."""
        from tfvr.ops.deform_conv import implementation

        layers = list(self.dcn_layers().values())
        old = [layer.impl for layer in layers]
        for layer in layers:
            layer.impl = impl
        try:
            with implementation(impl):
                yield
        finally:
            for layer, value in zip(layers, old):
                layer.impl = value

    def dcn_layers(self) -> dict:
        """{BasicSR name: ModulatedDeformConv2D} of the PCD module (for the offset guard and LR multipliers);
        {} with dcn_mode="conv"."""
        return {f"pcd_align.{k}": v for k, v in self.pcd_align.dcn_layers().items()}

    def dcn_packs(self) -> dict:
        """{BasicSR name: layer} of the four PCD packs whatever `dcn_mode`: the DCNs, or the plain convs in their
        place (the "dcn" layer group of `trainer.freeze` and the `dcn_lr_mul` group)."""
        if self.dcn_mode == "dcn":
            return self.dcn_layers()
        return {f"pcd_align.{k}": v for k, v in self.pcd_align.pack_layers().items()}

    def torch_layer_map(self) -> dict:
        """{BasicSR state-dict prefix: Keras layer} for every parameterised layer."""
        m = {}
        if self.with_predeblur:
            m.update({f"predeblur.{k}": v for k, v in self.predeblur.torch_layer_map().items()})
            m["conv_1x1"] = self.conv_1x1
        else:
            m["conv_first"] = self.conv_first
        m.update({f"feature_extraction.{i}": blk for i, blk in enumerate(self.feature_extraction)})
        m.update(conv_l2_1=self.conv_l2_1, conv_l2_2=self.conv_l2_2, conv_l3_1=self.conv_l3_1,
                 conv_l3_2=self.conv_l3_2)
        m.update({f"pcd_align.{k}": v for k, v in self.pcd_align.torch_layer_map().items()})
        if self.with_tsa:
            m.update({f"fusion.{k}": v for k, v in self.fusion.torch_layer_map().items()})
        else:
            m["fusion"] = self.fusion
        m.update({f"reconstruction.{i}": blk for i, blk in enumerate(self.reconstruction)})
        m.update(upconv1=self.upconv1, upconv2=self.upconv2, conv_hr=self.conv_hr, conv_last=self.conv_last)
        return m

    def get_config(self):
        # Only the constructor's arguments (plus Keras's name/trainable/dtype), so from_config round-trips.
        base = {k: v for k, v in super().get_config().items() if k in ("name", "trainable", "dtype")}
        return dict(base, num_in_ch=self.num_in_ch, num_out_ch=self.num_out_ch, num_feat=self.num_feat,
                    num_frame=self.num_frame, deformable_groups=self.deformable_groups,
                    num_extract_block=self.num_extract_block, num_reconstruct_block=self.num_reconstruct_block,
                    center_frame_idx=self.center_frame_idx, hr_in=self.hr_in, with_predeblur=self.with_predeblur,
                    with_tsa=self.with_tsa, dcn_impl=self.dcn_impl, pad_mode=self.pad_mode, dcn_mode=self.dcn_mode)

    @classmethod
    def from_config(cls, config):
        return cls(**config)
