"""vid2vid against NVIDIA/vid2vid's PyTorch networks (../shared/golden/vid2vid_*.npz)."""

import ast

import numpy as np
import pytest

from tests.helpers import golden, golden_weights
from tfvr.models.vid2vid import discriminator_from_nvidia, from_nvidia
from tfvr.models.vid2vid.convert import state_dict


def nhwc(a):
    return np.transpose(a, (0, 2, 3, 1))


@pytest.fixture(scope="module")
def gen_case():
    z = golden("vid2vid_generator")
    cfg = ast.literal_eval(str(z["config"]))
    model = from_nvidia(golden_weights(z), **cfg)
    return z, cfg, model


def test_generator_matches_nvidia(gen_case):
    z, _, model = gen_case
    out = model(nhwc(z["label"]), nhwc(z["prev"]), nhwc(z["fg_mask"]))
    assert set(out) == {"img_final", "img_raw", "flow", "weight"}
    for key in ("img_final", "flow", "weight", "img_raw"):
        got = np.asarray(out[key])
        assert got.shape == nhwc(z[key]).shape, key
        np.testing.assert_allclose(got, nhwc(z[key]), atol=1e-4, rtol=0, err_msg=key)


def test_generator_in_tf_function_matches_eager(gen_case):
    import tensorflow as tf

    z, _, model = gen_case
    args = [tf.constant(nhwc(z[k])) for k in ("label", "prev", "fg_mask")]
    eager = model(*args)
    graph = tf.function(lambda a, b, c: model(a, b, c))(*args)
    for key in eager:
        np.testing.assert_allclose(np.asarray(graph[key]), np.asarray(eager[key]), atol=1e-4)


def test_generator_state_dict_round_trip_and_parameter_count(gen_case):
    z, _, model = gen_case
    weights = golden_weights(z)
    sd = state_dict(model)
    assert list(sd) == list(weights)  # same keys, in PyTorch's registration order
    for key, value in weights.items():
        np.testing.assert_array_equal(sd[key], value, err_msg=key)
    torch_params = sum(v.size for k, v in weights.items() if "running_" not in k)
    assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) == torch_params == 1_059_609


def test_image_discriminator_matches_nvidia_feature_by_feature():
    z = golden("vid2vid_image_discriminator")
    cfg = ast.literal_eval(str(z["config"]))
    disc = discriminator_from_nvidia(golden_weights(z), **cfg)
    feats = disc(nhwc(z["x"]))
    assert len(feats) == cfg["num_D"]
    for i, per_scale in enumerate(feats):
        assert len(per_scale) == cfg["n_layers"] + 2
        for j, f in enumerate(per_scale):
            want = nhwc(z[f"feat/{i}/{j}"])
            assert f.shape == want.shape, (i, j)
            np.testing.assert_allclose(np.asarray(f), want, atol=1e-4, rtol=0, err_msg=f"feat/{i}/{j}")
    sd = state_dict(disc)
    assert sorted(sd) == sorted(golden_weights(z))


def test_convert_weights_cli_file_reloads_to_the_same_outputs(gen_case, tmp_path):
    import json

    from tests.helpers import GOLDEN
    from tfvr.cli import main
    from tfvr.models.vid2vid import CompositeGenerator

    z, cfg, _ = gen_case
    out = tmp_path / "g0.weights.h5"
    assert main(["convert-weights", "--arch", "vid2vid", "--kwargs", json.dumps(cfg),
                 str(GOLDEN / "vid2vid_generator.npz"), "-o", str(out)]) == 0
    meta = json.loads(out.with_name("g0.config.json").read_text())
    model = CompositeGenerator.from_config(meta["config"])
    args = [nhwc(z[k]) for k in ("label", "prev", "fg_mask")]
    model(*args)
    model.load_weights(str(out))
    got = model(*args)
    np.testing.assert_allclose(np.asarray(got["img_final"]), nhwc(z["img_final"]), atol=1e-4)
