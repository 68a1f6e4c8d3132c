import numpy as np
import pytest
import tensorflow as tf

from tfvr.errors import UserError
from tfvr.export.restoration import RestorationModule, read_metadata
from tfvr.ops.padding import pad_to_multiple
from tfvr.export.saved_model import export
from tfvr.models.sttn_restore import STTNRestore

SMALL = dict(unet_feat=8, unet_depth=2, unet_max_feat=16, num_feat=8, num_blocks=2)


def test_pad_to_multiple_reflects_and_falls_back_to_edge():
    x = tf.reshape(tf.range(5 * 3), [1, 5, 3, 1])
    y = pad_to_multiple(x, 4, axes=(1, 2)).numpy()[0, ..., 0]
    assert y.shape == (8, 4)
    np.testing.assert_array_equal(y[:5, :3], x.numpy()[0, ..., 0])
    np.testing.assert_array_equal(y[5:, 0], [9, 6, 3])  # reflect rows 3, 2, 1
    np.testing.assert_array_equal(y[:5, 3], [1, 4, 7, 10, 13])  # reflect column 1
    tiny = pad_to_multiple(tf.constant([[[[7]]]]), 8, axes=(1, 2)).numpy()
    assert tiny.shape == (1, 8, 8, 1) and np.all(tiny == 7)  # 1 pixel: the edge repeats
    edge = pad_to_multiple(x, 4, axes=(1,), mode="edge").numpy()[0, 5:, :, 0]
    np.testing.assert_array_equal(edge, np.repeat(x.numpy()[0, 4:5, :, 0], 3, axis=0))
    assert pad_to_multiple(x, 1) is x


def _trained_looking(model):
    model(tf.zeros([1, model.num_frames, 8, 8, 3]))
    for w in model.flow_net.out_conv.weights + model.head.conv_last.weights:
        w.assign(tf.random.normal(w.shape, stddev=0.05, seed=1))
    return model


@pytest.mark.parametrize("hw", [(37, 29), (8, 8), (3, 5)])
def test_serving_matches_the_keras_model_at_any_size(hw):
    model = _trained_looking(STTNRestore(num_frames=3, **SMALL))
    module = RestorationModule(model, num_frames=3, multiple=model.multiple, family="sttn_restore")
    frames = np.random.default_rng(0).integers(0, 256, (2, 3, *hw, 3), dtype=np.uint8)
    out = module.serve(tf.constant(frames))["restored"].numpy()
    assert out.dtype == np.uint8 and out.shape == (2, *hw, 3)
    ref = model(tf.constant(frames, tf.float32) / 255.0)["output"].numpy()
    ref = np.clip(np.round(ref * 255), 0, 255)
    assert np.abs(out.astype(int) - ref).max() <= 1


class Upscale2(tf.keras.layers.Layer):
    """A stand-in x2 model that only accepts multiples of 4 (like EDVR's pyramid)."""

    def call(self, x, training=False):
        tf.debugging.assert_equal(tf.shape(x)[2] % 4, 0)
        tf.debugging.assert_equal(tf.shape(x)[3] % 4, 0)
        centre = x[:, tf.shape(x)[1] // 2]
        return tf.repeat(tf.repeat(centre, 2, axis=1), 2, axis=2)


def test_scale_and_multiple_crop_to_the_scaled_input_size():
    module = RestorationModule(Upscale2(), num_frames=5, scale=2, multiple=4)
    frames = np.random.default_rng(1).integers(0, 256, (1, 5, 7, 5, 3), dtype=np.uint8)
    out = module.serve(tf.constant(frames))["restored"].numpy()
    assert out.shape == (1, 14, 10, 3)
    np.testing.assert_array_equal(out[0, ::2, ::2], frames[0, 2])


def test_export_reload_in_a_fresh_process(tmp_path):
    # `export` keeps the SavedModel only if a fresh process that never imports tfvr reloads it and reproduces the
    # outputs on `module.examples()` (odd 37 x 29 frames); here: the metadata and another size, reloaded.
    model = _trained_looking(STTNRestore(num_frames=3, **SMALL))
    module = RestorationModule(model, num_frames=3, multiple=model.multiple, family="sttn_restore",
                               model_config={"num_frames": 3, **SMALL})
    out_dir = str(tmp_path / "sttn" / "1")
    export(module, out_dir, signatures=module.signatures(), examples=module.examples())
    meta = read_metadata(out_dir)
    assert meta["num_frames"] == 3 and meta["scale"] == 1 and meta["multiple"] == 4
    assert meta["model_config"]["num_feat"] == 8 and meta["family"] == "sttn_restore"
    loaded = tf.saved_model.load(out_dir)
    assert [int(loaded.num_frames.numpy()), int(loaded.scale.numpy()), int(loaded.multiple.numpy())] == [3, 1, 4]
    frames = np.random.default_rng(2).integers(0, 256, (1, 3, 21, 13, 3), dtype=np.uint8)
    expected = module.serve(tf.constant(frames))["restored"].numpy()
    got = loaded.signatures["serving_default"](frames=tf.constant(frames))["restored"].numpy()
    assert got.shape == (1, 21, 13, 3)
    assert np.abs(got.astype(int) - expected).max() <= 1
    spec = loaded.signatures["serving_default"].structured_input_signature[1]["frames"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, 3, None, None, 3]


def test_read_metadata_errors_name_the_folder(tmp_path):
    with pytest.raises(UserError, match="no such SavedModel folder"):
        read_metadata(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="not a SavedModel"):
        read_metadata(str(tmp_path))
    (tmp_path / "saved_model.pb").write_bytes(b"")
    with pytest.raises(UserError, match="not a tfvr export"):
        read_metadata(str(tmp_path))
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "tfvr.json").write_text('{"format": ')
    with pytest.raises(UserError, match=r"tfvr.json: unreadable metadata \(Expecting value at line 1\)$"):
        read_metadata(str(tmp_path))
    (tmp_path / "assets" / "tfvr.json").write_text('["restoration"]')
    with pytest.raises(UserError, match=r"tfvr.json: unreadable metadata \(not a JSON object\)$"):
        read_metadata(str(tmp_path))
