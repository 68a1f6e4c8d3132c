import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import golden
from tfvr.data import degrade

CASES = range(7)


@pytest.mark.parametrize("i", CASES)
def test_imresize_matches_basicsr_matlab_port(i):
    z = golden("matlab_imresize")
    img, scale, ref = z[f"{i}/img"], float(z[f"{i}/scale"]), z[f"{i}/out"]
    out = degrade.imresize(img, scale)
    assert out.shape == ref.shape and out.dtype == img.dtype
    assert np.abs(out - ref).max() <= 1e-6


@pytest.mark.parametrize("i", CASES)
def test_tf_imresize_matches_golden_eager_and_in_dataset_map(i):
    z = golden("matlab_imresize")
    img, scale, ref = z[f"{i}/img"].astype(np.float32), float(z[f"{i}/scale"]), z[f"{i}/out"]
    eager = degrade.tf_imresize(tf.constant(img), scale).numpy()
    ds = tf.data.Dataset.from_tensors(img).map(lambda x: degrade.tf_imresize(x, scale))
    in_map = next(iter(ds)).numpy()
    assert np.abs(eager - ref).max() <= 1e-6
    np.testing.assert_allclose(in_map, eager, atol=1e-7)


def test_tf_imresize_batched_and_float64():
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 20, 24, 3))
    out = degrade.tf_imresize(tf.constant(x), 0.25).numpy()
    assert out.shape == (2, 3, 5, 6, 3) and out.dtype == np.float64
    np.testing.assert_allclose(out[1, 2], degrade.imresize(x[1, 2], 0.25), atol=1e-6)


def test_imresize_properties():
    flat = np.full((16, 12, 3), 0.3)
    np.testing.assert_allclose(degrade.imresize(flat, 0.5), 0.3, atol=1e-6)  # weights sum to one
    gray = np.random.default_rng(1).random((9, 7))
    assert degrade.imresize(gray, 2).shape == (18, 14)
    with pytest.raises(TypeError):
        degrade.imresize(np.zeros((4, 4, 3), np.uint8), 0.5)


def test_tf_imresize_needs_static_size():
    f = tf.function(lambda x: degrade.tf_imresize(x, 0.5),
                    input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])
    with pytest.raises(ValueError, match="static height and width"):
        f.get_concrete_function()


def test_gaussian_noise_numpy_and_tf():
    x = np.zeros((64, 64, 3), np.float32)
    n = degrade.add_gaussian_noise(x, 25, seed=3)
    assert n.dtype == np.float32 and abs(n.std() * 255 - 25) < 1.0
    np.testing.assert_array_equal(n, degrade.add_gaussian_noise(x, 25, seed=3))
    seed = tf.constant([1, 2], tf.int64)
    eager = degrade.tf_add_gaussian_noise(tf.constant(x), 25.0, seed).numpy()
    assert abs(eager.std() * 255 - 25) < 1.0
    ds = tf.data.Dataset.from_tensors(x).map(lambda v: degrade.tf_add_gaussian_noise(v, 25.0, seed))
    np.testing.assert_array_equal(next(iter(ds)).numpy(), eager)


def test_temporal_blur_numpy_and_tf_agree():
    frames = np.random.default_rng(2).random((6, 5, 4, 3)).astype(np.float32)
    blur = degrade.temporal_blur(frames, 3)
    assert blur.shape == (4, 5, 4, 3)
    np.testing.assert_allclose(blur[1], frames[1:4].mean(axis=0), atol=1e-6)
    tf_blur = degrade.tf_temporal_blur(tf.constant(frames), 3).numpy()
    np.testing.assert_allclose(tf_blur, blur, atol=1e-6)
    ds = tf.data.Dataset.from_tensors(frames).map(lambda v: degrade.tf_temporal_blur(v, 3))
    np.testing.assert_allclose(next(iter(ds)).numpy(), blur, atol=1e-6)
    batched = degrade.tf_temporal_blur(tf.constant(frames[None]), 3).numpy()
    np.testing.assert_allclose(batched[0], blur, atol=1e-6)
    with pytest.raises(ValueError):
        degrade.temporal_blur(frames, 7)
