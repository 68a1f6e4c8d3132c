import numpy as np
import pytest
import tensorflow as tf

from tfvr.ops.warp import backward_warp, spatio_temporal_sample


def _np_bilinear(img, x, y, padding):
    """Reference for one image [H, W, C] sampled at float coordinates x, y (grid_sample, align_corners=True)."""
    h, w, _ = img.shape
    if padding == "border":
        x = np.clip(x, 0, w - 1)
        y = np.clip(y, 0, h - 1)
    out = np.zeros(x.shape + (img.shape[-1],), np.float64)
    x0 = np.floor(x).astype(int)
    y0 = np.floor(y).astype(int)
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            wgt = (1 - np.abs(x - xi)) * (1 - np.abs(y - yi))
            ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            vals = img[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
            out += np.where(ok, wgt, 0.0)[..., None] * vals
    return out


def _np_warp(images, flow, padding):
    b, h, w, _ = images.shape
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack([_np_bilinear(images[i], xx + flow[i, ..., 0], yy + flow[i, ..., 1], padding) for i in range(b)])


def _np_st_sample(frames, flow, padding):
    b, t, h, w, _ = frames.shape
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    outs = []
    for i in range(b):
        z = np.clip(flow[i, ..., 2], 0, t - 1)
        acc = 0.0
        for k in range(t):
            wz = np.maximum(0.0, 1 - np.abs(z - k))
            acc = acc + wz[..., None] * _np_bilinear(frames[i, k], xx + flow[i, ..., 0], yy + flow[i, ..., 1], padding)
        outs.append(acc)
    return np.stack(outs)


def _rand(shape, seed, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


@pytest.mark.parametrize("padding", ["border", "zeros"])
@pytest.mark.parametrize("hw", [(7, 11), (16, 16), (1, 5)])
def test_zero_flow_is_identity(padding, hw):
    img = _rand((2, *hw, 3), 0)
    out = backward_warp(img, np.zeros((2, *hw, 2), np.float32), padding=padding)
    np.testing.assert_array_equal(out.numpy(), img)
    frames = _rand((2, 5, *hw, 3), 1)
    for k in range(5):
        flow = np.zeros((2, *hw, 3), np.float32)
        flow[..., 2] = k
        out = spatio_temporal_sample(frames, flow, padding=padding)
        np.testing.assert_array_equal(out.numpy(), frames[:, k])


@pytest.mark.parametrize("padding", ["border", "zeros"])
def test_integer_shift_is_exact(padding):
    img = _rand((1, 9, 13, 4), 2)
    flow = np.zeros((1, 9, 13, 2), np.float32)
    flow[..., 0] = 3  # read 3 columns to the right
    flow[..., 1] = -2  # and 2 rows up
    out = backward_warp(img, flow, padding=padding).numpy()
    np.testing.assert_array_equal(out[:, 2:, :-3], img[:, :-2, 3:])
    if padding == "zeros":
        assert np.all(out[:, :2] == 0) and np.all(out[:, :, -3:] == 0)
    else:  # clamped to the nearest edge pixel
        np.testing.assert_array_equal(out[:, 0, :-3], img[:, 0, 3:])
        np.testing.assert_array_equal(out[:, 5, -3:], np.repeat(img[:, 3, -1:], 3, axis=1))


@pytest.mark.parametrize("padding", ["border", "zeros"])
def test_matches_numpy_reference(padding):
    img = _rand((2, 10, 12, 3), 3)
    flow = _rand((2, 10, 12, 2), 4, scale=3.0)  # many samples fall outside
    np.testing.assert_allclose(backward_warp(img, flow, padding=padding).numpy(),
                               _np_warp(img, flow, padding), atol=1e-5)
    frames = _rand((2, 5, 10, 12, 3), 5)
    stflow = _rand((2, 10, 12, 3), 6, scale=3.0)
    stflow[..., 2] = stflow[..., 2] + 2.0  # some z beyond [0, 4]: clamped
    np.testing.assert_allclose(spatio_temporal_sample(frames, stflow, padding=padding).numpy(),
                               _np_st_sample(frames, stflow, padding), atol=1e-5)


def test_temporal_interpolation():
    frames = np.stack([np.full((1, 4, 4, 1), k, np.float32) for k in range(5)], axis=1)  # frame k holds value k
    flow = np.zeros((1, 4, 4, 3), np.float32)
    flow[..., 2] = [[0.0, 1.25, 2.5, 3.75]] * 4
    out = spatio_temporal_sample(frames, flow).numpy()[0, ..., 0]
    np.testing.assert_allclose(out, flow[0, ..., 2], atol=1e-6)
    flow[..., 2] = [[-3.0, 4.0, 9.0, 3.999]] * 4
    out = spatio_temporal_sample(frames, flow).numpy()[0, ..., 0]
    np.testing.assert_allclose(out, [[0.0, 4.0, 4.0, 3.999]] * 4, atol=1e-5)


def _away_from_kinks(x):
    # Finite differences straddling an integer coordinate (a kink of the bilinear weights) are meaningless.
    frac = x - np.floor(x)
    return np.floor(x) + 0.25 + 0.5 * frac


@pytest.mark.parametrize("padding", ["border", "zeros"])
def test_gradients_match_numerics(padding):
    img = _rand((1, 6, 7, 2), 7).astype(np.float64)
    flow = _away_from_kinks(_rand((1, 6, 7, 2), 8, scale=0.8)).astype(np.float64)
    if padding == "border":
        # keep the sampling points inside the image: the clamp is another kink
        yy, xx = np.meshgrid(np.arange(6), np.arange(7), indexing="ij")
        flow[..., 0] = np.clip(xx + flow[..., 0], 0.1, 5.9) - xx
        flow[..., 1] = np.clip(yy + flow[..., 1], 0.1, 4.9) - yy
    fn = tf.function(lambda a, f: backward_warp(a, f, padding=padding))  # traced once: the numerics call it ~500 times
    theo, num = tf.test.compute_gradient(fn, [img, flow], delta=1e-4)
    for t_, n_ in zip(theo, num):
        np.testing.assert_allclose(t_, n_, atol=1e-5)


@pytest.mark.parametrize("padding", ["border", "zeros"])
def test_st_sampler_gradients_match_numerics(padding):
    frames = _rand((1, 3, 5, 6, 2), 9).astype(np.float64)
    flow = _rand((1, 5, 6, 3), 10, scale=0.7).astype(np.float64)
    flow[..., 2] = 1.0 + 0.8 * np.tanh(flow[..., 2])  # z inside (0.2, 1.8)
    flow = _away_from_kinks(flow)
    if padding == "border":
        yy, xx = np.meshgrid(np.arange(5), np.arange(6), indexing="ij")
        flow[..., 0] = np.clip(xx + flow[..., 0], 0.1, 4.9) - xx
        flow[..., 1] = np.clip(yy + flow[..., 1], 0.1, 3.9) - yy
    fn = tf.function(lambda a, f: spatio_temporal_sample(a, f, padding=padding))
    theo, num = tf.test.compute_gradient(fn, [frames, flow], delta=1e-4)
    for t_, n_ in zip(theo, num):
        np.testing.assert_allclose(t_, n_, atol=1e-5)


def test_gradient_is_zero_along_a_clamped_axis():
    img = tf.constant(_rand((1, 4, 4, 1), 11))
    flow = tf.Variable(np.full((1, 4, 4, 2), 10.0, np.float32))  # everything far outside, bottom-right
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(backward_warp(img, flow, padding="border"))
    np.testing.assert_array_equal(tape.gradient(loss, flow).numpy(), 0.0)


@pytest.mark.parametrize("padding", ["border", "zeros"])
def test_graph_eager_and_xla_agree_with_dynamic_shapes(padding):
    warp = tf.function(lambda a, f: backward_warp(a, f, padding=padding),
                       input_signature=[tf.TensorSpec([None, None, None, None]), tf.TensorSpec([None, None, None, 2])])
    st = tf.function(lambda a, f: spatio_temporal_sample(a, f, padding=padding), jit_compile=True)
    for hw in [(5, 9), (12, 7)]:
        img = _rand((3, *hw, 2), 12)
        flow = _rand((3, *hw, 2), 13, scale=2.0)
        np.testing.assert_allclose(warp(img, flow).numpy(), backward_warp(img, flow, padding=padding).numpy(),
                                   atol=1e-6)
        frames = _rand((3, 4, *hw, 2), 14)
        stflow = _rand((3, *hw, 3), 15, scale=2.0)
        np.testing.assert_allclose(st(frames, stflow).numpy(),
                                   spatio_temporal_sample(frames, stflow, padding=padding).numpy(), atol=1e-5)


def test_batch_elements_are_independent_and_half_precision_runs():
    img = _rand((3, 8, 8, 3), 16)
    flow = _rand((3, 8, 8, 2), 17, scale=2.0)
    full = backward_warp(img, flow).numpy()
    for i in range(3):
        np.testing.assert_allclose(backward_warp(img[i:i + 1], flow[i:i + 1]).numpy()[0], full[i], atol=1e-6)
    half = backward_warp(tf.cast(img, tf.float16), flow)
    assert half.dtype == tf.float16
    np.testing.assert_allclose(half.numpy().astype(np.float32), full, atol=2e-2)


def test_bad_padding_is_rejected():
    with pytest.raises(ValueError, match="padding"):
        backward_warp(np.zeros((1, 2, 2, 1), np.float32), np.zeros((1, 2, 2, 2), np.float32), padding="reflect")
