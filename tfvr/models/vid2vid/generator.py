"""vid2vid's sequential generator (Wang et al., "Video-to-Video Synthesis", NeurIPS 2018), channels-last.

Computes what NVIDIA/vid2vid `models/networks.py::CompositeGenerator` computes (the paper's architecture, not
the later SPADE-based imaginaire rewrite), and its coarse-to-fine `CompositeLocalGenerator`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfvr.layers.torch_nn import (
    Activation,
    AvgPool3x3s2,
    Conv2d,
    ConvTranspose2d,
    LazyBuild,
    Pad2d,
    ResnetBlock,
    Sequence,
    norm_layer,
    track_layers,
)
from tfvr.models.saving import ExampleBuild, PresetMixin
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


def _either(a, b):
    """`a or b` for Python bools and scalar bool tensors alike (a Python bool stays one: no graph op)."""
    if a is True or b is True:
        return True
    tensors = [tf.convert_to_tensor(x, tf.bool) for x in (a, b) if not isinstance(x, bool)]
    if not tensors:
        return False
    return tensors[0] if len(tensors) == 1 else tf.logical_or(tensors[0], tensors[1])


def composite(img_raw, img_prev_last, flow, weight, fg_mask, img_fg, use_raw_only):
    """img_final = img_raw·w + warp(prev, flow)·(1 − w), then the foreground composite (shared by both scales).
    `use_raw_only`: a Python bool, or a scalar bool tensor that selects img_raw in the graph (one graph for
    first and later frames, `Vid2VidGenerator.call(first_frame=...)`).
    The warp and the blends run in float32 whatever the compute dtype (mixed precision); both images are float32."""
    f32 = lambda t: None if t is None else tf.cast(t, tf.float32)  # noqa: E731
    img_raw, img_prev_last, flow, weight, fg_mask, img_fg = map(f32, (img_raw, img_prev_last, flow, weight,
                                                                      fg_mask, img_fg))
    if use_raw_only is True or flow is None:
        img_final = img_raw
    else:
        img_warp = backward_warp(img_prev_last, flow, padding="border")
        img_final = img_raw * weight + img_warp * (1.0 - weight)
        if use_raw_only is not False:
            img_final = tf.where(use_raw_only, img_raw, img_final)
    if img_fg is not None:
        img_final = img_fg * fg_mask + img_final * (1.0 - fg_mask)
        img_raw = img_fg * fg_mask + img_raw * (1.0 - fg_mask)
    return img_final, img_raw


class _Composite(LazyBuild, keras.Model):
    """What both scales of vid2vid's generator share: the summed label/image encoders and the composite."""

    def _encode(self, labels, prev_frames, training, first_frame=None):
        """(label encoder + image encoder features, whether only the hallucinated image can be used).
        `first_frame` (scalar bool tensor, with prev_frames given): True computes a first frame in the same graph,
        the image encoder's features multiplied by 0 (exactly the label features) and the raw image used."""
        down = self.model_down_seg(labels, training=training)
        if prev_frames is None:  # a first frame: no previous outputs, no image encoder, no warp
            return down, True
        img = self.model_down_img(prev_frames, training=training)
        if first_frame is None or first_frame is False:
            return down + img, False
        if first_frame is True:
            return down, True
        first_frame = tf.convert_to_tensor(first_frame, tf.bool)
        return down + img * tf.cast(tf.logical_not(first_frame), img.dtype), first_frame

    def _finish(self, img_raw, prev_frames, flow, weight, fg_mask, img_fg, use_raw_only, features):
        prev_last = None if prev_frames is None else prev_frames[..., -self.output_nc:]
        img_final, img_raw = composite(img_raw, prev_last, flow, weight, fg_mask, img_fg, use_raw_only)
        out = {"img_final": img_final, "img_raw": img_raw, "flow": flow, "weight": weight}
        if features is not None:
            out.update(features)
        return out


@keras.saving.register_keras_serializable("tfvr.vid2vid")
class CompositeGenerator(ExampleBuild, _Composite):
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
    `prev_frames=None` generates a first frame: the image encoder is skipped (as if its features were zero) and
    only the hallucinated image is used. (vid2vid's `no_first_img` feeds zero frames instead; in training mode
    BatchNorm then normalises constant feature maps, whose variance is rounding noise amplified by 1/√eps.)
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

    def call(self, labels, prev_frames=None, fg_mask=None, use_raw_only=False, return_features=False, training=None,
             first_frame=None):
        down, first = self._encode(labels, prev_frames, training, first_frame)
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
        features = dict(img_feat=img_feat, flow_feat=flow_feat, img_fg_feat=img_fg_feat) if return_features else None
        return self._finish(img_raw, prev_frames, flow, weight, fg_mask, img_fg, _either(use_raw_only, first), features)

    def example_inputs(self):
        """A later frame and a first frame on zeros: creates every variable (`.keras` load)."""
        s = 2 ** (self.n_downsampling + 1)
        labels, prev = tf.zeros([1, s, s, self.input_nc]), tf.zeros([1, s, s, self.prev_output_nc])
        mask = tf.zeros([1, s, s, 1]) if self.use_fg_model else None
        return [((labels, prev, mask), {}), ((labels, None, mask), {})]

    def get_config(self):
        return {**super().get_config(), "input_nc": self.input_nc, "output_nc": self.output_nc,
                "prev_output_nc": self.prev_output_nc, "ngf": self.ngf, "n_downsampling": self.n_downsampling,
                "n_blocks": self.n_blocks, "use_fg_model": self.use_fg_model, "no_flow": self.no_flow,
                "norm": self.norm, "padding_type": self.padding_type}


@keras.saving.register_keras_serializable("tfvr.vid2vid")
class CompositeLocalGenerator(_Composite):
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

    def call(self, labels, prev_frames=None, fg_mask=None, img_feat_coarse=None, flow_feat_coarse=None,
             img_fg_feat_coarse=None, use_raw_only=False, return_features=False, training=None, first_frame=None):
        down, first = self._encode(labels, prev_frames, training, first_frame)
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
        features = dict(img_feat=img_feat, flow_feat=flow_feat, img_fg_feat=img_fg_feat) if return_features else None
        return self._finish(img_raw, prev_frames, flow, weight, fg_mask, img_fg, _either(use_raw_only, first), features)

    def get_config(self):
        return {**super().get_config(), "input_nc": self.input_nc, "output_nc": self.output_nc,
                "prev_output_nc": self.prev_output_nc, "ngf": self.ngf, "n_blocks_local": self.n_blocks_local,
                "use_fg_model": self.use_fg_model, "no_flow": self.no_flow, "norm": self.norm,
                "padding_type": self.padding_type, "scale": self.scale, "n_downsampling": self.n_downsampling}


def instance_edges(instances):
    """vid2vid's `get_edges`: 1 where a pixel's instance id differs from a 4-neighbour's. [..., H, W] → float32."""
    inst = tf.convert_to_tensor(instances)
    dx = tf.cast(tf.not_equal(inst[..., :, 1:], inst[..., :, :-1]), tf.float32)
    dy = tf.cast(tf.not_equal(inst[..., 1:, :], inst[..., :-1, :]), tf.float32)
    zx = tf.zeros_like(dx[..., :, :1])
    zy = tf.zeros_like(dy[..., :1, :])
    ex = tf.maximum(tf.concat([zx, dx], axis=-1), tf.concat([dx, zx], axis=-1))
    ey = tf.maximum(tf.concat([zy, dy], axis=-2), tf.concat([dy, zy], axis=-2))
    return tf.maximum(ex, ey)


def _stack_time(x):
    """[B, T, H, W, C] → [B, H, W, T·C] (frame-major channels, as vid2vid's `.view(b, -1, h, w)`)."""
    shape = tf.shape(x)
    x = tf.transpose(x, [0, 2, 3, 1, 4])
    return tf.reshape(x, tf.stack([shape[0], shape[2], shape[3], -1]))


@keras.saving.register_keras_serializable("tfvr.vid2vid")
class Vid2VidGenerator(PresetMixin, ExampleBuild, LazyBuild, keras.Model):
    """One step of vid2vid's sequential generation: the next frame from a label window and previous frames.

    Wraps `CompositeGenerator` (and, with `n_scales_spatial > 1`, the coarse-to-fine `CompositeLocalGenerator`s):
    turns integer label maps into one-hot maps (+ instance-edge maps), stacks the window on channels, takes the
    foreground mask from the current frame's labels and runs the generator(s).

    Args:
      label_nc: number of semantic classes.
      use_instance: append the instance-edge map of each label frame (needs `instances` in the call).
      n_frames_G: label frames per step (the current one and n_frames_G − 1 previous ones); the generator also
        sees the n_frames_G − 1 previous generated frames (vid2vid's L = n_frames_G − 1 = 2).
      output_nc, ngf, n_downsampling, n_blocks, use_fg_model, no_flow, norm, padding_type: as
        `CompositeGenerator`.
      fg_labels: classes that make up the foreground mask (only with use_fg_model).
      n_scales_spatial: 1 = one generator; k > 1 adds k − 1 `CompositeLocalGenerator`s (each at twice the
        resolution, ngf / 2**s) around a coarse generator that runs at 1/2**(k−1) resolution.
      n_blocks_local: ResNet blocks per branch of each local generator.

    Call: `gen(labels int [B, n_frames_G, H, W], prev_frames [B, n_frames_G − 1, H, W, 3] in [−1, 1] or None for
    the first frame, instances=None, use_raw_only=False)` → dict of `img_final`, `img_raw` [B, H, W, 3], `flow` [B, H, W, 2],
    `weight` [B, H, W, 1] (flow/weight None with no_flow). H, W multiples of 2**(n_downsampling + n_scales − 1).
    """

    # `Vid2VidGenerator.from_preset(name)`: NVIDIA/vid2vid's label2city_512 generator (scripts/street/train_512.sh,
    # train/configs/vid2vid_cityscapes.flags) and the demo's (train/configs/vid2vid_demo.flags, the config's
    # default 5 classes); released checkpoints of `tfvr.presets` (family "vid2vid") carry these kwargs as `generator`.
    presets = {
        "vid2vid_label2city_512": dict(label_nc=35, use_instance=True, n_frames_G=3, ngf=128, n_downsampling=3,
                                       n_blocks=9, use_fg_model=True, fg_labels=(26,)),
        "vid2vid_demo": dict(label_nc=5, n_frames_G=3, ngf=16, n_downsampling=2, n_blocks=4, use_fg_model=True,
                             fg_labels=(2, 3, 4)),
    }
    preset_family = "vid2vid"

    @classmethod
    def kwargs_from_released(cls, released):
        gen = getattr(released, "generator", None) or (released.get("generator") if isinstance(released, dict)
                                                         else None)
        if not gen:
            raise ValueError(f"released vid2vid preset {getattr(released, 'name', released)!r} has no generator kwargs")
        return dict(gen)

    def __init__(self, label_nc: int, use_instance: bool = False, n_frames_G: int = 3, output_nc: int = 3,
                 ngf: int = 128, n_downsampling: int = 3, n_blocks: int = 9, use_fg_model: bool = False,
                 fg_labels: tuple = (), no_flow: bool = False, norm: str = "batch", padding_type: str = "reflect",
                 n_scales_spatial: int = 1, n_blocks_local: int = 3, **kwargs):
        super().__init__(**kwargs)
        if n_frames_G < 2:
            raise ValueError(f"n_frames_G must be >= 2 (the current frame and at least one previous), got {n_frames_G}")
        if use_fg_model and not fg_labels:
            raise ValueError("use_fg_model needs fg_labels (the classes that form the foreground mask)")
        self.label_nc, self.use_instance, self.n_frames_G = int(label_nc), bool(use_instance), int(n_frames_G)
        self.output_nc, self.ngf, self.n_downsampling, self.n_blocks = int(output_nc), int(ngf), int(n_downsampling), int(n_blocks)
        self.use_fg_model, self.fg_labels, self.no_flow = bool(use_fg_model), tuple(int(c) for c in fg_labels), bool(no_flow)
        self.norm, self.padding_type = norm, padding_type
        self.n_scales_spatial, self.n_blocks_local = int(n_scales_spatial), int(n_blocks_local)
        input_nc = (label_nc + int(use_instance)) * n_frames_G
        prev_nc = (n_frames_G - 1) * output_nc
        common = dict(use_fg_model=use_fg_model, no_flow=no_flow, norm=norm, padding_type=padding_type)
        self.netG0 = CompositeGenerator(input_nc, output_nc, prev_nc, ngf, n_downsampling, n_blocks, name="netG0",
                                        **common)
        self.local = [
            CompositeLocalGenerator(input_nc, output_nc, prev_nc, ngf // 2**s, n_blocks_local, scale=s,
                                    n_downsampling=n_downsampling, name=f"netG{s}", **common)
            for s in range(1, n_scales_spatial)
        ]
        track_layers(self, "local", self.local)
        self.pool = AvgPool3x3s2()

    @property
    def size_multiple(self) -> int:
        return 2 ** (self.n_downsampling + self.n_scales_spatial - 1)

    def example_inputs(self):
        """A first frame and a later frame on zeros: creates every variable (`.keras` load, `from_preset`)."""
        s = 2 * self.size_multiple
        labels = tf.zeros([1, self.n_frames_G, s, s], tf.int32)
        prev = tf.zeros([1, self.n_frames_G - 1, s, s, self.output_nc])
        inst = dict(instances=labels) if self.use_instance else {}
        return [((labels, prev), inst), ((labels, None), inst)]

    def encode_labels(self, labels, instances=None):
        """[B, T, H, W] class ids (+ instances) → [B, H, W, T·(label_nc [+1])] and the fg mask [B, H, W, 1]."""
        labels = tf.cast(labels, tf.int32)
        onehot = tf.one_hot(labels, self.label_nc, dtype=self.compute_dtype)
        if self.use_instance:
            if instances is None:
                raise ValueError("Vid2VidGenerator(use_instance=True) needs instances")
            onehot = tf.concat([onehot, tf.cast(instance_edges(instances), self.compute_dtype)[..., None]], axis=-1)
        mask = None
        if self.use_fg_model:
            current = labels[:, -1]
            mask = tf.zeros_like(current, dtype=tf.bool)
            for c in self.fg_labels:
                mask = tf.logical_or(mask, tf.equal(current, c))
            mask = tf.cast(mask, self.compute_dtype)[..., None]
        return _stack_time(onehot), mask

    def call(self, labels, prev_frames=None, instances=None, use_raw_only=False, fix_coarse=False, training=None,
             first_frame=None):
        """`first_frame`: None, or a scalar bool tensor that makes this call (prev_frames given) generate a first
        frame in the same graph: what `prev_frames=None` computes (the image encoder's features multiplied by 0,
        the raw image used), so one traced graph serves every frame (the streaming export). `use_raw_only` may
        be a scalar bool tensor too.
        `fix_coarse=True` (training with `fix_global_steps`): every scale but the finest runs outside the
        gradient (its inputs and the features it hands on go through `tf.stop_gradient`), so no gradient reaches
        its variables and backprop keeps none of its activations (NVIDIA's `.detach()` of the coarser levels while
        `niter_fix_global` is active). The forward values are unchanged."""
        x, mask = self.encode_labels(labels, instances)
        prev = None if prev_frames is None else _stack_time(tf.cast(prev_frames, self.compute_dtype))
        pyr = [(x, prev, mask)]
        for _ in range(self.n_scales_spatial - 1):
            a, p, m = pyr[-1]
            pyr.append((self.pool(a), None if p is None else self.pool(p), None if m is None else self.pool(m)))
        fix = bool(fix_coarse) and bool(self.local)
        stop = (lambda t: None if t is None else tf.stop_gradient(t)) if fix else (lambda t: t)  # noqa: E731
        a, p, m = pyr[-1]
        first = {} if first_frame is None or p is None else dict(first_frame=first_frame)
        out = self.netG0(stop(a), stop(p), stop(m), use_raw_only=use_raw_only, return_features=bool(self.local),
                         training=training, **first)
        for s, net in enumerate(self.local, start=1):
            if fix:
                out = {k: stop(v) for k, v in out.items()}
            finest = s == len(self.local)
            a, p, m = pyr[self.n_scales_spatial - 1 - s]
            if fix and not finest:
                a, p, m = stop(a), stop(p), stop(m)
            out = net(a, p, m, out["img_feat"], out["flow_feat"], out["img_fg_feat"], use_raw_only=use_raw_only,
                      return_features=not finest, training=training, **first)
        return {k: out[k] for k in ("img_final", "img_raw", "flow", "weight")}

    def scale_models(self) -> list:
        """The per-scale generators, coarse to fine: [netG0, netG1, …] (NVIDIA's `netG<s>`)."""
        return [self.netG0, *self.local]

    def get_config(self):
        return {**super().get_config(), "label_nc": self.label_nc, "use_instance": self.use_instance,
                "n_frames_G": self.n_frames_G, "output_nc": self.output_nc, "ngf": self.ngf,
                "n_downsampling": self.n_downsampling, "n_blocks": self.n_blocks, "use_fg_model": self.use_fg_model,
                "fg_labels": self.fg_labels, "no_flow": self.no_flow, "norm": self.norm,
                "padding_type": self.padding_type, "n_scales_spatial": self.n_scales_spatial,
                "n_blocks_local": self.n_blocks_local}
