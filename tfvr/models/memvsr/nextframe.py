"""Next-frame prediction with a memory (seed 004, "use 2"): encoder → memory read → decoder.

`NextFramePredictor` takes the `input_size` frames of a clip (plus the query frame when `qs_sep`), encodes every
frame with the shared encoder, writes the memory from the deepest features of the sentence, reads it with the
deepest features of the last frame (the query), and decodes the fused features, with the last frame's encoder
maps as skip connections (U-Net). The output depends on `test_type`:

* "nextframe": the decoder's output is the predicted frame;
* "subtract": the decoder predicts the difference, `pred = last + out` (zero-initialised head: starts at
  copy-last);
* "opticalflow": the decoder predicts a flow `[..., 2]` (pixels, (dx, dy)) and `pred = backward_warp(last,
  flow)` (`tfvr.ops.warp`; zero-initialised head).
"""

import keras
import tensorflow as tf

from tfvr.models.memvsr.encoders import build_encoder_decoder
from tfvr.models.memvsr.memory import MemoryModule
from tfvr.models.memvsr.config import MemoryConfig
from tfvr.models.saving import PresetMixin
from tfvr.ops.warp import backward_warp

__all__ = ["NextFramePredictor"]

TEST_TYPES = ("nextframe", "subtract", "opticalflow")


@keras.saving.register_keras_serializable(package="tfvr")
class NextFramePredictor(PresetMixin, keras.Model):
    """Encoder/decoder next-frame predictor with a memory on the deepest features.

    Args:
        test_type: "nextframe" | "subtract" | "opticalflow".
        encoder: "unet" | "resnet".
        channels: tuple (3, c1, ..., cL); cL = channels of the memory's query/sentence features.
        skip: tuple of L bools, U-Net skip switches (level 0 = the frame).
        res_blocks: residual blocks per level (ResNet).
        input_size: sentence length S.
        qs_sep: the query frame is not part of the sentence (the input then has S + 1 frames).
        memory: dict of `MemoryModule` kwargs (without input_size / channels), or None for no memory.

    Call: frames `[B, T, H, W, 3]` in [0, 1] (T = S, or S + 1 with qs_sep; H, W multiples of 2^L) →
    dict `pred` [B, H, W, 3] (not clipped), `raw` (decoder output: frame, difference or flow), `weights`
    [B, H/2^L, W/2^L, M] memory read weights per slot (absent without memory).

    Reference: seed 004 (memory-network next-frame prediction on HumanEva / Charades); Sukhbaatar et al.,
    "End-To-End Memory Networks", NeurIPS 2015.
    """

    # `NextFramePredictor.from_preset(name)`: the next-frame demo (train/configs/memvsr_nextframe_demo.flags:
    # optical-flow head, U-Net 16/32/64, pixwise memory over 4 input frames) and the same without memory.
    _DEMO_MEMORY = {k: v for k, v in MemoryConfig(variant="pixwise", crop=3, hops=1, embed_size=64, memory_size=4)
                    .module_kwargs(0, 0).items() if k not in ("input_size", "channels")}
    presets = {
        "memvsr_nextframe_demo": dict(test_type="opticalflow", encoder="unet", channels=(3, 16, 32, 64),
                                      skip=(True, True, True), input_size=4, memory=_DEMO_MEMORY),
        "memvsr_nextframe_demo_nomem": dict(test_type="opticalflow", encoder="unet", channels=(3, 16, 32, 64),
                                            skip=(True, True, True), input_size=4, memory=None),
    }
    preset_family = "memvsr"

    def __init__(self, test_type="nextframe", encoder="unet", channels=(3, 32, 64, 128), skip=(True, True, True),
                 res_blocks=1, input_size=10, qs_sep=False, memory=None, **kwargs):
        super().__init__(**kwargs)
        if test_type not in TEST_TYPES:
            raise ValueError(f"test_type must be one of {TEST_TYPES}, got {test_type!r}")
        self.test_type = test_type
        self.encoder_kind = encoder
        self.channels = tuple(int(c) for c in channels)
        self.skip = tuple(bool(s) for s in skip)
        self.res_blocks = int(res_blocks)
        self.input_size = int(input_size)
        self.qs_sep = bool(qs_sep)
        self.memory_kwargs = None if memory is None else dict(memory)
        self.num_inputs = self.input_size + int(self.qs_sep)
        self.levels = len(self.channels) - 1
        out_ch = 2 if test_type == "opticalflow" else self.channels[0]
        self.encoder, self.decoder = build_encoder_decoder(
            encoder, self.channels, self.skip, self.res_blocks, out_ch, zero_head=test_type != "nextframe")
        if self.memory_kwargs is not None:
            kw = {k: v for k, v in self.memory_kwargs.items() if k not in ("input_size", "channels")}
            self.memory = MemoryModule(input_size=self.input_size, channels=self.channels[-1], name="memory", **kw)
        else:
            self.memory = None

    def build(self, input_shape=None):
        self.encoder.build()
        self.decoder.build()
        if self.memory is not None:
            self.memory.build()
        self.built = True

    def build_for_weights(self):
        if not self.built:
            self.build()
        return self

    def call(self, frames):
        frames = tf.convert_to_tensor(frames)
        if frames.dtype != self.compute_dtype:
            frames = tf.cast(frames, self.compute_dtype)
        shape = tf.shape(frames)
        b, h, w = shape[0], shape[2], shape[3]
        t = self.num_inputs
        feats = self.encoder(tf.reshape(frames, [b * t, h, w, self.channels[0]]))
        per_frame = [tf.reshape(f, tf.concat([[b, t], tf.shape(f)[1:]], 0)) for f in feats]
        last = frames[:, t - 1]
        deep = per_frame[-1]
        query = deep[:, t - 1]
        out = {}
        if self.memory is not None:
            sentence = deep[:, : self.input_size] if self.qs_sep else deep
            fused, weights = self.memory(query, sentence)
            out["weights"] = weights
        else:
            fused = query
        skips = [last] + [f[:, t - 1] for f in per_frame[:-1]]
        raw = self.decoder(fused, skips)
        if self.test_type == "nextframe":
            pred = raw
        elif self.test_type == "subtract":
            pred = last + raw
        else:
            pred = backward_warp(last, tf.cast(raw, tf.float32))
            pred = tf.cast(pred, raw.dtype)
        out["pred"] = pred
        out["raw"] = raw
        return out

    def variable_groups(self) -> dict:
        """{"encoder", "decoder", "memory"}: trainable variables of the seed's three optimizer groups."""
        return {"encoder": list(self.encoder.trainable_variables),
                "decoder": list(self.decoder.trainable_variables),
                "memory": list(self.memory.trainable_variables) if self.memory is not None else []}

    def get_config(self):
        cfg = super().get_config()
        cfg.update(test_type=self.test_type, encoder=self.encoder_kind, channels=self.channels, skip=self.skip,
                   res_blocks=self.res_blocks, input_size=self.input_size, qs_sep=self.qs_sep,
                   memory=self.memory_kwargs)
        return cfg
