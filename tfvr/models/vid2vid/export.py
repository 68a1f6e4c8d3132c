"""Streaming export of vid2vid: a SavedModel whose signature generates the *next* frame.

A server keeps the last n_frames_G − 1 generated frames of each stream and calls, once per frame,

    serving_default(labels int32 [B, n_frames_G, H, W],      class ids of frames t−n+1 … t
                    prev_frames uint8 [B, n_frames_G − 1, H, W, 3],   its own outputs t−n+1 … t−1
                    num_prev int32 [],                        how many of those exist (0 at the first frame)
                    [instances int32 [B, n_frames_G, H, W]])  only when the model uses instance edges
      → {"frame": uint8 [B, H, W, 3], "flow": float32 [B, H, W, 2], "weight": float32 [B, H, W, 1]}

The first frame (num_prev = 0) is generated from its labels alone (hallucinated image, no previous frames);
later previous frames that do not exist yet (num_prev < n_frames_G − 1) are zeros in the model's [−1, 1] range,
exactly as in training (`task.generate_sequence`). A model without flow (the per-frame baseline) always
generates from the labels alone. H and W are padded to the model's multiple in the graph (reflect) and the
outputs cropped back, so any frame size works. `flow`/`weight` are zeros for a model without flow.

What a client needs travels with the SavedModel, readable without TensorFlow: `assets/tfvr.json` =
`tfvr.export.metadata` kind "label-to-video" with "label_nc", "n_frames_G", "use_instance", "multiple",
"model_config" (exports of format "tfvr.vid2vid/1" are still read).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfvr.export import metadata as _metadata
from tfvr.export.metadata import METADATA_FILE  # noqa: F401  (re-exported)
from tfvr.ops.padding import pad_to_multiple

LEGACY_FORMAT = "tfvr.vid2vid/1"


class Vid2VidModule(tf.Module):
    """Wraps a `Vid2VidGenerator` for export (see the module docstring)."""

    def __init__(self, generator, model_config: dict | None = None, name: str = "vid2vid_serving",
                 precision: str | None = None):
        super().__init__(name=name)
        self.generator = generator
        self._n = int(generator.n_frames_G)
        self._multiple = int(generator.size_multiple)
        self._use_instance = bool(generator.use_instance)
        self._no_flow = bool(generator.no_flow)
        _metadata.attach(self, "label-to-video", family="vid2vid", num_frames=self._n, multiple=self._multiple,
                         model_config=model_config, precision=precision, label_nc=int(generator.label_nc),
                         n_frames_G=self._n, use_instance=self._use_instance)
        self.n_frames_G = tf.Variable(self._n, trainable=False, dtype=tf.int32, name="n_frames_G")
        self.label_nc = tf.Variable(int(generator.label_nc), trainable=False, dtype=tf.int32, name="label_nc")
        specs = [tf.TensorSpec([None, self._n, None, None], tf.int32, name="labels"),
                 tf.TensorSpec([None, self._n - 1, None, None, 3], tf.uint8, name="prev_frames"),
                 tf.TensorSpec([], tf.int32, name="num_prev")]
        # float_feedback: the same step with float32 previous frames in [-1, 1] and the float frame returned too,
        # so a client can run the loop on unquantised outputs as NVIDIA's test does (`tfvr synthesize` does).
        fspecs = list(specs)
        fspecs[1] = tf.TensorSpec([None, self._n - 1, None, None, 3], tf.float32, name="prev_frames")
        if self._use_instance:
            specs.append(tf.TensorSpec([None, self._n, None, None], tf.int32, name="instances"))
            fspecs.append(specs[-1])
            self.serve = tf.function(self._serve_instances, autograph=False, input_signature=specs)
            self.serve_float = tf.function(self._serve_float_instances, autograph=False, input_signature=fspecs)
        else:
            self.serve = tf.function(self._serve, autograph=False, input_signature=specs)
            self.serve_float = tf.function(self._serve_float, autograph=False, input_signature=fspecs)

    def next_frame(self, labels, prev_frames, num_prev, instances=None):
        """float core: labels int [B, n, H, W], prev_frames float [B, n−1, H, W, 3] in [−1, 1] → dict (float)."""
        h, w = tf.shape(labels)[2], tf.shape(labels)[3]
        valid = tf.range(self._n - 1, 0, -1) <= num_prev  # prev index i holds frame t − (n − 1 − i)
        prev = prev_frames * tf.cast(valid, prev_frames.dtype)[None, :, None, None, None]
        labels = pad_to_multiple(labels, self._multiple, axes=(2, 3))
        prev = pad_to_multiple(prev, self._multiple, axes=(2, 3))
        if instances is not None:
            instances = pad_to_multiple(instances, self._multiple, axes=(2, 3))

        def outputs(out):
            b = tf.shape(out["img_final"])[0]
            hp, wp = tf.shape(labels)[2], tf.shape(labels)[3]
            flow = out["flow"] if out["flow"] is not None else tf.zeros(tf.stack([b, hp, wp, 2]))
            weight = out["weight"] if out["weight"] is not None else tf.zeros(tf.stack([b, hp, wp, 1]))
            return (tf.cast(out["img_final"], tf.float32), tf.cast(flow, tf.float32), tf.cast(weight, tf.float32))

        if self._no_flow:  # the per-frame baseline never sees previous frames
            img, flow, weight = outputs(self.generator(labels, None, instances, training=False))
        else:
            # One generator call for every kind of frame (one graph: a third of the ops of a tf.cond between
            # three calls, and as fast to trace, save and load):
            # num_prev > 0: a later frame; num_prev == 0: the first frame, generated from its labels alone exactly
            # as in training (`first_frame`: the image encoder's features times 0, the raw image); num_prev < 0:
            # NVIDIA's --no_first_img first frame (the given, zero, previous frames through the image encoder, the
            # raw image only: use_raw_only).
            img, flow, weight = outputs(self.generator(labels, prev, instances, training=False,
                                                       first_frame=tf.equal(num_prev, 0),
                                                       use_raw_only=tf.less(num_prev, 0)))
        return {"frame": img[:, :h, :w], "flow": flow[:, :h, :w], "weight": weight[:, :h, :w]}

    def _serve_impl(self, labels, prev_frames, num_prev, instances, as_float=False):
        from tfvr.export.checks import check_input

        n = self._n
        labels = check_input(labels, ("B", n, "H", "W"), "labels")
        prev_frames = check_input(prev_frames, ("B", n - 1, "H", "W", 3), "prev_frames", nonempty=[0, 2, 3])
        num_prev = check_input(num_prev, (), "num_prev")
        if instances is not None:
            instances = check_input(instances, ("B", n, "H", "W"), "instances")
        prev_frames = _same_size(prev_frames, labels, "prev_frames", f"[B, {n - 1}, H, W, 3]")
        if instances is not None:
            instances = _same_size(instances, labels, "instances", f"[B, {n}, H, W]")
        if not as_float:
            # serving_default is float_feedback on the dequantised frames, minus its float output: the graph of
            # the generator is traced, saved and loaded once for both signatures (a nested function call).
            args = (labels, tf.cast(prev_frames, tf.float32) / 127.5 - 1.0, num_prev)
            out = self.serve_float(*args, *(() if instances is None else (instances,)))
            return {k: out[k] for k in ("frame", "flow", "weight")}
        out = self.next_frame(labels, prev_frames, num_prev, instances)
        frame = tf.cast(tf.round(tf.clip_by_value((out["frame"] + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)
        return {"frame": frame, "flow": out["flow"], "weight": out["weight"], "frame_float": out["frame"]}

    def _serve_float(self, labels, prev_frames, num_prev):
        return self._serve_impl(labels, prev_frames, num_prev, None, as_float=True)

    def _serve_float_instances(self, labels, prev_frames, num_prev, instances):
        return self._serve_impl(labels, prev_frames, num_prev, instances, as_float=True)

    def _serve(self, labels, prev_frames, num_prev):
        return self._serve_impl(labels, prev_frames, num_prev, None)

    def _serve_instances(self, labels, prev_frames, num_prev, instances):
        return self._serve_impl(labels, prev_frames, num_prev, instances)

    def signatures(self) -> dict:
        return {"serving_default": self.serve, "float_feedback": self.serve_float}

    def examples(self) -> dict:
        rng = np.random.default_rng(0)
        # an odd size, so the reload check also runs the in-graph padding and cropping
        ex = {"labels": rng.integers(0, self.metadata["label_nc"], (1, self._n, 37, 29), dtype=np.int32),
              "prev_frames": rng.integers(0, 256, (1, self._n - 1, 37, 29, 3), dtype=np.uint8),
              "num_prev": np.int32(self._n - 1)}
        if self._use_instance:
            ex["instances"] = rng.integers(0, 4, (1, self._n, 37, 29), dtype=np.int32)
        fex = dict(ex, prev_frames=(ex["prev_frames"].astype(np.float32) / 127.5 - 1.0))
        return {"serving_default": ex, "float_feedback": fex}


def read_metadata(saved_model_dir: str) -> dict:
    """The `assets/tfvr.json` of an exported vid2vid model; `UserError` naming the folder if it is not one."""
    from tfvr.errors import UserError

    meta = _metadata.read(saved_model_dir)
    if meta["kind"] != "label-to-video":
        raise UserError(f"{saved_model_dir}: a {meta['kind']} model, not a label-to-video (vid2vid) one; "
                        "`tfvr synthesize` needs a model exported from a vid2vid run")
    return meta


def _same_size(x, labels, name: str, dims: str):
    """`x` behind an assert that its B, H, W are those of `labels` (in-graph, stock ops)."""
    sx, sl = tf.shape(x), tf.shape(labels)
    same = tf.reduce_all(tf.equal(tf.stack([sx[0], sx[2], sx[3]]), tf.stack([sl[0], sl[2], sl[3]])))
    with tf.control_dependencies([tf.debugging.Assert(same, [
            f"{name}: expected {x.dtype.name} {dims} with the B, H, W of labels; got {name}", sx, "labels", sl])]):
        return tf.identity(x)
