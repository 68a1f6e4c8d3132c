"""ModulatedDeformConv2D (EDVR's DCNv2Pack): initialisation, config, the offset magnitude, SavedModel export."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import tensorflow as tf

from tests.helpers import two_cpu_strategy
from tfvr.layers.deform_conv import ModulatedDeformConv2D, offset_magnitudes


def inputs(seed=0, n=2, h=9, w=11, c=16, cg=12):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, h, w, c)).astype(np.float32), rng.normal(size=(n, h, w, cg)).astype(np.float32)


def test_fresh_layer_is_half_a_plain_conv():
    # Offset conv zero-initialised: zero offsets and mask sigmoid(0) = 0.5 everywhere.
    x, guide = inputs()
    layer = ModulatedDeformConv2D(8, deformable_groups=4, impl="reference")
    y = layer(x, guide)
    assert y.shape == (2, 9, 11, 8)
    np.testing.assert_allclose(y, 0.5 * tf.nn.conv2d(x, layer.kernel, 1, "SAME") + layer.bias, atol=1e-5)
    assert not np.any(layer.offset_kernel.numpy()) and not np.any(layer.bias.numpy())
    bound = 1 / np.sqrt(16 * 9)
    k = layer.kernel.numpy()
    assert np.abs(k).max() <= bound and np.abs(k).max() > 0.8 * bound
    assert [v.name for v in layer.trainable_weights] == ["offset_kernel", "offset_bias", "kernel", "bias"]
    assert [v.name for v in layer.non_trainable_weights] == ["offset_mean_abs"]


def test_torch_style_padding_and_stride_match_output_shape():
    x, guide = inputs(h=10, w=7)
    for padding, strides in ((1, 2), ("valid", 1), ("same", 2), ((2, 1), 1)):
        layer = ModulatedDeformConv2D(4, padding=padding, strides=strides, dilation_rate=(2, 1) if padding == (2, 1)
                                      else 1, deformable_groups=2, impl="reference")
        y = layer(x, guide)
        assert tuple(y.shape) == layer.compute_output_shape(x.shape, guide.shape)


def test_offset_mean_abs_tracks_the_last_call():
    x, guide = inputs()
    layer = ModulatedDeformConv2D(8, deformable_groups=4, impl="reference", name="dcn")
    layer(x, guide)
    assert float(layer.offset_mean_abs.numpy()) == 0.0
    layer.offset_bias.assign(np.linspace(-3, 3, layer.offset_bias.shape[0]).astype(np.float32))
    layer(x, guide)
    gk = 4 * 9
    want = np.abs(layer.offset_bias.numpy()[: 2 * gk]).mean()
    np.testing.assert_allclose(layer.offset_mean_abs.numpy(), want, rtol=1e-5)
    model = keras.Sequential([keras.Input((9, 11, 16))])  # any container: offset_magnitudes walks sub-layers
    model.dcn = layer
    inp, g = keras.Input((None, None, 16)), keras.Input((None, None, 12))
    functional = keras.Model([inp, g], layer(inp, g))
    np.testing.assert_allclose(offset_magnitudes(functional)["dcn"], want, rtol=1e-5)


def test_offset_mean_abs_is_the_replica_mean():
    x, guide = inputs(n=2)
    strategy = two_cpu_strategy()
    with strategy.scope():
        layer = ModulatedDeformConv2D(8, deformable_groups=4, impl="reference")
        layer(x[:1], guide[:1])
    layer.offset_kernel.assign(np.full(layer.offset_kernel.shape, 0.05, np.float32))
    guide[1] *= 3
    dataset = tf.data.Dataset.from_tensor_slices((x, guide)).batch(2)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

    @tf.function
    def step(b):
        return strategy.run(lambda xx, gg: layer(xx, gg), args=b)

    step(batch)
    per_replica = []
    for i in range(2):
        layer(x[i : i + 1], guide[i : i + 1])
        per_replica.append(float(layer.offset_mean_abs.numpy()))
    step(batch)
    np.testing.assert_allclose(layer.offset_mean_abs.numpy(), np.mean(per_replica), rtol=1e-5)


def test_get_config_round_trip():
    layer = ModulatedDeformConv2D(8, kernel_size=(3, 3), padding=1, strides=2, deformable_groups=4, use_bias=False,
                                  impl="reference", name="pack")
    clone = ModulatedDeformConv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    x, guide = inputs()
    assert clone(x, guide).shape == (2, 5, 6, 8) and clone.bias is None


def test_saved_model_runs_in_a_process_without_the_kernel(tmp_path):
    x, guide = inputs(n=1)
    layer = ModulatedDeformConv2D(8, deformable_groups=4, impl="auto")
    layer(x, guide)
    layer.offset_kernel.assign(np.random.default_rng(5).normal(size=layer.offset_kernel.shape).astype(np.float32))
    want = layer(x, guide).numpy()

    class Serve(tf.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 16]), tf.TensorSpec([None, None, None, 12])])
        def __call__(self, x, guide):
            return self.layer(x, guide)

    path = str(tmp_path / "dcn")
    # impl="auto" resolves to the pure-TF path while tf.saved_model.save traces.
    tf.saved_model.save(Serve(), path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "g.npy", guide)
    code = textwrap.dedent(
        f"""
        import sys, numpy as np, tensorflow as tf
        m = tf.saved_model.load({path!r})
        y = m(np.load({str(tmp_path / 'x.npy')!r}), np.load({str(tmp_path / 'g.npy')!r})).numpy()
        assert not [k for k in sys.modules if k.split('.')[0] == 'tfvr'], 'tfvr was imported'
        assert '_deform_conv_ops' not in open('/proc/self/maps').read(), 'the kernel library was loaded'
        np.save({str(tmp_path / 'y.npy')!r}, y)
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("PYTHONPATH", None)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env, timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, atol=1e-5)
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        assert b"TfvrDeform" not in f.read()
