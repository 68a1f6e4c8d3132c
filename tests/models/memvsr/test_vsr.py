import numpy as np
import pytest
import tensorflow as tf

from tfvr.models.memvsr.vsr import MemEDVR

SMALL = dict(num_feat=8, num_frame=3, deformable_groups=1, num_extract_block=1, num_reconstruct_block=1,
             dcn_impl="reference")
MEM = dict(embed_size=8, memory_size=2, variant="pixwise", crop=3, fusion="add")


@pytest.mark.parametrize("with_pcd", [True, False])
def test_shapes_weights_and_memory_gradients(with_pcd):
    model = MemEDVR(with_pcd=with_pcd, memory=MEM, **SMALL).build_for_weights()
    names = [v.path for v in model.trainable_variables]
    assert any("pcd_align" in n for n in names) == with_pcd
    x = tf.random.uniform([1, 3, 8, 12, 3], seed=3)
    with tf.GradientTape() as tape:
        out, weights = model.call_with_weights(x)
        loss = tf.reduce_mean(out)
    assert out.shape == (1, 32, 48, 3)
    assert weights.shape == (1, 8, 12, 2)
    grads = tape.gradient(loss, model.memory_variables())
    assert grads and all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_without_memory_is_edvr_shaped():
    model = MemEDVR(with_pcd=False, memory=None, **SMALL).build_for_weights()
    out = model(tf.zeros([2, 3, 5, 7, 3]))
    assert out.shape == (2, 20, 28, 3)
    assert model.dcn_layers() == {}
    again = MemEDVR.from_config(model.get_config())
    assert again.get_config() == model.get_config()
    np.testing.assert_equal(model.memory_variables(), [])
