"""vid2vid's sequential generator (Wang et al., "Video-to-Video Synthesis", NeurIPS 2018), channels-last.

Computes what NVIDIA/vid2vid `models/networks.py::CompositeGenerator` computes (the paper's architecture, not
the later SPADE-based imaginaire rewrite), and its coarse-to-fine `CompositeLocalGenerator`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfvr.models.vid2vid.layers import (
    Activation,
    AvgPool3x3s2,
    Conv2d,
    ConvTranspose2d,
    Pad2d,
    ResnetBlock,
    Sequence,
    norm_layer,
)
from tfvr.ops.warp import backward_warp

FLOW_SCALE = 20.0  # flow = conv(flow_feat) * 20 (the network predicts flow / 20)


def _final(out_nc: int, activation: str | None):
    items = [Pad2d(3, "reflect"), Conv2d(out_nc, 7)]
    if activation:
        items.append(Activation(activation))
    return items


def _down(in_conv_nc: int, ngf: int, n_down: int, norm: str):
    """ReflectionPad3 + conv7×7 + norm + ReLU, then n_down × (conv3×3/2 + norm + ReLU). Indices as PyTorch."""
    items = [Pad2d(3, "reflect"), Conv2d(ngf, 7), norm_layer(norm), Activation("relu")]
    for i in range(n_down):
        items += [Conv2d(ngf * 2 ** (i + 1), 3, stride=2, padding=1), norm_layer(norm), Activation("relu")]
    return items


def _up(ngf: int, n_up: int, norm: str):
    items = []
    for i in range(n_up):
        mult = 2 ** (n_up - i)
        items += [ConvTranspose2d(ngf * mult // 2), norm_layer(norm), Activation("relu")]
    return items


def _blocks(n: int, dim: int, padding_type: str, norm: str):
    return [ResnetBlock(dim, padding_type, norm) for _ in range(n)]


def composite(img_raw, img_prev_last, flow, weight, fg_mask, img_fg, use_raw_only: bool):
    """img_final = img_raw·w + warp(prev, flow)·(1 − w), then the foreground composite (shared by both scales)."""
    if use_raw_only or flow is None:
        img_final = img_raw
    else:
        img_warp = backward_warp(img_prev_last, flow, padding="border")
        img_final = img_raw * weight + img_warp * (1.0 - weight)
    if img_fg is not None:
        img_final = img_fg * fg_mask + img_final * (1.0 - fg_mask)
        img_raw = img_fg * fg_mask + img_raw * (1.0 - fg_mask)
    return img_final, img_raw


@keras.saving.register_keras_serializable("tfvr.vid2vid")
class CompositeGenerator(keras.Model):
    """vid2vid's flow-warping generator for one spatial scale.

    Two encoders are summed: one over the label stack of the current and previous frames (n_frames_G label maps,
    one-hot, optionally with instance-edge maps, stacked on channels) and one over the n_frames_G − 1 previous
    output frames. ResNet blocks are split: the first ⌈n_blocks/2⌉ in each encoder, the rest in each branch. The
    image branch hallucinates `img_raw` (tanh); the flow branch predicts the flow to the previous frame (pixels,
    = conv · 20) and an occlusion weight w (sigmoid). Output: `img_raw·w + warp(prev, flow)·(1 − w)`, warped with
    border padding. With `use_fg_model`, a separate encoder/decoder over the labels hallucinates the foreground,
    composited by the foreground mask taken from the labels.

    Args:
      input_nc: label-stack channels (n_frames_G × (label_nc [+ 1 edge map])).
      output_nc: image channels (3).
      prev_output_nc: previous-frames channels ((n_frames_G − 1) × output_nc); the last output_nc channels are
        the frame that gets warped.
      ngf: width of the first conv; doubled per down-sampling.
      n_downsampling: stride-2 convs per encoder (H and W must be multiples of 2**n_downsampling).
      n_blocks: ResNet blocks in total per path.
      use_fg_model: add the foreground generator.
      no_flow: image branch only (the per-frame baseline); `flow` and `weight` are then None.
      norm: "batch" or "instance" (vid2vid's InstanceNorm tracks running stats and uses them at inference).
      padding_type: ResNet-block padding, "reflect" (vid2vid), "replicate" or "zero".

    Call: `model(labels [B,H,W,input_nc], prev_frames [B,H,W,prev_output_nc], fg_mask [B,H,W,1] or None,
    use_raw_only=False)` → dict with `img_final`, `img_raw` [B,H,W,output_nc], `flow` [B,H,W,2] (dx, dy in
    pixels), `weight` [B,H,W,1]; with `return_features=True` also `img_feat`, `flow_feat`, `img_fg_feat` (what a
    finer `CompositeLocalGenerator` adds to its own features). Images in [−1, 1].
    """

    # PyTorch's module registration order (the state dict's key order).
    TORCH_CHILDREN = ("indv_down", "indv_res", "indv_up", "indv_final", "model_down_seg", "model_down_img",
                      "model_res_img", "model_up_img", "model_final_img", "model_res_flow", "model_up_flow",
                      "model_final_flow", "model_final_w")

    def __init__(self, input_nc: int, output_nc: int = 3, prev_output_nc: int = 6, ngf: int = 128,
                 n_downsampling: int = 3, n_blocks: int = 9, use_fg_model: bool = False, no_flow: bool = False,
                 norm: str = "batch", padding_type: str = "reflect", **kwargs):
        super().__init__(**kwargs)
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        self.input_nc, self.output_nc, self.prev_output_nc = int(input_nc), int(output_nc), int(prev_output_nc)
        self.ngf, self.n_downsampling, self.n_blocks = int(ngf), int(n_downsampling), int(n_blocks)
        self.use_fg_model, self.no_flow, self.norm, self.padding_type = bool(use_fg_model), bool(no_flow), norm, padding_type
        mult = 2 ** n_downsampling
        if use_fg_model:
            ngf_indv = ngf // 2 if n_downsampling > 2 else ngf
            self.indv_down = Sequence(_down(input_nc, ngf_indv, n_downsampling, norm), name="indv_down")
            self.indv_res = Sequence(_blocks(n_blocks, ngf_indv * mult, padding_type, norm), name="indv_res")
            self.indv_up = Sequence(_up(ngf_indv, n_downsampling, norm), name="indv_up")
            self.indv_final = Sequence(_final(output_nc, "tanh"), name="indv_final")
        n_first = n_blocks - n_blocks // 2
        self.model_down_seg = Sequence(
            _down(input_nc, ngf, n_downsampling, norm) + _blocks(n_first, ngf * mult, padding_type, norm),
            name="model_down_seg")
        self.model_down_img = Sequence(
            _down(prev_output_nc, ngf, n_downsampling, norm) + _blocks(n_first, ngf * mult, padding_type, norm),
            name="model_down_img")
        self.model_res_img = Sequence(_blocks(n_blocks // 2, ngf * mult, padding_type, norm), name="model_res_img")
        self.model_up_img = Sequence(_up(ngf, n_downsampling, norm), name="model_up_img")
        self.model_final_img = Sequence(_final(output_nc, "tanh"), name="model_final_img")
        if not no_flow:
            self.model_res_flow = Sequence(_blocks(n_blocks // 2, ngf * mult, padding_type, norm), name="model_res_flow")
            self.model_up_flow = Sequence(_up(ngf, n_downsampling, norm), name="model_up_flow")
            self.model_final_flow = Sequence(_final(2, None), name="model_final_flow")
            self.model_final_w = Sequence(_final(1, "sigmoid"), name="model_final_w")

    def call(self, labels, prev_frames, fg_mask=None, use_raw_only=False, return_features=False, training=None):
        down = self.model_down_seg(labels, training=training) + self.model_down_img(prev_frames, training=training)
        img_feat = self.model_up_img(self.model_res_img(down, training=training), training=training)
        img_raw = self.model_final_img(img_feat)
        flow = weight = flow_feat = None
        if not self.no_flow:
            flow_feat = self.model_up_flow(self.model_res_flow(down, training=training), training=training)
            flow = self.model_final_flow(flow_feat) * FLOW_SCALE
            weight = self.model_final_w(flow_feat)
        img_fg = img_fg_feat = None
        if self.use_fg_model:
            img_fg_feat = self.indv_up(self.indv_res(self.indv_down(labels, training=training), training=training),
                                       training=training)
            img_fg = self.indv_final(img_fg_feat)
            if fg_mask is None:
                raise ValueError("CompositeGenerator(use_fg_model=True) needs fg_mask")
        prev_last = prev_frames[..., -self.output_nc:]
        img_final, img_raw = composite(img_raw, prev_last, flow, weight, fg_mask, img_fg, use_raw_only)
        out = {"img_final": img_final, "img_raw": img_raw, "flow": flow, "weight": weight}
        if return_features:
            out.update(img_feat=img_feat, flow_feat=flow_feat, img_fg_feat=img_fg_feat)
        return out

    def get_config(self):
        return {**super().get_config(), "input_nc": self.input_nc, "output_nc": self.output_nc,
                "prev_output_nc": self.prev_output_nc, "ngf": self.ngf, "n_downsampling": self.n_downsampling,
                "n_blocks": self.n_blocks, "use_fg_model": self.use_fg_model, "no_flow": self.no_flow,
                "norm": self.norm, "padding_type": self.padding_type}


@keras.saving.register_keras_serializable("tfvr.vid2vid")
class CompositeLocalGenerator(keras.Model):
    """vid2vid's `CompositeLocalGenerator`: the finer-scale generator of the coarse-to-fine cascade.

    Each branch down-samples its input once (stride-2 conv), adds the coarser scale's feature map of the same size,
    runs `n_blocks_local` ResNet blocks and up-samples back. Flow is conv · 20 · 2**scale (pixels at this scale).

    Args: as `CompositeGenerator`, plus `n_blocks_local` (blocks per branch) and `scale` (1 for the first finer
    scale, …); `n_downsampling` is the coarsest model's (it only sets the foreground width, as in vid2vid). The coarse features are `CompositeGenerator(..., return_features=True)` outputs at half resolution,
    with `ngf` channels of the coarse model = 2 × this model's ngf.
    """

    TORCH_CHILDREN = ("indv_down", "indv_up", "indv_final", "model_down_seg", "model_down_img", "model_up_img",
                      "model_final_img", "model_up_flow", "model_final_flow", "model_final_w")

    def __init__(self, input_nc: int, output_nc: int = 3, prev_output_nc: int = 6, ngf: int = 64,
                 n_blocks_local: int = 3, use_fg_model: bool = False, no_flow: bool = False, norm: str = "batch",
                 padding_type: str = "reflect", scale: int = 1, n_downsampling: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.input_nc, self.output_nc, self.prev_output_nc = int(input_nc), int(output_nc), int(prev_output_nc)
        self.ngf, self.n_blocks_local, self.scale = int(ngf), int(n_blocks_local), int(scale)
        self.n_downsampling = int(n_downsampling)
        self.use_fg_model, self.no_flow, self.norm, self.padding_type = bool(use_fg_model), bool(no_flow), norm, padding_type
        if use_fg_model:
            ngf_indv = ngf // 2 if n_downsampling > 2 else ngf
            self.indv_down = Sequence(_down(input_nc, ngf_indv, 1, norm), name="indv_down")
            self.indv_up = Sequence(_blocks(n_blocks_local, ngf_indv * 2, padding_type, norm)
                                    + _up(ngf_indv, 1, norm), name="indv_up")
            self.indv_final = Sequence(_final(output_nc, "tanh"), name="indv_final")
        self.model_down_seg = Sequence(_down(input_nc, ngf, 1, norm), name="model_down_seg")
        self.model_down_img = Sequence(_down(prev_output_nc, ngf, 1, norm), name="model_down_img")
        self.model_up_img = Sequence(_blocks(n_blocks_local, ngf * 2, padding_type, norm) + _up(ngf, 1, norm),
                                     name="model_up_img")
        self.model_final_img = Sequence(_final(output_nc, "tanh"), name="model_final_img")
        if not no_flow:
            self.model_up_flow = Sequence(_blocks(n_blocks_local, ngf * 2, padding_type, norm) + _up(ngf, 1, norm),
                                          name="model_up_flow")
            self.model_final_flow = Sequence(_final(2, None), name="model_final_flow")
            self.model_final_w = Sequence(_final(1, "sigmoid"), name="model_final_w")

    def call(self, labels, prev_frames, fg_mask=None, img_feat_coarse=None, flow_feat_coarse=None,
             img_fg_feat_coarse=None, use_raw_only=False, return_features=False, training=None):
        down = self.model_down_seg(labels, training=training) + self.model_down_img(prev_frames, training=training)
        img_feat = self.model_up_img(down + img_feat_coarse, training=training)
        img_raw = self.model_final_img(img_feat)
        flow = weight = flow_feat = None
        if not self.no_flow:
            flow_feat = self.model_up_flow(down + flow_feat_coarse, training=training)
            flow = self.model_final_flow(flow_feat) * (FLOW_SCALE * 2 ** self.scale)
            weight = self.model_final_w(flow_feat)
        img_fg = img_fg_feat = None
        if self.use_fg_model:
            img_fg_feat = self.indv_up(self.indv_down(labels, training=training) + img_fg_feat_coarse,
                                       training=training)
            img_fg = self.indv_final(img_fg_feat)
        prev_last = prev_frames[..., -self.output_nc:]
        img_final, img_raw = composite(img_raw, prev_last, flow, weight, fg_mask, img_fg, use_raw_only)
        out = {"img_final": img_final, "img_raw": img_raw, "flow": flow, "weight": weight}
        if return_features:
            out.update(img_feat=img_feat, flow_feat=flow_feat, img_fg_feat=img_fg_feat)
        return out

    def get_config(self):
        return {**super().get_config(), "input_nc": self.input_nc, "output_nc": self.output_nc,
                "prev_output_nc": self.prev_output_nc, "ngf": self.ngf, "n_blocks_local": self.n_blocks_local,
                "use_fg_model": self.use_fg_model, "no_flow": self.no_flow, "norm": self.norm,
                "padding_type": self.padding_type, "scale": self.scale, "n_downsampling": self.n_downsampling}
