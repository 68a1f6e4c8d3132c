import ast

import numpy as np
import pytest

from tests.helpers import golden, golden_weights
from tfvr.errors import ConfigError, UserError
from tfvr.models.edvr import from_basicsr, infer_basicsr_kwargs, to_basicsr
from tfvr.models.edvr.convert import convert_cli


@pytest.fixture(scope="module")
def small():
    g = golden("edvr_small_notsa")
    return golden_weights(g), ast.literal_eval(str(g["config"])), g


@pytest.mark.parametrize("name", ["edvr_m", "edvr_small_notsa", "edvr_small_deblur"])
def test_infer_kwargs_from_weights(name):
    g = golden(name)
    want = ast.literal_eval(str(g["config"]))
    want.pop("center_frame_idx")
    assert infer_basicsr_kwargs(golden_weights(g)) == want


def test_to_basicsr_inverts_the_conversion(small):
    sd, kwargs, _ = small
    back = to_basicsr(from_basicsr(sd, dcn_impl="reference", **kwargs))
    assert set(back) == set(sd)
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k], err_msg=k)


def test_none_state_dict_gives_random_init_with_zero_offsets():
    model = from_basicsr(None, num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1,
                         num_reconstruct_block=1)
    assert model.built and not model.pcd_align.dcn_pack_l1.offset_kernel.numpy().any()


def test_errors_name_the_source(small):
    sd, kwargs, _ = small
    with pytest.raises(UserError, match=r"f\.pth.*not used"):
        from_basicsr(dict(sd, **{"extra.weight": np.zeros(3)}), source="f.pth", **kwargs)
    with pytest.raises(UserError, match="missing weight 'conv_first.weight'"):
        from_basicsr({k: v for k, v in sd.items() if k != "conv_first.weight"}, **kwargs)
    with pytest.raises(UserError, match="shape"):
        from_basicsr(sd, **dict(kwargs, num_feat=64))
    with pytest.raises(ConfigError, match="num_feet"):
        from_basicsr(sd, num_feet=3)


def test_convert_cli_infers_or_uses_presets(small):
    sd, kwargs, g = small
    model = convert_cli(sd, None, None)
    assert model.num_feat == 32 and not model.with_tsa and model.num_frame == 3
    y = model(g["x"].transpose(0, 1, 3, 4, 2)).numpy().transpose(0, 3, 1, 2)
    assert np.abs(y - g["y"]).max() <= 1e-4
    with pytest.raises(UserError, match="shape"):
        convert_cli(sd, "edvr_m", None)
    with pytest.raises(UserError, match="unknown EDVR preset"):
        convert_cli(sd, "edvr_xl", None)
