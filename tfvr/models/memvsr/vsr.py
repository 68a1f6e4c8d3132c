"""EDVR with the memory read on the aligned features (seed 004, "use 1": memory-augmented VSR).

`MemEDVR` is `tfvr.models.edvr.model.EDVR` (same layers, names and BasicSR weight map) plus a `MemoryModule`:
the T aligned feature maps (PCD output, or the unaligned per-frame features with `with_pcd=False`, the seed's
Table 3) are the sentence that writes the memory, the centre frame's aligned features are the query, and the
memory-fused map replaces the centre frame's features before the TSA / 1×1 fusion. Everything else is EDVR's.
"""

import keras
import tensorflow as tf

from tfvr.models.edvr.model import EDVR, _feature_shape, lrelu, pad_to_multiple
from tfvr.models.memvsr.config import MemoryConfig
from tfvr.models.memvsr.memory import MemoryModule

__all__ = ["MemEDVR"]


def _memory(**fields) -> dict:
    kw = MemoryConfig(**fields).module_kwargs(0, 0)
    return {k: v for k, v in kw.items() if k not in ("input_size", "channels")}


@keras.saving.register_keras_serializable(package="tfvr")
class MemEDVR(EDVR):
    """EDVR + memory on the aligned features.

    Args:
        with_pcd: bool, PCD alignment (False: the per-frame features are used unaligned; the PCD weights are not
            created).
        memory: dict of `MemoryModule` kwargs (embed_size, memory_size, hops, variant, crop, normalize,
            temperature, fusion), or None for plain EDVR (optionally without PCD).
        **edvr_kwargs: the `EDVR` arguments (`tfvr.models.edvr.config.EDVRConfig`).

    Call: frames `[B, T, H, W, 3]` in [0, 1] → `[B, s·H, s·W, 3]` as EDVR. `call_with_weights` also returns the
    memory read weights per slot `[B, h, w, M]` (h, w = the padded input size; None without memory).

    Reference: Wang et al., "EDVR", CVPRW 2019; Sukhbaatar et al., "End-To-End Memory Networks", NeurIPS 2015;
    seed 004's memory-augmented EDVR study (REDS).
    """

    # `MemEDVR.from_preset(name)`: the REDS recipe's EDVR-M body (train/configs/memvsr_vsr_reds_base.flags, memory
    # as MemoryConfig's defaults; the memvsr_t* flagfiles vary the memory) and the demo's
    # (train/configs/memvsr_vsr_demo.flags), each also without the memory (the ablation baseline).
    _REDS = dict(num_feat=64, num_frame=5, deformable_groups=8, num_extract_block=5, num_reconstruct_block=10,
                 with_tsa=True, with_pcd=True)
    _DEMO = dict(num_feat=32, num_frame=5, deformable_groups=4, num_extract_block=2, num_reconstruct_block=4,
                 with_tsa=True, with_pcd=True)
    presets = {
        "memvsr_reds": dict(_REDS, memory=_memory()),
        "memvsr_reds_nomem": dict(_REDS, memory=None),
        "memvsr_demo": dict(_DEMO, memory=_memory(variant="pixwise", crop=3, embed_size=32, memory_size=4,
                                                  fusion="concat")),
        "memvsr_demo_nomem": dict(_DEMO, memory=None),
    }
    preset_family = "memvsr"

    def __init__(self, with_pcd=True, memory=None, **edvr_kwargs):
        super().__init__(**edvr_kwargs)
        self.with_pcd = bool(with_pcd)
        self.memory_kwargs = None if memory is None else dict(memory)
        if self.memory_kwargs is not None:
            kw = {k: v for k, v in self.memory_kwargs.items() if k not in ("input_size", "channels")}
            self.memory = MemoryModule(input_size=self.num_frame, channels=self.num_feat, name="memory", **kw)
        else:
            self.memory = None

    def build(self, input_shape=None):
        if self.with_pcd:
            super().build(input_shape)
        else:
            nf = _feature_shape(self.num_feat)
            if self.with_predeblur:
                self.predeblur.build(_feature_shape(self.num_in_ch))
                self.conv_1x1.build(nf)
            else:
                self.conv_first.build(_feature_shape(self.num_in_ch))
            for layer in (*self.feature_extraction, *self.reconstruction, self.upconv1):
                layer.build(nf)
            # conv_l2/l3 only feed PCD: left unbuilt (no weights) without it
            if self.with_tsa:
                self.fusion.build()
            else:
                self.fusion.build(_feature_shape(self.num_frame * self.num_feat))
            self.upconv2.build(nf)
            self.conv_hr.build(_feature_shape(64))
            self.conv_last.build(_feature_shape(64))
        if self.memory is not None:
            self.memory.build()
        self.built = True

    def dcn_layers(self) -> dict:
        return super().dcn_layers() if self.with_pcd else {}

    def torch_layer_map(self) -> dict:
        m = super().torch_layer_map()
        if not self.with_pcd:
            m = {k: v for k, v in m.items() if not k.startswith(("pcd_align.", "conv_l2", "conv_l3"))}
        return m

    def call(self, x):
        return self.call_with_weights(x)[0]

    def call_with_weights(self, x):
        x = tf.convert_to_tensor(x)
        if x.dtype != self.compute_dtype:
            x = tf.cast(x, self.compute_dtype)
        shape = tf.shape(x)
        b, h0, w0 = shape[0], shape[2], shape[3]
        t, c, nf = self.num_frame, self.num_in_ch, self.num_feat
        x = pad_to_multiple(x, self.size_multiple, self.pad_mode)
        shape = tf.shape(x)
        h, w = shape[2], shape[3]
        x_center = x[:, self.center]
        frames = tf.reshape(x, [b * t, h, w, c])
        if self.with_predeblur:
            feat_l1 = self.conv_1x1(self.predeblur(frames))
            if self.hr_in:
                h, w = h // 4, w // 4
        else:
            feat_l1 = lrelu(self.conv_first(frames))
        for block in self.feature_extraction:
            feat_l1 = block(feat_l1)
        if self.with_pcd:
            feat_l2 = lrelu(self.conv_l2_2(lrelu(self.conv_l2_1(feat_l1))))
            feat_l3 = lrelu(self.conv_l3_2(lrelu(self.conv_l3_1(feat_l2))))
            nbr, ref = [], []
            for f in (feat_l1, feat_l2, feat_l3):
                fs = tf.shape(f)
                f5 = tf.reshape(f, [b, t, fs[1], fs[2], nf])
                nbr.append(f)
                ref.append(tf.reshape(tf.repeat(f5[:, self.center:self.center + 1], t, axis=1), fs))
            aligned = self.pcd_align(nbr, ref)
        else:
            aligned = feat_l1
        aligned = tf.reshape(aligned, [b, t, h, w, nf])

        weights = None
        if self.memory is not None:
            fused, weights = self.memory(aligned[:, self.center], aligned)
            aligned = tf.concat([aligned[:, :self.center], fused[:, None], aligned[:, self.center + 1:]], axis=1)

        if self.with_tsa:
            feat = self.fusion(aligned)
        else:
            feat = self.fusion(tf.reshape(tf.transpose(aligned, [0, 2, 3, 1, 4]), [b, h, w, t * nf]))
        out = feat
        for block in self.reconstruction:
            out = block(out)
        out = lrelu(self.pixel_shuffle(self.upconv1(out)))
        out = lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = lrelu(self.conv_hr(out))
        out = self.conv_last(out)
        if self.hr_in:
            base = x_center
        else:
            base = tf.cast(tf.image.resize(x_center, [4 * h, 4 * w], method="bilinear"), out.dtype)
        out = out + base
        return out[:, : self.scale * h0, : self.scale * w0], weights

    def memory_variables(self) -> list:
        return list(self.memory.trainable_variables) if self.memory is not None else []

    def get_config(self):
        return dict(super().get_config(), with_pcd=self.with_pcd, memory=self.memory_kwargs)
