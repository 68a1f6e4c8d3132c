"""tfvr.ops.conv3d: a temporal-stride-1 Conv3D as a sum of 2-D convs equals tf.nn.conv3d, values and gradients."""

import numpy as np
import pytest
import tensorflow as tf

from tfvr.ops.conv3d import conv3d


def _fwd_bwd(fn, x, k):
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, k])
        y = fn(x, k)
        loss = tf.reduce_sum(y * tf.sin(y))  # a non-constant upstream gradient
    return [t.numpy() for t in (y, tape.gradient(loss, x), tape.gradient(loss, k))]


@pytest.mark.parametrize("shape,kernel,strides,padding", [
    ((2, 6, 13, 11, 3), (3, 5, 5, 3, 8), (1, 2, 2), "VALID"),  # the T-PatchGAN layer (odd sizes)
    ((1, 5, 9, 9, 4), (3, 3, 3, 4, 5), (1, 1, 1), "SAME"),
    ((1, 4, 8, 10, 2), (2, 3, 1, 2, 3), (1, 2, 1), "SAME"),    # even kt: SAME pads time 0 before, 1 after
    ((2, 3, 7, 7, 3), (1, 3, 3, 3, 4), (1, 1, 2), "VALID"),
])
def test_sum_of_2d_convs_equals_conv3d(shape, kernel, strides, padding):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape).astype(np.float32))
    k = tf.constant(rng.normal(size=kernel).astype(np.float32))
    want = _fwd_bwd(lambda a, b: tf.nn.conv3d(a, b, [1, *strides, 1], padding), x, k)
    got = _fwd_bwd(lambda a, b: conv3d(a, b, strides, padding, impl="conv2d"), x, k)
    for g, w, name in zip(got, want, ("output", "d/dx", "d/dkernel")):
        assert g.shape == w.shape, name
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * np.abs(w).max(), err_msg=name)


def test_temporal_stride_and_explicit_impl_fall_back_to_conv3d():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(1, 7, 8, 8, 2)).astype(np.float32))
    k = tf.constant(rng.normal(size=(3, 3, 3, 2, 4)).astype(np.float32))
    for impl, strides in (("conv2d", (2, 1, 1)), ("conv3d", (1, 1, 1))):
        want = tf.nn.conv3d(x, k, [1, *strides, 1], "VALID").numpy()
        np.testing.assert_array_equal(conv3d(x, k, strides, impl=impl).numpy(), want)  # the same op: bit-exact
    with pytest.raises(ValueError, match="impl"):
        conv3d(x, k, impl="winograd")


def test_bfloat16_inputs_stay_bfloat16():
    x = tf.cast(tf.random.stateless_normal((1, 4, 9, 9, 3), seed=(1, 2)), tf.bfloat16)
    k = tf.cast(tf.random.stateless_normal((3, 5, 5, 3, 4), seed=(3, 4)), tf.bfloat16)
    y = conv3d(x, k, (1, 2, 2), impl="conv2d")
    assert y.dtype == tf.bfloat16
    want = tf.nn.conv3d(tf.cast(x, tf.float32), tf.cast(k, tf.float32), [1, 1, 2, 2, 1], "VALID").numpy()
    np.testing.assert_allclose(tf.cast(y, tf.float32).numpy(), want, atol=0.05 * np.abs(want).max())


def test_environment_overrides_auto(monkeypatch):
    from tfvr.errors import ConfigError

    def op_types():
        fn = tf.function(lambda x, k: conv3d(x, k, (1, 2, 2)))
        graph = fn.get_concrete_function(tf.TensorSpec([1, 4, 9, 9, 2]), tf.TensorSpec([3, 3, 3, 2, 4])).graph
        return {op.type for op in graph.get_operations()}

    monkeypatch.delenv("TFVR_CONV3D_IMPL", raising=False)
    assert "Conv2D" in op_types() and "Conv3D" not in op_types()  # auto on CPU
    monkeypatch.setenv("TFVR_CONV3D_IMPL", "conv3d")
    assert "Conv3D" in op_types() and "Conv2D" not in op_types()
    monkeypatch.setenv("TFVR_CONV3D_IMPL", "fast")
    with pytest.raises(ConfigError, match="TFVR_CONV3D_IMPL"):
        op_types()
