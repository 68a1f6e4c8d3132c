"""CompositeGenerator / CompositeLocalGenerator behaviour beyond golden parity (shapes, options, identities)."""

import numpy as np
import pytest
import tensorflow as tf

from tfvr.models.vid2vid import CompositeGenerator, CompositeLocalGenerator
from tfvr.models.vid2vid.convert import build_generator, load_state_dict, state_dict

SMALL = dict(input_nc=8, output_nc=3, prev_output_nc=6, ngf=8, n_downsampling=2, n_blocks=2)


def inputs(h=16, w=24, seed=0):
    r = np.random.default_rng(seed)
    return (r.standard_normal((2, h, w, 8)).astype(np.float32), r.uniform(-1, 1, (2, h, w, 6)).astype(np.float32),
            (r.uniform(size=(2, h, w, 1)) > 0.8).astype(np.float32))


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_shapes_and_ranges(norm):
    gen = CompositeGenerator(**SMALL, use_fg_model=True, norm=norm)
    out = gen(*inputs())
    assert out["img_final"].shape == (2, 16, 24, 3) and out["flow"].shape == (2, 16, 24, 2)
    assert out["weight"].shape == (2, 16, 24, 1)
    assert np.all(np.abs(out["img_raw"]) <= 1) and np.all((out["weight"] >= 0) & (out["weight"] <= 1))
    train = gen(*inputs(), training=True)  # batch / instance statistics path
    assert np.all(np.isfinite(train["img_final"]))


def test_composite_identity_and_raw_only():
    gen = CompositeGenerator(**SMALL)
    labels, prev, _ = inputs()
    out = gen(labels, prev)
    from tfvr.ops.warp import backward_warp

    w = out["weight"]
    want = out["img_raw"] * w + backward_warp(prev[..., 3:], out["flow"], padding="border") * (1 - w)
    np.testing.assert_allclose(out["img_final"], want, atol=1e-6)
    raw = gen(labels, prev, use_raw_only=True)
    np.testing.assert_array_equal(raw["img_final"], raw["img_raw"])


def test_no_flow_baseline_has_no_flow_branch():
    gen = CompositeGenerator(**SMALL, no_flow=True)
    out = gen(*inputs()[:2])
    assert out["flow"] is None and out["weight"] is None
    np.testing.assert_array_equal(out["img_final"], out["img_raw"])
    assert not any("flow" in k or "final_w" in k for k in state_dict(gen))


def test_config_round_trip_and_weights_transfer():
    gen = build_generator(**SMALL, use_fg_model=True, norm="instance")
    clone = CompositeGenerator.from_config(gen.get_config())
    assert clone.get_config() == gen.get_config()
    clone(*inputs())
    load_state_dict(clone, state_dict(gen))
    a, b = gen(*inputs(seed=3)), clone(*inputs(seed=3))
    np.testing.assert_array_equal(a["img_final"], b["img_final"])


def test_fg_model_requires_mask():
    gen = CompositeGenerator(**SMALL, use_fg_model=True)
    with pytest.raises(ValueError, match="fg_mask"):
        gen(*inputs()[:2])


def test_local_generator_adds_coarse_features_and_scales_flow():
    coarse = CompositeGenerator(**{**SMALL, "ngf": 16}, use_fg_model=True)
    local = CompositeLocalGenerator(8, 3, 6, ngf=8, n_blocks_local=1, use_fg_model=True, scale=1, n_downsampling=2)
    labels, prev, mask = inputs(32, 48)
    down = lambda x: tf.nn.avg_pool2d(x, 2, 2, "VALID")  # noqa: E731
    c = coarse(down(labels), down(prev), down(mask), return_features=True)
    assert c["img_feat"].shape == (2, 16, 24, 16) and c["img_fg_feat"].shape == (2, 16, 24, 16)
    out = local(labels, prev, mask, c["img_feat"], c["flow_feat"], c["img_fg_feat"])
    assert out["img_final"].shape == (2, 32, 48, 3)
    # flow multiplier 20 * 2**scale
    flow_only = local.model_final_flow(local.model_up_flow(
        local.model_down_seg(labels) + local.model_down_img(prev) + c["flow_feat"]))
    np.testing.assert_allclose(out["flow"], flow_only * 40.0, rtol=1e-5, atol=1e-4)


def test_converter_rejects_state_dicts_of_another_layout():
    small = dict(SMALL, n_downsampling=1)
    sd = state_dict(build_generator(**small))
    with pytest.raises(ValueError, match="no module"):  # a ResNet block the model does not have
        load_state_dict(build_generator(**dict(small, n_blocks=1)), sd)
    with pytest.raises(ValueError, match="lacks"):
        load_state_dict(build_generator(**dict(small, n_blocks=3)), sd)
    with pytest.raises(ValueError, match="shape"):
        load_state_dict(build_generator(**dict(small, ngf=4)), sd)
    with pytest.raises(ValueError, match="lacks"):  # the fg model's weights are missing
        load_state_dict(build_generator(**small, use_fg_model=True), sd)


def test_first_frame_skips_the_image_encoder():
    gen = CompositeGenerator(**SMALL, use_fg_model=True)
    labels, prev, mask = inputs()
    gen(labels, prev, mask)
    first = gen(labels, None, mask)
    np.testing.assert_array_equal(first["img_final"], first["img_raw"])
    # the same as zero image-encoder features
    down = gen.model_down_seg(labels)
    raw = gen.model_final_img(gen.model_up_img(gen.model_res_img(down)))
    fg = gen.indv_final(gen.indv_up(gen.indv_res(gen.indv_down(labels))))
    np.testing.assert_allclose(first["img_raw"], fg * mask + raw * (1 - mask), atol=1e-6)


@pytest.mark.parametrize("scales", [1, 2])
def test_tensor_frame_flags_give_each_frame_kind_in_one_graph(scales):
    """`first_frame` / `use_raw_only` as bool tensors (the streaming export's single generator call) compute
    exactly what the Python-level calls do: a first frame from the labels alone, a raw-only frame, a later frame."""
    from tfvr.models.vid2vid.generator import Vid2VidGenerator

    tf.keras.utils.set_random_seed(0)
    gen = Vid2VidGenerator(label_nc=4, n_frames_G=3, ngf=8, n_downsampling=1, n_blocks=2, use_fg_model=True,
                           fg_labels=(1,), n_scales_spatial=scales, n_blocks_local=1)
    rng = np.random.default_rng(0)
    labels = tf.constant(rng.integers(0, 4, (2, 3, 16, 16)), tf.int32)
    prev = tf.constant(rng.uniform(-1, 1, (2, 2, 16, 16, 3)), tf.float32)
    zeros = tf.zeros_like(prev)
    gen(labels, prev, training=False)
    for v in gen.variables:  # random weights and statistics: a fresh model's outputs are nearly constant
        v.assign(rng.uniform(0.5, 1.5, v.shape) if "variance" in v.path else rng.normal(0, 0.3, v.shape))
    want = {"first": gen(labels, None, training=False), "raw": gen(labels, prev, use_raw_only=True, training=False),
            "later": gen(labels, prev, training=False)}
    assert np.abs(want["later"]["img_final"] - want["raw"]["img_final"]).max() > 0.05
    assert np.abs(want["first"]["img_raw"] - want["raw"]["img_raw"]).max() > 0.05

    @tf.function(autograph=False)
    def step(p, first, raw):
        return gen(labels, p, training=False, first_frame=first, use_raw_only=raw)

    got = {"first": step(zeros, tf.constant(True), tf.constant(False)),
           "raw": step(prev, tf.constant(False), tf.constant(True)),
           "later": step(prev, tf.constant(False), tf.constant(False))}
    assert step.experimental_get_tracing_count() == 1
    for kind in want:
        for key in ("img_final", "img_raw", "flow", "weight"):
            # float noise between the graph and eager runs, magnified by ~50 px flows (these weights) through the
            # warp; the kinds of frame differ from each other by 0.1-1
            w = np.asarray(want[kind][key])
            np.testing.assert_allclose(got[kind][key], w, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(w).max()),
                                       err_msg=f"{kind}: {key}")
