import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import run_model_test
from tfvr.models.edvr import EDVR, EDVRConfig, PRESETS, TSAFusion, get_preset
from tfvr.models.edvr.model import _PAD_MODES, avg_pool_3s2p1, max_pool_3s2p1, upsample2x
from tfvr.ops.padding import pad_to_multiple

TINY = dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1,
            dcn_impl="reference")

# Trainable parameter counts of BasicSR 1.4.2's EDVR(**PRESETS[name]), measured with
# sum(p.numel() for p in basicsr.archs.edvr_arch.EDVR(**kwargs).parameters()) in the peer venv
# (../shared/tools/peer_venv.sh). edvr_m also equals the size of the golden edvr_m state dict.
BASICSR_PARAMS = {
    "edvr_m": 3300131,
    "edvr_m_notsa": 2996259,
    "edvr_m_7": 3316515,
    "edvr_l": 20633827,
    "edvr_l_notsa": 19419875,
    "edvr_l_vimeo": 20699363,
    "edvr_l_deblur": 23602019,
    "edvr_l_deblurcomp": 23602019,
    "edvr_l_srblur": 23306851,
}


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# edvr_l_deblurcomp: the shape of edvr_l_deblur; edvr_l_stage2 (the shallow second stage) has no BasicSR count
@pytest.mark.parametrize("name", sorted(set(PRESETS) - {"edvr_l_deblurcomp", "edvr_l_stage2"}))
def test_preset_parameter_counts_match_basicsr(name):
    model = EDVR(**dataclasses.asdict(get_preset(name))).build_for_weights()
    assert _trainable(model) == BASICSR_PARAMS[name]


def test_config_constructor_get_config_keras_round_trip_and_unknown_size(tmp_path):
    # unknown sizes in a graph: test_parity.py::test_graph_mode_with_unknown_sizes_matches_eager (golden weights)
    x = np.random.default_rng(3).uniform(size=(1, 3, 16, 16, 3)).astype(np.float32)
    model, y = run_model_test(EDVR, EDVRConfig(**dict(TINY, deformable_groups=1)), [x], (1, 64, 64, 3),
                              tmp_path=tmp_path, variable_hw=False)
    model.save_weights(tmp_path / "w.weights.h5")
    fresh = EDVR(**dict(TINY, deformable_groups=1)).build_for_weights()
    fresh.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_allclose(fresh(x).numpy(), y.numpy(), atol=1e-6)


def test_any_size_pads_and_crops_like_explicit_padding():
    rng = np.random.default_rng(0)
    model = EDVR(**TINY)
    x = rng.uniform(size=(1, 3, 13, 18, 3)).astype(np.float32)
    y = model(x).numpy()
    assert y.shape == (1, 52, 72, 3)
    xp = pad_to_multiple(x, 4, axes=(2, 3), mode="reflect_fold").numpy()
    assert xp.shape == (1, 3, 16, 20, 3)
    np.testing.assert_allclose(y, model(xp).numpy()[:, :52, :72], atol=1e-5)


def test_hr_in_pads_to_16_and_keeps_the_size():
    model = EDVR(**dict(TINY, hr_in=True, with_predeblur=True))
    x = np.random.default_rng(1).uniform(size=(2, 3, 21, 35, 3)).astype(np.float32)
    assert model(x).shape == (2, 21, 35, 3)
    with pytest.raises(ValueError, match="with_predeblur"):
        EDVR(hr_in=True)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "zeros"])
def test_pad_to_multiple_modes(mode):
    x = np.arange(3 * 5, dtype=np.float32).reshape(1, 1, 3, 5, 1)
    y = pad_to_multiple(x, 4, axes=(2, 3), mode=_PAD_MODES[mode]).numpy()[0, 0, ..., 0]
    assert y.shape == (4, 8)
    want = np.pad(x[0, 0, ..., 0], ((0, 1), (0, 3)), {"reflect": "reflect", "replicate": "edge",
                                                     "zeros": "constant"}[mode])
    np.testing.assert_array_equal(y, want)
    # Pads larger than the image fold back (reflect) instead of failing.
    assert pad_to_multiple(np.ones((1, 1, 2, 2, 1), np.float32), 16, axes=(2, 3), mode=_PAD_MODES[mode]).shape == (1, 1, 16, 16, 1)


def test_pooling_and_upsampling_follow_pytorch():
    x = np.arange(2 * 6 * 4, dtype=np.float32).reshape(2, 6, 4, 1)
    # MaxPool2d(3, 2, 1) and AvgPool2d(3, 2, 1, count_include_pad=True), transcribed.
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    z = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    mx, av = np.zeros((2, 3, 2, 1), np.float32), np.zeros((2, 3, 2, 1), np.float32)
    for i in range(3):
        for j in range(2):
            mx[:, i, j] = p[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max((1, 2))
            av[:, i, j] = z[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3].sum((1, 2)) / 9
    np.testing.assert_allclose(max_pool_3s2p1(x).numpy(), mx)
    np.testing.assert_allclose(avg_pool_3s2p1(x).numpy(), av, rtol=1e-6)
    # align_corners=False ×2: output pixel 2i+1/2 samples input (i + 0.25) etc; corners clamp.
    row = np.array([[0.0, 4.0]], np.float32).reshape(1, 1, 2, 1)
    np.testing.assert_allclose(upsample2x(row).numpy()[0, 0, :, 0], [0, 1, 3, 4])


def test_tsa_attention_is_sigmoid_weighted_and_doubles():
    layer = TSAFusion(num_feat=4, num_frame=3, center_frame_idx=1)
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8, 4)).astype(np.float32)
    y = layer(x)
    assert y.shape == (1, 8, 8, 4)
    # Zero spatial branch: sigmoid(0) · 2 = 1 and attn_add = 0, so the output is exactly the fused features.
    for name in ("spatial_attn5", "spatial_attn_add2"):
        conv = getattr(layer, name)
        conv.kernel.assign(tf.zeros_like(conv.kernel))
        conv.bias.assign(tf.zeros_like(conv.bias))
    emb_ref = layer.temporal_attn1(x[:, 1])
    emb = tf.reshape(layer.temporal_attn2(x.reshape(3, 8, 8, 4)), (1, 3, 8, 8, 4))
    corr = tf.sigmoid(tf.reduce_sum(emb * emb_ref[:, None], -1, keepdims=True))
    fused = tf.nn.leaky_relu(layer.feat_fusion(tf.reshape(tf.transpose(x * corr, [0, 2, 3, 1, 4]), (1, 8, 8, 12))),
                             0.1)
    np.testing.assert_allclose(layer(x).numpy(), fused.numpy(), atol=1e-5)


def test_trains_one_step_and_has_finite_gradients():
    model = EDVR(**TINY)
    x = tf.random.uniform((2, 3, 8, 8, 3))
    gt = tf.random.uniform((2, 32, 32, 3))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.abs(model(x) - gt))
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads)
    # Offset convs start at zero (as BasicSR), yet receive gradients.
    dcn = model.pcd_align.cas_dcnpack
    assert not dcn.offset_kernel.numpy().any()
    gk = grads[[w.path for w in model.trainable_weights].index(dcn.offset_kernel.path)]
    assert np.abs(gk.numpy()).sum() > 0
    assert set(model.dcn_layers()) == {"pcd_align.dcn_pack.l3", "pcd_align.dcn_pack.l2", "pcd_align.dcn_pack.l1",
                                       "pcd_align.cas_dcnpack"}


def test_model_only_tf_checkpoint_restores_every_weight(tmp_path):
    # Regression: Keras 3 lists of layers are not tf.train.Checkpoint dependencies; the blocks must be attributes.
    kwargs = dict(TINY, with_predeblur=True)
    a = EDVR(**kwargs).build_for_weights()
    path = tf.train.Checkpoint(model=a).write(str(tmp_path / "ck"))
    b = EDVR(**kwargs).build_for_weights()
    tf.train.Checkpoint(model=b).read(path).assert_existing_objects_matched()
    for va, vb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(va.numpy(), vb.numpy(), err_msg=va.path)
