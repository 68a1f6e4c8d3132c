
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import run_model_test
from tfvr.models.sttn_restore import STTNRestore, STTNRestoreConfig, UNetFlow

SMALL = dict(unet_feat=8, unet_depth=2, unet_max_feat=16, num_feat=8, num_blocks=2)


def test_config_constructor_get_config_keras_round_trip_and_unknown_size(tmp_path):
    # unknown sizes in a graph: test_graph_mode_and_dynamic_shapes_agree_with_eager (with non-zero heads)
    frames = np.random.default_rng(0).uniform(size=(1, 3, 16, 16, 3)).astype(np.float32)
    config = STTNRestoreConfig(num_frames=3, unet_feat=4, unet_depth=2, unet_max_feat=8, num_feat=8, num_blocks=1)
    run_model_test(STTNRestore, config, [frames], (1, 16, 16, 3), output_key="output", tmp_path=tmp_path,
                   variable_hw=False)


@pytest.mark.parametrize("hw", [(16, 16), (37, 29), (5, 3)])
def test_shapes_any_size_and_starts_as_the_reference(hw):
    model = STTNRestore(**SMALL)
    frames = tf.random.uniform([2, 5, *hw, 3], seed=1)
    out = model(frames)
    assert out["output"].shape == (2, *hw, 3)
    assert out["warped"].shape == (2, *hw, 3)
    assert out["flow"].shape == (2, *hw, 3)
    # zero-initialised flow head and ResNet output conv: x̃ and ỹ start as the reference frame, z at the centre
    np.testing.assert_array_equal(out["output"].numpy(), frames[:, 2].numpy())
    np.testing.assert_array_equal(out["warped"].numpy(), frames[:, 2].numpy())
    np.testing.assert_array_equal(out["flow"].numpy()[..., 2], 2.0)
    assert model.multiple == 4


def test_multiple_flows_and_ablation():
    frames = tf.random.uniform([1, 3, 12, 20, 3], seed=2)
    model = STTNRestore(num_frames=3, num_flows=3, **SMALL)
    out = model(frames)
    assert out["warped"].shape == (1, 12, 20, 9) and out["flow"].shape == (1, 12, 20, 9)
    ablation = STTNRestore(num_frames=3, use_flow=False, **SMALL)
    out = ablation(frames)
    assert set(out) == {"output"} and out["output"].shape == (1, 12, 20, 3)
    assert ablation.multiple == 1
    assert ablation.flow_net is None
    # the same head; only its first conv differs (3 flows add 9 input channels: 3x3 kernel x 9 x 8 features)
    assert ablation.count_params() == model.head.count_params() - 3 * 3 * 9 * 8


def test_flow_shapes_and_z_range():
    net = UNetFlow(num_frames=5, feat=8, depth=3, max_feat=16, num_flows=2)
    net(tf.zeros([1, 5, 16, 24, 3]))
    for w in net.out_conv.weights:  # move away from the zero init
        w.assign(tf.random.normal(w.shape, stddev=3.0, seed=3))
    flow = net(tf.random.uniform([2, 5, 16, 24, 3], seed=4)).numpy()
    assert flow.shape == (2, 16, 24, 6)
    z = flow[..., 2::3]
    assert z.min() >= 0.0 and z.max() <= 4.0 and z.std() > 0.1


def test_gradients_reach_the_flow_net_and_the_sampler_inputs():
    model = STTNRestore(**SMALL)
    frames = tf.random.uniform([2, 5, 16, 16, 3], seed=5)
    target = tf.random.uniform([2, 16, 16, 3], seed=6)
    with tf.GradientTape() as tape:
        out = model(frames, training=True)
        loss = tf.reduce_mean(tf.square(out["output"] - target)) + tf.reduce_mean(tf.square(out["warped"] - target))
    grads = tape.gradient(loss, model.trainable_variables)
    names = [v.path for v in model.trainable_variables]
    assert all(g is not None for g in grads), [n for n, g in zip(names, grads) if g is None]
    flow_head = [g for n, g in zip(names, grads) if "out_conv" in n]
    assert flow_head and all(float(tf.reduce_max(tf.abs(g))) > 0 for g in flow_head)


def test_graph_mode_and_dynamic_shapes_agree_with_eager():
    model = STTNRestore(**SMALL)
    for w in model.flow_net.out_conv.weights + model.head.conv_last.weights:
        w.assign(tf.random.normal(w.shape, stddev=0.1, seed=7))
    fn = tf.function(lambda x: model(x)["output"],
                     input_signature=[tf.TensorSpec([None, 5, None, None, 3], tf.float32)])
    for hw in [(13, 17), (24, 8)]:
        frames = tf.random.uniform([1, 5, *hw, 3], seed=8)
        np.testing.assert_allclose(fn(frames).numpy(), model(frames)["output"].numpy(), atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="odd"):
        STTNRestore(num_frames=4)
    with pytest.raises(ValueError, match="z_param"):
        STTNRestore(z_param="sigmoid")
    with pytest.raises(ValueError, match="padding"):
        STTNRestore(padding="reflect")


def test_spread_z_init_starts_each_flow_at_a_neighbour():
    frames = tf.random.uniform([1, 5, 8, 8, 3], seed=9)
    model = STTNRestore(num_flows=4, z_init="spread", **SMALL)
    out = model(frames)
    z = out["flow"].numpy()[0, 0, 0, 2::3]
    np.testing.assert_allclose(z, [0.08, 1.0, 3.0, 3.92], atol=1e-5)  # tanh keeps 4 % away from the end frames
    linear = STTNRestore(num_flows=4, z_init="spread", z_param="linear", **SMALL)(frames)
    np.testing.assert_allclose(linear["flow"].numpy()[0, 0, 0, 2::3], [0, 1, 3, 4], atol=1e-6)
    np.testing.assert_allclose(linear["warped"].numpy()[..., 3:6], frames.numpy()[:, 1], atol=1e-6)
