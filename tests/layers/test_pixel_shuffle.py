import numpy as np
import pytest

from tfvr.layers.pixel_shuffle import PixelShuffle, pixel_shuffle_torch_order, torch_to_depth_to_space_permutation


def _torch_pixel_shuffle_nchw(x, r):
    # NumPy transcription of torch.nn.functional.pixel_shuffle (NCHW).
    b, crr, h, w = x.shape
    c = crr // (r * r)
    return x.reshape(b, c, r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(b, c, h * r, w * r)


@pytest.mark.parametrize("r,c", [(2, 3), (3, 2), (2, 64)])
def test_torch_order_matches_pytorch_definition(r, c):
    x = np.random.default_rng(0).standard_normal((2, c * r * r, 4, 5)).astype(np.float32)
    want = _torch_pixel_shuffle_nchw(x, r).transpose(0, 2, 3, 1)
    got = pixel_shuffle_torch_order(x.transpose(0, 2, 3, 1), r).numpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("r,c", [(2, 3), (3, 2), (2, 64)])
def test_permutation_makes_depth_to_space_equal_torch(r, c):
    x = np.random.default_rng(1).standard_normal((1, 4, 5, c * r * r)).astype(np.float32)
    perm = torch_to_depth_to_space_permutation(c * r * r, r)
    assert sorted(perm) == list(range(c * r * r))
    want = pixel_shuffle_torch_order(x, r).numpy()
    got = PixelShuffle(r)(x[..., perm]).numpy()
    np.testing.assert_array_equal(got, want)


def test_shape_and_config():
    layer = PixelShuffle(2)
    assert layer.compute_output_shape((None, 3, None, 8)) == (None, 6, None, 2)
    assert PixelShuffle.from_config(layer.get_config()).scale == 2
    with pytest.raises(ValueError):
        torch_to_depth_to_space_permutation(6, 2)
