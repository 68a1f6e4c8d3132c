import numpy as np
import pytest
import tensorflow as tf

from tfvr.models.memvsr.nextframe import NextFramePredictor

MEM = dict(embed_size=8, memory_size=3, hops=2, variant="pixwise", crop=3)


@pytest.mark.parametrize("test_type,encoder,skip,qs_sep", [
    ("nextframe", "unet", (True, False, True), False),
    ("subtract", "resnet", (), False),
    ("opticalflow", "unet", (False, False, False), True),
])
def test_shapes_and_gradients(test_type, encoder, skip, qs_sep):
    model = NextFramePredictor(test_type, encoder, (3, 4, 6, 8), skip or (True,) * 3, 1, input_size=3,
                               qs_sep=qs_sep, memory=MEM)
    x = tf.random.uniform([2, 3 + int(qs_sep), 16, 24, 3], seed=1)
    with tf.GradientTape() as tape:
        out = model(x)
        loss = tf.reduce_mean(tf.abs(out["pred"] - 0.5))
    assert out["pred"].shape == (2, 16, 24, 3)
    assert out["weights"].shape == (2, 2, 3, 3)
    assert out["raw"].shape[-1] == (2 if test_type == "opticalflow" else 3)
    grads = tape.gradient(loss, model.variable_groups()["memory"])
    assert all(g is not None for g in grads)


@pytest.mark.parametrize("test_type", ["subtract", "opticalflow"])
def test_residual_heads_start_at_copy_last(test_type):
    model = NextFramePredictor(test_type, "unet", (3, 4, 8), (True, True), input_size=2, memory=None)
    x = tf.random.uniform([1, 2, 8, 8, 3], seed=2)
    out = model(x)
    np.testing.assert_allclose(out["pred"].numpy(), x[:, -1].numpy(), atol=1e-6)
    assert "weights" not in out


def test_config_round_trip():
    model = NextFramePredictor("subtract", "resnet", (3, 4, 8), (True, True), 2, 4, True, MEM)
    again = NextFramePredictor.from_config(model.get_config())
    assert again.get_config() == model.get_config()
