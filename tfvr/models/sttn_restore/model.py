"""STTN-R: Spatio-temporal Transformer Network for video restoration (Kim, Sajjadi, Hirsch, Schölkopf, ECCV 2018).

No public code exists for the paper; this follows the paper and seed 000 (the author's TF notes):

    2N+1 frames ──stack on channels──► UNetFlow ──► (u, v, z) per pixel (× num_flows)
         │                                              │
         └──────────────► spatio_temporal_sample ◄──────┘  (trilinear in x, y and frame index)
                                   │ x̃ (transformed frames)
    reference frame ──concat──► ResNet head (num_blocks residual blocks) ──► ỹ (restored centre frame)

Choices the paper leaves open are constructor arguments (= `STTNRestoreConfig` fields), each with the simplest
reading as default. The single-frame ablation is `use_flow=False`: the same ResNet head on the reference frame only.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfvr.models.saving import PresetMixin
from tfvr.ops.padding import pad_to_multiple
from tfvr.layers.residual import ResidualBlockNoBN
from tfvr.ops.warp import spatio_temporal_sample

_Z_PARAMS = ("tanh", "linear")
_Z_INITS = ("centre", "spread")
_LRELU = 0.1


def _conv(filters, strides=1, name=None, kernel_initializer="he_normal"):
    return keras.layers.Conv2D(filters, 3, strides=strides, padding="same", name=name,
                               kernel_initializer=kernel_initializer)


@keras.saving.register_keras_serializable(package="tfvr")
class UNetFlow(keras.layers.Layer):
    """Spatio-temporal flow estimator: a U-Net over the 2N+1 frames stacked on channels.

    Down-sampling by stride-2 convolutions (not pooling), up-sampling by bilinear interpolation + conv, skip
    connections by concatenation (seed 000). LeakyReLU(0.1) after every conv but the last. The last conv is
    zero-initialised, so at the start u = v = 0 and z = the reference (centre) frame: x̃ starts as the reference.

    Args:
        num_frames: int, T = 2N+1.
        num_channels: int, channels per frame (3).
        feat: int, channels at full resolution; doubled at each level, capped at `max_feat`.
        depth: int, number of stride-2 down-samplings; H and W must be multiples of 2**depth.
        max_feat: int, channel cap.
        num_flows: int, K spatio-temporal flows (each gives one transformed frame).
        z_param: "tanh": z = c + c·tanh(r) with c = (T-1)/2 (always inside [0, T-1], so its gradient never
            dies at a clamp); "linear": z = c + r (clamped by the sampler).
        flow_scale: float, u, v = flow_scale · r (pixels).
        z_init: where z starts (through the bias of the zero-initialised last conv): "centre" = every flow at the
            reference frame; "spread" = flow k at the k-th non-reference frame (cycling), so K = 2N flows start as
            the 2N neighbours (x̃ starts as the raw neighbour frames instead of K copies of the reference).

    Input `[B, T, H, W, C]`; output `[B, H, W, 3·K]`, per flow (u, v, z) with u, v in pixels (dx, dy).
    """

    def __init__(self, num_frames=5, num_channels=3, feat=32, depth=3, max_feat=128, num_flows=1, z_param="tanh",
                 flow_scale=1.0, z_init="centre", **kwargs):
        super().__init__(**kwargs)
        if z_param not in _Z_PARAMS:
            raise ValueError(f"z_param must be one of {_Z_PARAMS}, got {z_param!r}")
        if z_init not in _Z_INITS:
            raise ValueError(f"z_init must be one of {_Z_INITS}, got {z_init!r}")
        self.num_frames = int(num_frames)
        self.num_channels = int(num_channels)
        self.feat = int(feat)
        self.depth = int(depth)
        self.max_feat = int(max_feat)
        self.num_flows = int(num_flows)
        self.z_param = z_param
        self.flow_scale = float(flow_scale)
        self.z_init = z_init
        widths = [min(self.feat * 2**i, self.max_feat) for i in range(self.depth + 1)]
        self.widths = widths
        self.in_conv1 = _conv(widths[0], name="in_conv1")
        self.in_conv2 = _conv(widths[0], name="in_conv2")
        self.down = [(_conv(widths[i], strides=2, name=f"down{i}_conv1"), _conv(widths[i], name=f"down{i}_conv2"))
                     for i in range(1, self.depth + 1)]
        self.up = [(_conv(widths[i - 1], name=f"up{i}_conv1"), _conv(widths[i - 1], name=f"up{i}_conv2"))
                   for i in range(self.depth, 0, -1)]
        self.out_conv = keras.layers.Conv2D(3 * self.num_flows, 3, padding="same", name="out_conv",
                                            kernel_initializer="zeros",
                                            bias_initializer=keras.initializers.Constant(self._initial_bias()))

    def _initial_bias(self):
        bias = np.zeros([self.num_flows, 3], np.float32)
        centre = (self.num_frames - 1) / 2.0
        if self.z_init == "spread" and self.num_frames > 1:
            others = [k for k in range(self.num_frames) if k != self.num_frames // 2]
            for i in range(self.num_flows):
                z = float(others[i % len(others)])
                if self.z_param == "tanh":  # tanh never reaches the end frames: start 4 % of the way in
                    bias[i, 2] = np.arctanh(np.clip((z - centre) / centre, -0.96, 0.96))
                else:
                    bias[i, 2] = z - centre
        return bias.reshape(-1)

    @property
    def multiple(self) -> int:
        return 2**self.depth

    def call(self, frames):
        lrelu = lambda x: tf.nn.leaky_relu(x, _LRELU)  # noqa: E731
        shape = tf.shape(frames)
        b, t, h, w, c = shape[0], shape[1], shape[2], shape[3], shape[4]
        x = tf.reshape(tf.transpose(frames, [0, 2, 3, 1, 4]), [b, h, w, self.num_frames * self.num_channels])
        x = lrelu(self.in_conv2(lrelu(self.in_conv1(x))))
        skips = [x]
        for conv1, conv2 in self.down:
            x = lrelu(conv2(lrelu(conv1(x))))
            skips.append(x)
        skips.pop()
        for conv1, conv2 in self.up:
            skip = skips.pop()
            x = tf.image.resize(x, tf.shape(skip)[1:3], method="bilinear")
            x = lrelu(conv1(x))
            x = lrelu(conv2(tf.concat([x, skip], axis=-1)))
        raw = tf.cast(self.out_conv(x), tf.float32)
        raw = tf.reshape(raw, tf.concat([tf.shape(raw)[:3], [self.num_flows, 3]], 0))
        centre = (self.num_frames - 1) / 2.0
        uv = raw[..., :2] * self.flow_scale
        if self.z_param == "tanh":
            z = centre + centre * tf.tanh(raw[..., 2:])
        else:
            z = centre + raw[..., 2:]
        flow = tf.concat([uv, z], axis=-1)
        return tf.reshape(flow, tf.concat([tf.shape(flow)[:3], [3 * self.num_flows]], 0))

    def get_config(self):
        config = super().get_config()
        config.update(num_frames=self.num_frames, num_channels=self.num_channels, feat=self.feat, depth=self.depth,
                      max_feat=self.max_feat, num_flows=self.num_flows, z_param=self.z_param,
                      flow_scale=self.flow_scale, z_init=self.z_init)
        return config


@keras.saving.register_keras_serializable(package="tfvr")
class ResNetHead(keras.layers.Layer):
    """The image-processing net: conv → `num_blocks` residual blocks (conv-ReLU-conv + identity) → conv.

    The last conv is zero-initialised; with `residual=True` the head predicts ỹ − reference, so an untrained model
    returns the reference frame (the seed used a ResNet-9 here).

    Args:
        num_channels: int, image channels (3).
        num_feat: int, width of the residual blocks.
        num_blocks: int, number of residual blocks (9 = the seed's ResNet-9).
        residual: bool, add the reference frame to the output.
    Input: reference `[B, H, W, C]` and extra inputs `[B, H, W, *]` (x̃, or nothing); output `[B, H, W, C]`.
    """

    def __init__(self, num_channels=3, num_feat=64, num_blocks=9, residual=True, **kwargs):
        super().__init__(**kwargs)
        self.num_channels = int(num_channels)
        self.num_feat = int(num_feat)
        self.num_blocks = int(num_blocks)
        self.residual = bool(residual)
        self.conv_first = _conv(self.num_feat, name="conv_first")
        self.blocks = [ResidualBlockNoBN(self.num_feat, name=f"block{i}") for i in range(self.num_blocks)]
        self.conv_last = keras.layers.Conv2D(self.num_channels, 3, padding="same", name="conv_last",
                                             kernel_initializer="zeros", bias_initializer="zeros")

    def call(self, reference, extra=None):
        x = reference if extra is None else tf.concat([reference, tf.cast(extra, reference.dtype)], axis=-1)
        x = tf.nn.leaky_relu(self.conv_first(x), _LRELU)
        for block in self.blocks:
            x = block(x)
        out = self.conv_last(x)
        return reference + out if self.residual else out

    def get_config(self):
        config = super().get_config()
        config.update(num_channels=self.num_channels, num_feat=self.num_feat, num_blocks=self.num_blocks,
                      residual=self.residual)
        return config


@keras.saving.register_keras_serializable(package="tfvr")
class STTNRestore(PresetMixin, keras.Model):
    """STTN-R (Kim et al., "Spatio-temporal Transformer Network for Video Restoration", ECCV 2018).

    Args:
        num_frames: int, T = 2N+1 input frames; the reference is the centre frame T//2.
        num_channels: int, channels per frame (3).
        use_flow: bool, False = the single-frame ablation (ResNet head on the reference only; no flow, no sampler).
        unet_feat, unet_depth, unet_max_feat: `UNetFlow` width at full resolution, number of stride-2 levels,
            channel cap.
        num_flows: int, K spatio-temporal flows / transformed frames x̃ fed to the head (paper: 1).
        z_param: "tanh" | "linear", parameterisation of the frame index z (see `UNetFlow`).
        flow_scale: float, multiplier of the raw u, v outputs (pixels).
        z_init: "centre" | "spread", where the K frame indices start (see `UNetFlow`).
        padding: "border" | "zeros", spatial border handling of the sampler (`tfvr.ops.warp`).
        num_feat, num_blocks: ResNet head width and depth (seed: ResNet-9).
        residual: bool, the head predicts ỹ − reference.

    Call with frames `[B, T, H, W, C]` float (values in [0, 1] in tfvr's tasks), any H, W (edge-padded inside to a
    multiple of 2**unet_depth, then cropped). Returns a dict: ``output`` ỹ `[B, H, W, C]` float32; with
    `use_flow`, also ``warped`` x̃ `[B, H, W, C·K]` and ``flow`` `[B, H, W, 3·K]` ((u, v, z) per flow, float32).
    """

    # `STTNRestore.from_preset(name)`: the paper's configuration (the class defaults: U-Net 32..128, ResNet-9 with
    # 64 channels; train/configs/sttn_denoise.flags), the demo's (train/configs/sttn_denoise_demo.flags) and the
    # single-frame ablation of each (use_flow=False: same head, no flow / sampler).
    presets = {
        "sttn_r": dict(),
        "sttn_r_single_frame": dict(use_flow=False),
        "sttn_r_demo": dict(unet_feat=16, unet_depth=3, unet_max_feat=64, num_feat=32, num_blocks=5, num_flows=4,
                            z_init="spread"),
        "sttn_r_demo_single_frame": dict(num_feat=32, num_blocks=5, use_flow=False),
    }
    preset_family = "sttn_restore"

    def example_inputs(self):
        """One call on zeros that creates every variable (`from_preset`)."""
        size = 2 ** self.unet_depth * 2 if self.use_flow else 8
        return [((tf.zeros([1, self.num_frames, size, size, self.num_channels]),), {})]

    def __init__(self, num_frames=5, num_channels=3, use_flow=True, unet_feat=32, unet_depth=3, unet_max_feat=128,
                 num_flows=1, z_param="tanh", flow_scale=1.0, z_init="centre", padding="border", num_feat=64,
                 num_blocks=9, residual=True, **kwargs):
        super().__init__(**kwargs)
        if num_frames < 1 or num_frames % 2 != 1:
            raise ValueError(f"num_frames must be odd (2N+1), got {num_frames}")
        if padding not in ("border", "zeros"):
            raise ValueError(f"padding must be 'border' or 'zeros', got {padding!r}")
        self.num_frames = int(num_frames)
        self.num_channels = int(num_channels)
        self.use_flow = bool(use_flow)
        self.unet_feat = int(unet_feat)
        self.unet_depth = int(unet_depth)
        self.unet_max_feat = int(unet_max_feat)
        self.num_flows = int(num_flows)
        self.z_param = z_param
        self.flow_scale = float(flow_scale)
        self.z_init = z_init
        self.padding = padding
        self.num_feat = int(num_feat)
        self.num_blocks = int(num_blocks)
        self.residual = bool(residual)
        self.flow_net = None
        if self.use_flow:
            self.flow_net = UNetFlow(self.num_frames, self.num_channels, self.unet_feat, self.unet_depth,
                                     self.unet_max_feat, self.num_flows, self.z_param, self.flow_scale,
                                     self.z_init, name="flow_net")
        self.head = ResNetHead(self.num_channels, self.num_feat, self.num_blocks, self.residual, name="head")

    @property
    def multiple(self) -> int:
        """H and W are padded to a multiple of this inside `call` (the U-Net's total stride)."""
        return 2**self.unet_depth if self.use_flow else 1

    def call(self, frames, training=False):
        frames = tf.convert_to_tensor(frames)
        h, w = tf.shape(frames)[2], tf.shape(frames)[3]
        if self.use_flow and self.multiple > 1:
            frames = pad_to_multiple(frames, self.multiple, axes=(2, 3))
        reference = frames[:, self.num_frames // 2]
        if not self.use_flow:
            return {"output": tf.cast(self.head(reference), tf.float32)[:, :h, :w]}
        flow = self.flow_net(frames)
        warped = [spatio_temporal_sample(frames, flow[..., 3 * k:3 * k + 3], padding=self.padding)
                  for k in range(self.num_flows)]
        warped = tf.concat(warped, axis=-1) if self.num_flows > 1 else warped[0]
        out = self.head(reference, warped)
        return {
            "output": tf.cast(out, tf.float32)[:, :h, :w],
            "warped": tf.cast(warped, tf.float32)[:, :h, :w],
            "flow": flow[:, :h, :w],
        }

    def get_config(self):
        return dict(
            name=self.name, trainable=self.trainable,
            num_frames=self.num_frames, num_channels=self.num_channels, use_flow=self.use_flow,
            unet_feat=self.unet_feat, unet_depth=self.unet_depth, unet_max_feat=self.unet_max_feat,
            num_flows=self.num_flows, z_param=self.z_param, flow_scale=self.flow_scale, z_init=self.z_init,
            padding=self.padding,
            num_feat=self.num_feat, num_blocks=self.num_blocks, residual=self.residual,
        )
