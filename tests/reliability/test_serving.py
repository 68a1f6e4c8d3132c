"""Issue 12 case 12: the serving signatures answer a wrong T, rank, channel count or an empty batch with a message
naming the expected input ("frames: expected uint8 [B, 5, H, W, 3]"), also after a reload (the SavedModel still
loads in a fresh process without tfvr: `export`'s own check), instead of a raw reshape error from the model."""

import numpy as np
import pytest
import tensorflow as tf

import keras
from tfvr.export.restoration import RestorationModule
from tfvr.export.saved_model import export


class CentreFrameModel(keras.Model):
    """A window model whose reshape fails on a wrong T, like the real ones ("Input to reshape is a tensor ...")."""

    def __init__(self, t):
        super().__init__()
        self.t = t
        self.conv = keras.layers.Conv2D(3, 1)

    def call(self, x, training=False):
        s = tf.shape(x)
        y = tf.reshape(x, [s[0], s[2], s[3], self.t * 3])  # wrong T: the raw graph error of the issue
        return self.conv(y)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    model = CentreFrameModel(5)
    model(tf.zeros([1, 5, 8, 8, 3]))
    module = RestorationModule(model, num_frames=5)
    out = export(module, str(tmp_path_factory.mktemp("sm") / "1"), signatures=module.signatures(),
                 examples=module.examples())  # reloads and runs in a fresh process without tfvr
    return tf.saved_model.load(out).signatures["serving_default"]


@pytest.mark.parametrize("shape,why", [
    ((1, 3, 8, 8, 3), "got shape"),           # wrong T
    ((1, 5, 8, 8, 4), "got shape"),           # wrong channels
    ((5, 8, 8, 3), "got rank"),               # rank 4
    ((1, 5, 8, 8, 3, 1), "got rank"),         # rank 6
    ((0, 5, 8, 8, 3), "an empty batch"),      # empty batch
    ((1, 5, 0, 8, 3), "H = 0"),
])
def test_restoration_signature_names_the_expected_shape(served, shape, why):
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        served(frames=tf.constant(np.zeros(shape, np.uint8)))
    msg = str(e.value)
    assert "frames: expected uint8 [B, 5, H, W, 3]" in msg and why in msg, msg[:600]
    assert "Input to reshape" not in msg


def test_restoration_signature_still_serves_good_input(served):
    out = served(frames=tf.constant(np.zeros((2, 5, 9, 7, 3), np.uint8)))["restored"]
    assert out.shape == (2, 9, 7, 3) and out.dtype == tf.uint8


def test_inpaint_and_vid2vid_modules_check_their_inputs():
    from tfvr.models.sttn_inpaint.export import InpaintExportModule
    from tfvr.models.vid2vid.export import Vid2VidModule

    gen = lambda inputs, training=False: inputs[0] * 0.0  # noqa: E731 - shape-preserving stand-in
    inpaint = InpaintExportModule(gen, 8, 8)
    frames, masks = np.zeros((3, 8, 8, 3), np.uint8), np.zeros((3, 8, 8, 1), np.uint8)
    assert inpaint.serving_default(tf.constant(frames), tf.constant(masks))["frames"].shape == (3, 8, 8, 3)
    for f, m, want in [(frames, masks[:2], "with the T, H, W of frames"),
                       (frames[:0], masks[:0], "frames: expected uint8 [T, H, W, 3] with T >= 1")]:
        with pytest.raises(tf.errors.InvalidArgumentError, match=want.replace("[", r"\[")):
            inpaint.serving_default(tf.constant(f), tf.constant(m))

    class Gen:
        n_frames_G, size_multiple, use_instance, no_flow, label_nc = 3, 1, False, True, 4

        def __call__(self, labels, prev, instances, training=False):
            z = tf.zeros(tf.concat([tf.shape(labels)[:1], tf.shape(labels)[2:], [3]], 0))
            return {"img_final": z, "flow": None, "weight": None}

    v = Vid2VidModule(Gen())
    labels, prev = np.zeros((1, 3, 8, 8), np.int32), np.zeros((1, 2, 8, 8, 3), np.uint8)
    serve = v.serve.get_concrete_function()  # called like TF Serving: the static signature shape is not enforced

    def call(lab, pr):
        return serve(labels=tf.constant(lab), prev_frames=tf.constant(pr), num_prev=tf.constant(0))

    assert call(labels, prev)["frame"].shape == (1, 8, 8, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels: expected int32 \[B, 3, H, W\]"):
        call(labels[:, :2], prev)
    with pytest.raises(tf.errors.InvalidArgumentError, match="with the B, H, W of labels"):
        call(labels, prev[:, :, :4])
