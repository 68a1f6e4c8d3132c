"""The PyTorch-semantics layers of tfvr.layers.torch_nn (vid2vid's) against direct NumPy definitions."""

import numpy as np
import pytest
import tensorflow as tf

from tfvr.layers import torch_nn as L

rng = np.random.default_rng(0)


def torch_conv_transpose(x, w, b, s, p, op):
    """PyTorch ConvTranspose2d by definition: input i feeds output i·s − p + k. x NHWC, w (in, out, k, k)."""
    n, h, wd, cin = x.shape
    k = w.shape[2]
    oh, ow = (h - 1) * s - 2 * p + k + op, (wd - 1) * s - 2 * p + k + op
    y = np.zeros((n, oh, ow, w.shape[1])) + b
    for i in range(h):
        for j in range(wd):
            for ki in range(k):
                for kj in range(k):
                    o, q = i * s - p + ki, j * s - p + kj
                    if 0 <= o < oh and 0 <= q < ow:
                        y[:, o, q] += x[:, i, j] @ w[:, :, ki, kj]
    return y


@pytest.mark.parametrize("k,s,p,op", [(3, 2, 1, 1), (4, 2, 1, 0), (3, 1, 1, 0), (5, 3, 2, 2)])
def test_conv_transpose_is_pytorchs(k, s, p, op):
    x = rng.standard_normal((2, 5, 6, 4)).astype(np.float32)
    w = rng.standard_normal((4, 3, k, k)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    layer = L.ConvTranspose2d(3, k, s, p, op)
    layer.build(x.shape)
    layer.kernel.assign(L.to_keras_array(layer, "weight", w))
    layer.bias.assign(b)
    y = layer(x)
    assert tuple(y.shape) == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(y, torch_conv_transpose(x, w, b, s, p, op), atol=1e-4)


def test_conv_pads_symmetrically():
    x = rng.standard_normal((1, 8, 6, 2)).astype(np.float32)
    layer = L.Conv2d(3, 3, stride=2, padding=1)
    y = layer(x)
    want = tf.nn.conv2d(np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)]), layer.kernel, 2, "VALID") + layer.bias
    np.testing.assert_allclose(y, want, atol=1e-6)
    assert tuple(y.shape) == layer.compute_output_shape(x.shape) == (1, 4, 3, 3)


@pytest.mark.parametrize("mode,np_mode", [("reflect", "reflect"), ("replicate", "edge"), ("zero", "constant")])
def test_padding_modes(mode, np_mode):
    x = rng.standard_normal((1, 5, 7, 2)).astype(np.float32)
    np.testing.assert_array_equal(L.Pad2d(3, mode)(x), np.pad(x, [(0, 0), (3, 3), (3, 3), (0, 0)], mode=np_mode))


def test_avg_pool_does_not_count_padding():
    x = rng.standard_normal((1, 7, 6, 2)).astype(np.float32)
    y = np.asarray(L.AvgPool3x3s2()(x))
    want = np.zeros((1, 4, 3, 2))
    for i in range(4):
        for j in range(3):
            win = x[:, max(2 * i - 1, 0):2 * i + 2, max(2 * j - 1, 0):2 * j + 2]
            want[:, i, j] = win.mean(axis=(1, 2))
    np.testing.assert_allclose(y, want, atol=1e-6)


def test_instance_norm_tracks_running_stats_like_vid2vid():
    x = rng.standard_normal((2, 6, 5, 3)).astype(np.float32) * 2 + 1
    layer = L.InstanceNorm2d()
    layer.build(x.shape)
    # inference: the running statistics (initially 0 / 1 → identity up to eps)
    np.testing.assert_allclose(layer(x, training=False), x / np.sqrt(1 + 1e-5), atol=1e-5)
    y = np.asarray(layer(x, training=True))
    mu, var = x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(y, (x - mu) / np.sqrt(var + 1e-5), atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean, 0.1 * mu.mean(axis=(0, 1, 2)), atol=1e-6)
    unbiased = x.var(axis=(1, 2), ddof=1).mean(axis=0)
    np.testing.assert_allclose(layer.moving_variance, 0.9 + 0.1 * unbiased, atol=1e-5)


def test_batch_norm_is_pytorchs():
    x = rng.standard_normal((4, 3, 5, 2)).astype(np.float32) * 3 + 1
    bn = L.BatchNorm2d()
    bn.build(x.shape)
    bn.gamma.assign([1.5, 0.5])
    bn.beta.assign([0.1, -0.2])
    y = np.asarray(bn(x, training=True))
    mu, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(y, (x - mu) / np.sqrt(var + 1e-5) * [1.5, 0.5] + [0.1, -0.2], atol=1e-5)
    np.testing.assert_allclose(bn.moving_mean, 0.1 * mu, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance, 0.9 + 0.1 * x.var(axis=(0, 1, 2), ddof=1), atol=1e-5)
    mm, mv = np.asarray(bn.moving_mean), np.asarray(bn.moving_variance)
    np.testing.assert_allclose(bn(x, training=False), (x - mm) / np.sqrt(mv + 1e-5) * [1.5, 0.5] + [0.1, -0.2],
                               atol=1e-5)


def test_batch_norm_synchronised_over_replicas_equals_one_device():
    from tests.helpers import two_cpu_strategy

    x = rng.standard_normal((4, 3, 5, 2)).astype(np.float32)
    one = L.BatchNorm2d(gamma_initializer="ones")
    want = np.asarray(one(x, training=True))
    strategy = two_cpu_strategy()
    with strategy.scope():
        two = L.BatchNorm2d(gamma_initializer="ones")
        two.build(x.shape)
    dist = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(x[2 * ctx.replica_id_in_sync_group:2 * ctx.replica_id_in_sync_group + 2]))
    out = strategy.run(tf.function(lambda v: two(v, training=True)), args=(dist,))
    got = np.concatenate([np.asarray(t) for t in strategy.experimental_local_results(out)])
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.asarray(two.moving_variance), np.asarray(one.moving_variance), atol=1e-5)
