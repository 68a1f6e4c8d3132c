"""tfvr.ops.winograd: the same function as tf.nn.conv2d (3x3, stride 1), forward and gradients."""

import numpy as np
import pytest
import tensorflow as tf

from tfvr.ops.winograd import AT, BT, G, conv2d_winograd


def _rand(shape, seed, dtype=np.float64):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, shape).astype(dtype))


@pytest.mark.parametrize("m", [2, 4])
def test_transform_matrices_give_1d_correlation(m):
    rng = np.random.default_rng(m)
    d, g = rng.standard_normal(m + 2), rng.standard_normal(3)
    y = AT[m] @ ((G[m] @ g) * (BT[m] @ d))
    np.testing.assert_allclose(y, [d[r:r + 3] @ g for r in range(m)], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_forward_matches_conv2d_float64(padding, m):
    # odd sizes (partial last tiles on both axes) and a map smaller than one tile; plain TF ops here (the XLA build
    # of the same graph is checked once below: each XLA compile costs seconds on the shared test machine)
    for i, (n, h, w, c, k) in enumerate([(2, 7, 9, 3, 5), (1, 3, 4, 2, 3)]):
        x, kern = _rand((n, h, w, c), i), _rand((3, 3, c, k), 10 + i)
        want = tf.nn.conv2d(x, kern, 1, padding)
        got = conv2d_winograd(x, kern, padding, tile=m, xla=False)
        assert got.shape == want.shape and got.dtype == tf.float64
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=1e-12)


def test_float32_error_on_unit_scale_inputs_and_xla():
    x = _rand((2, 13, 22, 64), 3, np.float32)
    kern = tf.constant((np.random.default_rng(4).standard_normal((3, 3, 64, 32)) / np.sqrt(9 * 64)).astype(np.float32))
    ref = tf.nn.conv2d(tf.cast(x, tf.float64), tf.cast(kern, tf.float64), 1, "SAME").numpy()
    scale = np.abs(ref).max()
    for m, bound, xla in ((2, 2e-6, False), (4, 5e-5, True)):  # measured ~4e-7, ~1e-5 of the scale (direct: ~2e-7)
        err = np.abs(conv2d_winograd(x, kern, "SAME", tile=m, xla=xla).numpy() - ref).max() / scale
        assert err < bound, (m, err)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_gradients_match_conv2d(padding):
    x, kern = _rand((2, 7, 6, 3), 5), _rand((3, 3, 3, 4), 6)
    up = _rand((2, 7, 6, 4) if padding == "SAME" else (2, 5, 4, 4), 7)
    grads = []
    for fn in (lambda a, b: tf.nn.conv2d(a, b, 1, padding), lambda a, b: conv2d_winograd(a, b, padding, xla=False)):
        with tf.GradientTape() as tape:
            tape.watch([x, kern])
            loss = tf.reduce_sum(fn(x, kern) * up)
        grads.append(tape.gradient(loss, [x, kern]))
    for want, got in zip(*grads):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=1e-11)


def test_unknown_size_falls_back_and_bfloat16_keeps_dtype():
    x, kern = _rand((1, 5, 6, 2), 8, np.float32), _rand((3, 3, 2, 3), 9, np.float32)
    fn = tf.function(lambda a: conv2d_winograd(a, kern), input_signature=[tf.TensorSpec([None, None, None, 2])])
    np.testing.assert_allclose(fn(x).numpy(), tf.nn.conv2d(x, kern, 1, "SAME").numpy(), atol=1e-6)
    # bfloat16 runs in bfloat16 (F(2x2): its constants are exact; F(4x4) in 16-bit loses ~5 % of the output's scale,
    # which is why the STTN-I generator's "auto" keeps 16-bit convs direct)
    y = conv2d_winograd(tf.cast(x, tf.bfloat16), kern, tile=2, xla=False)
    assert y.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(y, tf.float32).numpy(), tf.nn.conv2d(x, kern, 1, "SAME").numpy(), atol=0.05)
    bias = _rand((3,), 10, np.float32)
    np.testing.assert_allclose(conv2d_winograd(x, kern, "VALID", xla=False, bias=bias).numpy(),
                               tf.nn.bias_add(tf.nn.conv2d(x, kern, 1, "VALID"), bias).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="tile"):
        conv2d_winograd(x, kern, tile=3)


# ---------------------------------------------------------------- compiled transforms (tfvr/ops/cc/winograd_ops.cc)
from tests.helpers import STRICT  # noqa: E402
from tfvr.ops import winograd as wg  # noqa: E402

CC_OK, CC_WHY = wg.cc_status()
# Under CI a library that failed to build (or predates the ops) fails these tests instead of skipping them.
needs_cc = pytest.mark.skipif(not CC_OK and not STRICT, reason=f"compiled Winograd ops unavailable: {CC_WHY}")


def _ref_conv(x, kern, bias, dilation, lrelu):
    x, kern = tf.cast(x, tf.float64), tf.cast(kern, tf.float64)
    # atrous_conv2d: the dilated conv with gradients on CPU (Conv2DBackpropInput rejects dilations there)
    y = tf.nn.conv2d(x, kern, 1, "SAME") if dilation == 1 else tf.nn.atrous_conv2d(x, kern, dilation, "SAME")
    y = tf.nn.bias_add(y, tf.cast(bias, tf.float64))
    return tf.nn.leaky_relu(y, 0.2) if lrelu else y


@needs_cc
@pytest.mark.parametrize("dilation", [1, 2])
def test_cc_forward_matches_conv2d(dilation):
    # H, W not multiples of 4 (partial last tiles; odd sizes under dilation 2: sub-grids of unequal sizes), a 1x1
    # map, C / K not multiples of 8 and over one 64-channel chunk, V / M split into several chunks (one with more
    # chunks than tiles: empty chunks)
    cases = [((2, 7, 9, 3), 5, True, None), ((1, 1, 1, 4), 3, False, None), ((2, 13, 10, 70), 67, True, 3),
             ((1, 5, 6, 9), 11, False, 40)]
    for i, (shape, k, lrelu, chunks) in enumerate(cases):
        x = _rand(shape, 20 + i, np.float32)
        kern = tf.constant((np.random.default_rng(30 + i).standard_normal((3, 3, shape[-1], k))
                            / np.sqrt(9 * shape[-1])).astype(np.float32))
        bias = _rand((k,), 40 + i, np.float32)
        want = _ref_conv(x, kern, bias, dilation, lrelu).numpy()
        got = wg.conv2d_winograd_cc(x, kern, bias, dilation=dilation, lrelu=lrelu, chunks=chunks)
        assert got.shape == want.shape and got.dtype == tf.float32
        err = np.abs(got.numpy() - want).max() / np.abs(want).max()
        assert err < 2e-5, (shape, dilation, err)  # measured <= 5e-6 of the scale (F(4x4) constants)


@needs_cc
def test_cc_chunk_count_and_errors():
    assert wg.winograd_chunks(5, 60, 108, 256, 256) == 9  # 2025 tiles x 36 KiB -> 8 MiB chunks
    assert wg.winograd_chunks(None, 60, 108, 256, 256) == 1
    assert wg.winograd_chunks(1, 1, 1, 1, 1) == 1
    x = _rand((1, 4, 4, 2), 50, np.float32)
    with pytest.raises(ValueError, match="float32"):
        wg.conv2d_winograd_cc(tf.cast(x, tf.float64), tf.zeros([3, 3, 2, 2], tf.float64))
    lib = wg._cc_lib()
    with pytest.raises(tf.errors.InvalidArgumentError, match="tiles"):
        lib.tfvr_winograd_output([tf.zeros([36, 3, 2])], tf.zeros([2]), height=4, width=8)  # 2 tiles a map


@needs_cc
def test_cc_gradient_is_conv2d_gradient():
    for dilation, lrelu in ((1, True), (2, False)):
        x = _rand((2, 6, 7, 5), 60, np.float32)
        kern, bias = _rand((3, 3, 5, 4), 61, np.float32), _rand((4,), 62, np.float32)
        up = _rand((2, 6, 7, 4), 63, np.float32)
        grads = []
        for fn in (lambda a, b, c: _ref_conv(a, b, c, dilation, lrelu),
                   lambda a, b, c: wg.conv2d_winograd_cc(a, b, c, dilation=dilation, lrelu=lrelu)):
            with tf.GradientTape() as tape:
                tape.watch([x, kern, bias])
                loss = tf.reduce_sum(tf.cast(fn(x, kern, bias), tf.float64) * tf.cast(up, tf.float64))
            grads.append(tape.gradient(loss, [x, kern, bias]))
        for want, got in zip(*grads):
            np.testing.assert_allclose(tf.cast(got, tf.float64).numpy(), want.numpy(), rtol=0, atol=2e-5)
