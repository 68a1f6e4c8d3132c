"""vid2vid's discriminators: pix2pixHD's multi-scale PatchGAN, used both as the conditional image discriminator
(on label ⊕ frame) and, one per temporal scale, as the video discriminator (on K frames ⊕ their K − 1 flows).

Computes what NVIDIA/vid2vid `models/networks.py::MultiscaleDiscriminator` / `NLayerDiscriminator` compute.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfvr.models.saving import ExampleBuild
from tfvr.layers.torch_nn import Activation, AvgPool3x3s2, Conv2d, LazyBuild, Sequence, norm_layer, track_layers

_NDF_MAX = 64


def _nlayer_blocks(ndf: int, n_layers: int, norm: str):
    """pix2pixHD `NLayerDiscriminator`: n_layers + 2 blocks; kernel 4, padding 2, LeakyReLU 0.2."""
    blocks = [[Conv2d(ndf, 4, stride=2, padding=2), Activation("leaky_relu")]]
    nf = ndf
    for _ in range(1, n_layers):
        nf = min(nf * 2, 512)
        blocks.append([Conv2d(nf, 4, stride=2, padding=2), norm_layer(norm), Activation("leaky_relu")])
    nf = min(nf * 2, 512)
    blocks.append([Conv2d(nf, 4, stride=1, padding=2), norm_layer(norm), Activation("leaky_relu")])
    blocks.append([Conv2d(1, 4, stride=1, padding=2)])
    return blocks


class NLayerDiscriminator(LazyBuild, keras.layers.Layer):
    """One PatchGAN: `blocks[j]` is torch's `model{j}` (`scale{s}_layer{j}` inside the multi-scale D)."""

    def __init__(self, ndf: int, n_layers: int, norm: str, scale: int, **kwargs):
        super().__init__(**kwargs)
        self.blocks = [Sequence(b, name=f"scale{scale}_layer{j}") for j, b in enumerate(_nlayer_blocks(ndf, n_layers, norm))]
        track_layers(self, "blocks", self.blocks)

    def call(self, x, training=None):
        feats = []
        for block in self.blocks:
            x = block(x, training=training)
            feats.append(x)
        return feats


@keras.saving.register_keras_serializable("tfvr.vid2vid")
class MultiscaleDiscriminator(ExampleBuild, LazyBuild, keras.Model):
    """Multi-scale conditional PatchGAN (pix2pixHD; vid2vid's image and temporal discriminators).

    num_D PatchGANs see the input at full, ½, ¼ … resolution (AvgPool 3×3/2, padding not counted). The network
    at level i (0 = full resolution) has min(64, ndf·2**i) base channels — the torch module `scale{num_D-1-i}`.

    Args:
      input_nc: input channels (image D: label channels + 3; video D: 3·K + 2·(K − 1)).
      ndf: base channels of the full-resolution network.
      n_layers: stride-2 conv layers per network (3).
      num_D: number of scales.
      norm: "batch" or "instance".
      get_interm_feat: return every block's output (for feature matching), not only the last.

    Call: `disc(x [B,H,W,input_nc])` → list over scales (full resolution first) of lists of features
    [B,h,w,c] (the last of each list is the patch score map [B,h,w,1]).
    """

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, num_D: int = 3, norm: str = "batch",
                 get_interm_feat: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.input_nc, self.ndf, self.n_layers, self.num_D = int(input_nc), int(ndf), int(n_layers), int(num_D)
        self.norm, self.get_interm_feat = norm, bool(get_interm_feat)
        # self.scales[s] is torch's scale s (s = num_D-1 runs at full resolution).
        self.scales = [
            NLayerDiscriminator(min(_NDF_MAX, ndf * 2 ** (num_D - 1 - s)), n_layers, norm, s, name=f"scale{s}")
            for s in range(num_D)
        ]
        track_layers(self, "scales", self.scales)
        self.downsample = AvgPool3x3s2()

    def torch_children(self):
        """(state-dict name, Sequence) in PyTorch's order: `scale{s}_layer{j}`, or `layer{s}` without interm."""
        for s, net in enumerate(self.scales):
            if self.get_interm_feat:
                for j, block in enumerate(net.blocks):
                    yield f"scale{s}_layer{j}", block
            else:
                yield f"layer{s}", Sequence([layer for block in net.blocks for layer in block.items])

    def torch_child(self, name: str):
        for n, child in self.torch_children():
            if n == name:
                return child
        raise KeyError(name)

    def call(self, x, training=None):
        result = []
        for i in range(self.num_D):
            feats = self.scales[self.num_D - 1 - i](x, training=training)
            result.append(feats if self.get_interm_feat else feats[-1:])
            if i != self.num_D - 1:
                x = self.downsample(x)
        return result

    def example_inputs(self):
        """One call on zeros (large enough for every scale's stride-2 convs): creates every variable."""
        s = 2 ** (self.num_D - 1 + self.n_layers) * 4
        return [((tf.zeros([1, s, s, self.input_nc]),), {})]

    def get_config(self):
        return {**super().get_config(), "input_nc": self.input_nc, "ndf": self.ndf, "n_layers": self.n_layers,
                "num_D": self.num_D, "norm": self.norm, "get_interm_feat": self.get_interm_feat}


@keras.saving.register_keras_serializable("tfvr.vid2vid")
class VideoDiscriminator(ExampleBuild, LazyBuild, keras.Model):
    """vid2vid's temporal discriminators: one `MultiscaleDiscriminator` per temporal scale.

    Temporal scale s looks at `n_frames_D` frames taken every `t_step**s` frames (s = 0: consecutive frames), with
    the reference flows between those frames (flow / 20, as vid2vid feeds them), stacked on channels:
    input [B, H, W, 3·K + 2·(K − 1)].

    Args:
      n_frames_D: K, frames per sample (3).
      n_scales_temporal: number of temporal scales (2; vid2vid's Cityscapes setting is 3).
      output_nc, ndf, n_layers, num_D, norm, get_interm_feat: as `MultiscaleDiscriminator`.

    Call: `disc(x, scale)` → `MultiscaleDiscriminator` output of the scale-th network.
    """

    def __init__(self, n_frames_D: int = 3, n_scales_temporal: int = 2, output_nc: int = 3, ndf: int = 64,
                 n_layers: int = 3, num_D: int = 2, norm: str = "batch", get_interm_feat: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.n_frames_D, self.n_scales_temporal, self.output_nc = int(n_frames_D), int(n_scales_temporal), int(output_nc)
        self.ndf, self.n_layers, self.num_D, self.norm = int(ndf), int(n_layers), int(num_D), norm
        self.get_interm_feat = bool(get_interm_feat)
        input_nc = output_nc * n_frames_D + 2 * (n_frames_D - 1)
        self.nets = [
            MultiscaleDiscriminator(input_nc, ndf, n_layers, num_D, norm, get_interm_feat, name=f"netD_T{s}")
            for s in range(n_scales_temporal)
        ]
        track_layers(self, "nets", self.nets)

    @property
    def input_nc(self) -> int:
        return self.nets[0].input_nc

    def call(self, x, scale: int = 0, training=None):
        return self.nets[scale](x, training=training)

    def example_inputs(self):
        """One call per temporal scale on zeros: creates every variable."""
        s = 2 ** (self.num_D - 1 + self.n_layers) * 4
        x = tf.zeros([1, s, s, self.output_nc * self.n_frames_D + 2 * (self.n_frames_D - 1)])
        return [((x,), dict(scale=k)) for k in range(self.n_scales_temporal)]

    def get_config(self):
        return {**super().get_config(), "n_frames_D": self.n_frames_D, "n_scales_temporal": self.n_scales_temporal,
                "output_nc": self.output_nc, "ndf": self.ndf, "n_layers": self.n_layers, "num_D": self.num_D,
                "norm": self.norm, "get_interm_feat": self.get_interm_feat}


def stack_video_input(frames, flows):
    """Video-D input: K frames [B,K,H,W,3] and K−1 flows [B,K−1,H,W,2] (pixels) → [B,H,W,3K + 2(K−1)].

    Flows are divided by 20, as vid2vid's `compute_loss_D_T` does.
    """
    b, k, h, w = tf.unstack(tf.shape(frames)[:4])
    x = tf.reshape(tf.transpose(frames, [0, 2, 3, 1, 4]), [b, h, w, -1])
    f = tf.reshape(tf.transpose(flows / 20.0, [0, 2, 3, 1, 4]), [b, h, w, -1])
    return tf.concat([x, f], axis=-1)
