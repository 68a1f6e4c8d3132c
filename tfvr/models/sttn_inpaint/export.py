"""The STTN-I serving module: uint8 frames + masks of any size in, uint8 inpainted frames out.

    serving_default(frames: uint8 [T, H, W, 3], masks: uint8 [T, H, W, 1]) -> {"frames": uint8 [T, H, W, 3]}

`masks` > 0 marks the hole. The frames are processed together (one window of the authors' inference scheme: the
transformer attends over all T). Inside the graph: frames are resized to the model size (bilinear, antialiased),
the hole to the model size with "any pixel of the area is hole" (area resize > 0) so thin holes survive; the
generator runs at the model size; its output is resized back to H x W (bilinear) and composited with the input at
full resolution: `where(hole, output, frames)`, so every pixel outside the hole is returned bit-exactly.
The model size is kept in `assets/tfvr.json` (`tfvr.export.metadata`, kind "inpainting": model_height,
model_width) and, as in the first releases, as the `model_height` / `model_width` variables.
"""

import tensorflow as tf

from tfvr.export import metadata as _metadata


class InpaintExportModule(tf.Module):
    def __init__(self, generator, height: int, width: int, name: str = "sttn_inpaint",
                 model_config: dict | None = None, precision: str | None = None):
        super().__init__(name=name)
        self.generator = generator
        self.height, self.width = int(height), int(width)
        self.model_height = tf.Variable(self.height, trainable=False, dtype=tf.int32, name="model_height")
        self.model_width = tf.Variable(self.width, trainable=False, dtype=tf.int32, name="model_width")
        if model_config is None and hasattr(generator, "get_config"):
            model_config = {k: v for k, v in generator.get_config().items() if k not in ("name", "trainable", "dtype")}
        _metadata.attach(self, "inpainting", family="sttn_inpaint", num_frames=0, model_config=model_config,
                         precision=precision, model_height=self.height, model_width=self.width)

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="frames"),
                                  tf.TensorSpec([None, None, None, 1], tf.uint8, name="masks")])
    def serving_default(self, frames, masks):
        from tfvr.export.checks import check_input

        frames = check_input(frames, ("T", "H", "W", 3), "frames")
        masks = check_input(masks, ("T", "H", "W", 1), "masks")
        same = tf.reduce_all(tf.equal(tf.shape(masks)[:3], tf.shape(frames)[:3]))
        with tf.control_dependencies([tf.debugging.Assert(same, [
                "masks: expected uint8 [T, H, W, 1] with the T, H, W of frames; got masks", tf.shape(masks),
                "frames", tf.shape(frames)])]):
            masks = tf.identity(masks)
        # In-process (`tfvr inpaint --model X.weights.h5`, tests) this runs the generator's compiled Winograd convs;
        # `tfvr.export.saved_model.export` traces it again under the save context and implementation("reference"),
        # so a SavedModel holds stock TF ops only, whatever was traced before.
        return {"frames": inpaint_window(self.generator, frames, masks, self.height, self.width)}


def inpaint_window(generator, frames, masks, height: int, width: int):
    """uint8 [T, H, W, 3] frames + [T, H, W, 1] masks -> uint8 [T, H, W, 3], composited at full size."""
    frames = tf.convert_to_tensor(frames)
    hole = tf.convert_to_tensor(masks) > 0
    size = tf.shape(frames)[1:3]
    f = tf.cast(frames, tf.float32) / 255.0
    same = tf.reduce_all(tf.equal(size, [height, width]))
    small = tf.cond(same, lambda: f,
                    lambda: tf.image.resize(f, [height, width], method="bilinear", antialias=True))
    small_hole = tf.cond(same, lambda: tf.cast(hole, tf.float32),
                         lambda: tf.image.resize(tf.cast(hole, tf.float32), [height, width], method="area"))
    small = tf.ensure_shape(small, [None, height, width, 3])
    small_hole = tf.cast(tf.ensure_shape(small_hole, [None, height, width, 1]) > 0, tf.float32)
    x = (small * 2.0 - 1.0) * (1.0 - small_hole)
    pred = generator((x[tf.newaxis], small_hole[tf.newaxis]), training=False)[0]
    pred = (tf.cast(pred, tf.float32) + 1.0) / 2.0
    pred = tf.cond(same, lambda: pred, lambda: tf.image.resize(pred, size, method="bilinear"))
    pred = tf.cast(tf.round(tf.clip_by_value(pred, 0.0, 1.0) * 255.0), tf.uint8)
    return tf.where(hole, pred, frames)
