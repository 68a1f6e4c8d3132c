"""Serving module for window restoration models: 2N+1 uint8 frames in → the uint8 restored centre frame out.

Shared by every "frames window → centre frame" family (STTN-R with scale 1, EDVR with scale 4). The exported
`serving_default` signature is

    frames: uint8 [B, T, H, W, 3]   (T = 2N+1 fixed, H and W dynamic)  →  restored: uint8 [B, H·s, W·s, 3]

Inside the graph: uint8 → float32 in [0, 1], the frames are padded to a multiple of the model's `multiple`
(`pad_to_multiple`, reflect with an edge fallback for tiny frames), the model runs, the output is cropped to
(H·s, W·s), then clipped, rounded and cast back to uint8. So any frame size works from TF Serving.
A wrong rank, T, channel count or an empty batch fails in the graph with "frames: expected uint8 [B, T, H, W, 3]
..." (`tfvr.export.checks`), not with a raw error from inside the model.

What a client (`tfvr restore`) needs to know travels with the SavedModel, readable without TensorFlow:
`assets/tfvr.json` (`tfvr.export.metadata`, kind "restoration": num_frames, scale, multiple, family, model_config).
The same numbers are also integer variables on the loaded object (`loaded.num_frames`, `.scale`, `.multiple`).
"""

from __future__ import annotations

import tensorflow as tf

from tfvr.ops.padding import pad_to_multiple  # noqa: F401  (re-exported: the serving graphs' padding)
from tfvr.export import metadata as _metadata
from tfvr.export.metadata import FORMAT, METADATA_FILE  # noqa: F401  (re-exported)


class RestorationModule(tf.Module):
    """A `tf.Module` wrapping a Keras window-restoration model for export.

    Args:
        model: callable `model(frames float32 [B, T, H, W, 3] in [0, 1], training=False)` returning the restored
            centre frame `[B, H·scale, W·scale, 3]` in [0, 1], or a dict holding it under `output_key`.
        num_frames: int, T = 2N+1 (fixed in the signature).
        scale: int, spatial up-scaling factor of the model (1 for denoising/deblurring, 4 for EDVR ×4).
        multiple: int, H and W are padded to a multiple of this before the model runs.
        family: str, the model family (written to the metadata).
        model_config: dict, the model's constructor arguments (written to the metadata).
        output_key: key of the restored frame when the model returns a dict.
    """

    def __init__(self, model, num_frames: int, scale: int = 1, multiple: int = 1, family: str = "",
                 model_config: dict | None = None, output_key: str = "output", name: str | None = None,
                 precision: str | None = None):
        super().__init__(name=name)
        self.model = model
        self._num_frames = int(num_frames)
        self._scale = int(scale)
        self._multiple = int(multiple)
        self._output_key = output_key
        self.num_frames = tf.Variable(self._num_frames, trainable=False, dtype=tf.int32, name="num_frames")
        self.scale = tf.Variable(self._scale, trainable=False, dtype=tf.int32, name="scale")
        self.multiple = tf.Variable(self._multiple, trainable=False, dtype=tf.int32, name="multiple")
        _metadata.attach(self, "restoration", family=family, num_frames=self._num_frames, scale=self._scale,
                         multiple=self._multiple, model_config=model_config, precision=precision)
        self.serve = tf.function(
            self._serve, autograph=False,
            input_signature=[tf.TensorSpec([None, self._num_frames, None, None, 3], tf.uint8, name="frames")],
        )

    def restore_float(self, frames):
        """float32 [B, T, H, W, 3] in [0, 1] → float32 [B, H·s, W·s, 3] (unclipped); the exported graph's core."""
        h, w = tf.shape(frames)[2], tf.shape(frames)[3]
        x = pad_to_multiple(frames, self._multiple, axes=(2, 3))
        y = self.model(x, training=False)
        if isinstance(y, dict):
            y = y[self._output_key]
        return tf.cast(y, tf.float32)[:, : h * self._scale, : w * self._scale]

    def _serve(self, frames):
        from tfvr.export.checks import check_input

        frames = check_input(frames, ("B", self._num_frames, "H", "W", 3), "frames")
        y = self.restore_float(tf.cast(frames, tf.float32) / 255.0)
        y = tf.cast(tf.round(tf.clip_by_value(y, 0.0, 1.0) * 255.0), tf.uint8)
        return {"restored": y}

    def signatures(self) -> dict:
        """{"serving_default": the serving tf.function} (what `Task.export_signatures` returns)."""
        return {"serving_default": self.serve}

    def examples(self, height: int = 37, width: int = 29, batch: int = 1, seed: int = 0) -> dict:
        """Inputs for the export reload check (`Task.export_examples`); odd sizes exercise the in-graph padding."""
        import numpy as np

        rng = np.random.default_rng(seed)
        frames = rng.integers(0, 256, (batch, self._num_frames, height, width, 3), dtype=np.uint8)
        return {"serving_default": {"frames": frames}}


def read_metadata(saved_model_dir: str) -> dict:
    """The `assets/tfvr.json` of an exported restoration model (no TensorFlow needed; old exports included).

    Raises `tfvr.errors.UserError` naming the folder if it is not a SavedModel or not a restoration export.
    """
    from tfvr.errors import UserError

    meta = _metadata.read(saved_model_dir)
    if meta["kind"] != "restoration":
        raise UserError(f"{saved_model_dir}: a {meta['kind']} model, not a restoration one")
    return meta
