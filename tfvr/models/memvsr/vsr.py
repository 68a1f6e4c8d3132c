"""EDVR with the memory read on the aligned features (seed 004, "use 1": memory-augmented VSR).

`MemEDVR` is `tfvr.models.edvr.model.EDVR` (same layers, names and BasicSR weight map) plus a `MemoryModule`:
the T aligned feature maps (PCD output, or the unaligned per-frame features with `with_pcd=False`, the seed's
Table 3) are the sentence that writes the memory, the centre frame's aligned features are the query, and the
memory-fused map replaces the centre frame's features before the TSA / 1×1 fusion. Everything else is EDVR's.
"""

import keras
import tensorflow as tf

from tfvr.models.edvr.model import EDVR
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
        self._build_trunk()
        if self.with_pcd:
            self._build_alignment()  # without PCD conv_l2/l3 and the DCNs are never built (no weights)
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

    def align(self, feat_l1, b, training=None):
        # with_pcd=False (the seed's Table 3): the per-frame features go on unaligned.
        return super().align(feat_l1, b, training=training) if self.with_pcd else self.per_clip(feat_l1, b)

    def memory_read(self, aligned):
        """The centre frame's aligned features query the memory written by all T; the fused map replaces them."""
        if self.memory is None:
            return aligned, None
        fused, weights = self.memory(aligned[:, self.center], aligned)
        aligned = tf.concat([aligned[:, :self.center], fused[:, None], aligned[:, self.center + 1:]], axis=1)
        return aligned, weights

    def call_with_weights(self, x):
        return self.run_stages(x)

    def memory_variables(self) -> list:
        return list(self.memory.trainable_variables) if self.memory is not None else []

    def get_config(self):
        return dict(super().get_config(), with_pcd=self.with_pcd, memory=self.memory_kwargs)
